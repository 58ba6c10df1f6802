"""The workload registry, by discovery: every module of this package that declares ``SPEC`` is a pattern.

A new pattern is one module here (see ``base.py`` for what it defines); nothing else lists it. Modules without a
``SPEC`` (``common``, ``base``, ``loops``) are helpers and skipped. Patterns are listed in the order of their
module-level ``ORDER`` (the historical order: pingpong, stream, reqrep, fanin, connect), then by name, so tables,
``--help`` and default sweeps keep a stable order.

Public names: ``PATTERNS`` (name -> module name), ``get_pattern(name)`` (the module), ``specs()`` and
``get_spec(name)`` (the declarations everything outside this package reads).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from types import ModuleType

from ..declarations import PatternSpec
from ..errors import ConfigError, Interrupted

LAST = 1000  # ORDER of a module that declares none: after the built-in patterns

PATTERNS: dict[str, str] = {}  # name -> module name, filled by refresh(); mutated in place so imports see updates


def discover(paths: list[str] | None = None) -> dict[str, ModuleType]:
    """name -> module for every module under ``paths`` (default: this package) that declares a SPEC."""
    found: list[tuple[int, str, ModuleType]] = []
    for info in pkgutil.iter_modules(paths if paths is not None else __path__):
        if info.name.startswith("_"):
            continue
        module = _import(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, PatternSpec):
            found.append((getattr(module, "ORDER", LAST), spec.name, module))
    found.sort(key=lambda item: (item[0], item[1]))
    return {name: module for _, name, module in found}


def _import(name: str) -> ModuleType:
    """Import a pattern module; one that raises (a broken plug-in dropped into the package) is a ConfigError
    naming the file, the exception and the fix, not a traceback from deep inside discovery."""
    try:
        return importlib.import_module(name)
    except Interrupted:  # SIGTERM while the module was importing: an interrupt, not the module's fault
        raise
    except Exception as exc:  # noqa: BLE001 - anything a plug-in raises at import is the plug-in's fault
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        where = spec.origin if spec is not None and spec.origin else name
        raise ConfigError(f"pattern module {where!r} failed to import ({type(exc).__name__}: {exc}); fix it or "
                          "remove the file") from None


def refresh() -> None:
    """Rebuild the registry (tests that add a pattern module to ``__path__`` call this)."""
    modules = discover()
    PATTERNS.clear()
    PATTERNS.update({name: module.__name__ for name, module in modules.items()})


def get_pattern(name: str) -> ModuleType:
    return importlib.import_module(PATTERNS[name])


def get_spec(name: str) -> PatternSpec:
    spec: PatternSpec = get_pattern(name).SPEC
    return spec


def specs() -> list[PatternSpec]:
    """Every pattern's declaration, in registry order."""
    return [get_spec(name) for name in PATTERNS]


def default_names() -> tuple[str, ...]:
    """The patterns a plain ``ipclab run`` measures (those declaring ``default_run``)."""
    return tuple(s.name for s in specs() if s.default_run)


refresh()
