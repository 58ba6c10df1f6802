"""The ONE place where the engine meets interfaces that are changing in parallel branches (remove at merge).

Each adapter accepts today's signature and the target one, so the engine runs before and after the transport,
pattern and option branches land:

- transports: ``CellSpec(pattern, size, clients)`` -> ``CellSpec(shape, size, clients)``;
  ``Transport.not_applicable(pattern, size)`` -> ``not_applicable(shape, size)``; the registry's
  ``get_transport(name)`` (a fixed list) -> discovery, which finds a ``hidden`` transport only when named;

Nothing here names a pattern.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from typing import TYPE_CHECKING, Any

from ..declarations import PatternSpec, TrafficShape

if TYPE_CHECKING:

    from ..transports.base import CellSpec, Transport

# -- transports --------------------------------------------------------------------------------------------------
def get_transport(name: str) -> type[Transport]:
    """The registered transport ``name``; a hidden in-process transport (loopback) only when asked by name."""
    from .. import transports

    try:
        return transports.get_transport(name)
    except KeyError:
        cls = _hidden_transport(name)
        if cls is None:
            raise
        return cls


def _hidden_transport(name: str) -> type[Transport] | None:
    """What a discovering registry does for a module marked ``hidden``: found by its name, never listed."""
    from ..transports.base import Transport

    try:
        module = importlib.import_module(f"ipclab.transports.{name.replace('-', '_')}")
    except ImportError:
        return None
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, Transport) and getattr(value, "hidden", False)
                and getattr(value, "name", None) == name):
            return value
    return None


def transport_ref(cls: type) -> str | None:
    """"module:Class" of a transport class, so the worker imports exactly that module; None when the class
    cannot be found again under its own name (made on the fly): the worker then asks the registry by name."""
    ref = f"{cls.__module__}:{cls.__qualname__}"
    try:
        found = load_transport(ref)
    except (ImportError, AttributeError, ValueError):
        return None
    return ref if found is cls else None


def load_transport(ref: str) -> type[Transport]:
    """The class named by :func:`transport_ref` (a Transport subclass, or ValueError)."""
    from ..transports.base import Transport

    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"transport reference {ref!r} is not module:Class")
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    if not (isinstance(value, type) and issubclass(value, Transport)):
        raise ValueError(f"{ref} is not a Transport")
    return value


def cell_spec(pattern: PatternSpec, size: int, clients: int) -> CellSpec:
    """The CellSpec a transport is set up with, with or without today's ``pattern`` field."""
    from ..transports.base import CellSpec

    names = {f.name for f in dataclasses.fields(CellSpec)}
    kwargs: dict[str, Any] = {"size": size, "clients": clients}
    if "shape" in names:
        kwargs["shape"] = pattern.shape
    if "pattern" in names:  # today's transports see a pattern name
        kwargs["pattern"] = pattern.name
    return CellSpec(**kwargs)


def transport_not_applicable(cls: type[Transport], pattern: PatternSpec, size: int) -> str | None:
    """The transport's own n/a reason for a cell, asked with a shape (target) or a pattern name (today)."""
    what: TrafficShape | str = pattern.shape if _first_param(cls.not_applicable) == "shape" else pattern.name
    return cls.not_applicable(what, size)  # type: ignore[arg-type]


@functools.cache
def _first_param_of(func: Any) -> str:
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
    return params[0] if params else ""


def _first_param(func: Any) -> str:
    return _first_param_of(getattr(func, "__func__", func))
