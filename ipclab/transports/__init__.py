"""The transport registry: CLI name -> "module:Class", imported lazily.

A worker imports only the module of the transport it runs, so pyzmq or posix_ipc never slow down the start-up
of a pipe worker. Add a mechanism by writing one module and one line here.

Plug-ins: the environment variable ``IPCLAB_EXTRA_TRANSPORTS="name=module:Class[,name=module:Class...]"`` adds
transports without editing this file (a third-party mechanism, or the deliberately misbehaving transports the
fault tests use). The module must be importable (PYTHONPATH) by the runner and by its workers, which inherit
the environment. The class's ``name`` must be the registered name; a plug-in may not shadow a built-in
name; a malformed entry is a one-line ConfigError.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Transport

TRANSPORTS: dict[str, str] = {
    "pipe": "ipclab.transports.pipe:PipeTransport",
    "unix": "ipclab.transports.unix:UnixTransport",
    "tcp": "ipclab.transports.tcp:TcpTransport",
    "udp": "ipclab.transports.udp:UdpTransport",
    "shm": "ipclab.transports.shm:ShmTransport",
    "shm-spin": "ipclab.transports.shm:ShmSpinTransport",
    "mmap": "ipclab.transports.mmapfile:MmapTransport",
    "fifo": "ipclab.transports.fifo:FifoTransport",
    "unix-dgram": "ipclab.transports.unixdgram:UnixDgramTransport",
    "posix-mq": "ipclab.transports.posixmq:PosixMqTransport",
    "sysv-mq": "ipclab.transports.sysvmq:SysvMqTransport",
    "zmq-ipc": "ipclab.transports.zmq_transport:ZmqIpcTransport",
    "zmq-tcp": "ipclab.transports.zmq_transport:ZmqTcpTransport",
    "mp-pipe": "ipclab.transports.mp:MpPipeTransport",
    "mp-queue": "ipclab.transports.mp:MpQueueTransport",
    "signal": "ipclab.transports.signals:SignalTransport",
}

EXTRA_ENV = "IPCLAB_EXTRA_TRANSPORTS"
_EXTRA_RE = re.compile(r"^([a-z0-9][a-z0-9_.-]*)=([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")
_cache: dict[str, type[Transport]] = {}
_extra: dict[str, str] = {}


def _load_extra() -> None:
    """Add the plug-ins named in $IPCLAB_EXTRA_TRANSPORTS (see the module docstring)."""
    from ..errors import ConfigError

    for entry in filter(None, (e.strip() for e in os.environ.get(EXTRA_ENV, "").split(","))):
        m = _EXTRA_RE.match(entry)
        if not m:
            raise ConfigError(f"{EXTRA_ENV}: cannot read {entry!r}; write name=module:Class[,name=module:Class]")
        name, spec = m.group(1), f"{m.group(2)}:{m.group(3)}"
        if name in TRANSPORTS and name not in _extra:
            raise ConfigError(f"{EXTRA_ENV}: {name!r} is a built-in transport; give the plug-in another name")
        TRANSPORTS[name] = _extra[name] = spec


def get_transport(name: str) -> type[Transport]:
    """The Transport class registered as ``name`` (KeyError if unknown)."""
    cls = _cache.get(name)
    if cls is None:
        module_name, _, attr = TRANSPORTS[name].partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            if name not in _extra:
                raise
            from ..errors import ConfigError

            raise ConfigError(f"{EXTRA_ENV}: cannot load {name}={_extra[name]}: {exc}") from None
        if name in _extra and getattr(cls, "name", None) != name:  # workers look the class up by its name
            from ..errors import ConfigError

            raise ConfigError(f"{EXTRA_ENV}: {_extra[name]} has name = {getattr(cls, 'name', None)!r}; register "
                              "it under that name")
        _cache[name] = cls
    return cls


def available_names() -> list[str]:
    """Registered transports that can run on this machine, in registry order."""
    return [name for name in TRANSPORTS if get_transport(name).unavailable_reason() is None]


_load_extra()
