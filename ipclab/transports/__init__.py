"""The transport registry: CLI name -> "module:Class", imported lazily.

A worker imports only the module of the transport it runs, so pyzmq or posix_ipc never slow down the start-up
of a pipe worker. Add a mechanism by writing one module and one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Transport

TRANSPORTS: dict[str, str] = {
    "pipe": "ipclab.transports.pipe:PipeTransport",
    "unix": "ipclab.transports.unix:UnixTransport",
    "tcp": "ipclab.transports.tcp:TcpTransport",
    "udp": "ipclab.transports.udp:UdpTransport",
}

_cache: dict[str, type[Transport]] = {}


def get_transport(name: str) -> type[Transport]:
    """The Transport class registered as ``name`` (KeyError if unknown)."""
    cls = _cache.get(name)
    if cls is None:
        module_name, _, attr = TRANSPORTS[name].partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        _cache[name] = cls
    return cls


def available_names() -> list[str]:
    """Registered transports that can run on this machine, in registry order."""
    return [name for name in TRANSPORTS if get_transport(name).unavailable_reason() is None]
