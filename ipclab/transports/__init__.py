"""The transport registry, by discovery: every module of this package is scanned for Transport classes.

A new mechanism is one module here defining a Transport subclass with a ``name`` (a module may define several:
shm and shm-spin). Nothing lists them: ``TRANSPORTS`` (name -> "module:Class") is built on first use by importing
each module of the package and keeping the classes that define their own ``name``, in their declared ``order``
(ties by name). Heavy dependencies (pyzmq, posix_ipc, sysv_ipc) are imported inside methods, never at module
level, so the scan stays cheap. A class declaring ``hidden = True`` (an in-process fake) is found by
``get_transport(name)`` but never listed.

A worker imports only its own transport's module: the runner sends ``transport_ref(name)`` ("module:Class") and
the worker calls ``load_transport(ref)``, which imports that one module and does not scan.

Plug-ins: the environment variable ``IPCLAB_EXTRA_TRANSPORTS="name=module:Class[,name=module:Class...]"`` adds
transports from outside the package (a third-party mechanism, or the deliberately misbehaving transports the
fault tests use). The module must be importable (PYTHONPATH) by the runner and by its workers, which inherit
the environment. The class's ``name`` must be the registered name; a plug-in may not shadow a built-in
name; a malformed entry is a one-line ConfigError.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Transport

    TRANSPORTS: dict[str, str]  # name -> "module:Class"; built on first use by __getattr__ below

__all__ = ["EXTRA_ENV", "TRANSPORTS", "available_names", "discover", "get_transport", "load_transport",
           "registered_classes", "transport_ref"]

EXTRA_ENV = "IPCLAB_EXTRA_TRANSPORTS"
_EXTRA_RE = re.compile(r"^([a-z0-9][a-z0-9_.-]*)=([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")
_registry: dict[str, str] | None = None  # name -> "module:Class", listed transports (built-ins, then plug-ins)
_hidden: dict[str, str] = {}  # name -> "module:Class" of hidden built-ins
_extra: dict[str, str] = {}  # the plug-ins among _registry
_cache: dict[str, type[Transport]] = {}


def ref_of(cls: type) -> str:
    """"module:Class" of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def discover(package: str = __name__, path: list[str] | None = None) -> list[type[Transport]]:
    """The Transport classes defined in the modules of ``package``, in display order.

    A class counts when it is defined in the module scanned (not imported into it) and defines its own ``name``;
    bases such as RingTransport, which only share code, define none. Two classes with one name are a bug.
    """
    from .base import Transport

    found: dict[str, type[Transport]] = {}
    search = path if path is not None else list(importlib.import_module(package).__path__)
    for info in pkgutil.iter_modules(search):
        if info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Transport) and value.__module__ == module.__name__
                    and "name" in vars(value)):
                other = found.setdefault(value.name, value)
                if other is not value:
                    raise RuntimeError(f"transport name {value.name!r} is defined twice: {ref_of(other)} and "
                                       f"{ref_of(value)}")
    return sorted(found.values(), key=lambda cls: (cls.order, cls.name))


def _build() -> dict[str, str]:
    """Scan the package, then add the plug-ins named in $IPCLAB_EXTRA_TRANSPORTS (see the module docstring)."""
    from ..errors import ConfigError

    registry: dict[str, str] = {}
    for cls in discover():
        _cache[cls.name] = cls
        (_hidden if cls.hidden else registry)[cls.name] = ref_of(cls)
    for entry in filter(None, (e.strip() for e in os.environ.get(EXTRA_ENV, "").split(","))):
        m = _EXTRA_RE.match(entry)
        if not m:
            raise ConfigError(f"{EXTRA_ENV}: cannot read {entry!r}; write name=module:Class[,name=module:Class]")
        name, spec = m.group(1), f"{m.group(2)}:{m.group(3)}"
        if (name in registry or name in _hidden) and name not in _extra:
            raise ConfigError(f"{EXTRA_ENV}: {name!r} is a built-in transport; give the plug-in another name")
        registry[name] = _extra[name] = spec
    return registry


def _transports() -> dict[str, str]:
    global _registry
    if _registry is None:
        _registry = _build()
    return _registry


def __getattr__(attr: str) -> dict[str, str]:
    """``TRANSPORTS`` is built on first use (PEP 562), so importing this package scans nothing."""
    if attr == "TRANSPORTS":
        return _transports()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def transport_ref(name: str) -> str:
    """"module:Class" of the transport registered as ``name`` (KeyError if unknown): what a worker loads."""
    registry = _transports()
    return registry[name] if name in registry else _hidden[name]


def load_transport(ref: str) -> type[Transport]:
    """The Transport class ``ref`` ("module:Class") names, importing only its module (no scan)."""
    from .base import Transport

    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"transport reference {ref!r} is not module:Class")
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    if not (isinstance(value, type) and issubclass(value, Transport)):
        raise ValueError(f"{ref} is not a Transport class")
    return value


def get_transport(name: str) -> type[Transport]:
    """The Transport class registered as ``name`` (KeyError if unknown)."""
    cls = _cache.get(name)
    if cls is not None:
        return cls
    ref = transport_ref(name)
    from ..errors import ConfigError, Interrupted

    try:
        cls = load_transport(ref)
    except Interrupted:  # SIGTERM while the module was importing: an interrupt, not the module's fault
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a plug-in raises at import is the plug-in's fault
        if name not in _extra:
            raise
        raise ConfigError(f"{EXTRA_ENV}: cannot load {name}={ref} ({type(exc).__name__}: {exc}); fix the module "
                          f"or remove it from {EXTRA_ENV}") from None
    if name in _extra and getattr(cls, "name", None) != name:  # workers look the class up by its name
        raise ConfigError(f"{EXTRA_ENV}: {ref} has name = {getattr(cls, 'name', None)!r}; register it under "
                          "that name")
    _cache[name] = cls
    return cls


def registered_classes() -> list[type[Transport]]:
    """Every listed transport class, in registry order (plug-ins last)."""
    return [get_transport(name) for name in _transports()]


def available_names() -> list[str]:
    """Registered transports that can run on this machine, in registry order."""
    return [cls.name for cls in registered_classes() if cls.unavailable_reason() is None]
