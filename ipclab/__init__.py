"""ipclab: compare inter-process communication mechanisms with real processes and honest numbers.

Public API (imported lazily so that ``python -m ipclab.worker`` starts fast):
``run(config)``, ``load(path)`` (a result for a notebook: ``load(path).to_pandas()``, see :mod:`ipclab.notebook`),
``load_result(path)``, ``RunConfig``, ``TRANSPORTS`` and ``__version__``.
"""

from __future__ import annotations

from . import _early

if _early.is_the_program():  # before any other import: a signal from here on ends with 130/143 and one line
    _early.install()

from typing import Any  # noqa: E402 - after the signal handlers, on purpose

__version__ = "0.1.0"
__all__ = ["__version__", "run", "load", "load_result", "RunConfig", "TRANSPORTS"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from .runner import run

        return run
    if name == "load":
        from . import notebook

        return notebook.load
    if name == "load_result":
        from . import results

        return results.load
    if name == "RunConfig":
        from .config import RunConfig

        return RunConfig
    if name == "TRANSPORTS":
        from .transports import TRANSPORTS

        return TRANSPORTS
    raise AttributeError(name)
