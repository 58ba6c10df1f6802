"""Compatibility facade over ipclab.engine: ``Runner``, ``run`` and the policy functions, where callers import them.

The engine is split by job (ipclab.engine.sweep, policy, supervise, launch, worker, rundir). This module keeps
the names the CLI, the tests and the benchmarks import, and accepts a pattern's name where the engine takes its
declaration (``auto_count("name", size)``, ``choose_placement(pin, cls, "name", keys)``).
"""

from __future__ import annotations

from typing import Any

from .declarations import TrafficShape
from .engine import policy
from .engine.launch import LocalProcess
from .engine.policy import auto_warmup, worker_keys
from .engine.supervise import EXIT_GRACE, PEER_GRACE, SETUP_TIMEOUT, Timing
from .engine.sweep import SPREAD_WARN, Runner, run, summarize_trials

__all__ = ["EXIT_GRACE", "PEER_GRACE", "SETUP_TIMEOUT", "SPREAD_WARN", "LocalProcess", "Runner", "Timing",
           "auto_count", "auto_warmup", "choose_placement", "run", "summarize_trials", "worker_keys"]


def _spec(pattern: Any) -> Any:
    if isinstance(pattern, str):
        from .patterns import get_spec

        return get_spec(pattern)
    return pattern


def auto_count(pattern: Any, size: int) -> int:
    """Messages per trial for a pattern (its name or its PatternSpec) when --count/--duration are not given."""
    return policy.auto_count(_spec(pattern).count_class, size)


def choose_placement(pin: str, transport: Any, pattern: Any,
                     keys: list[str]) -> tuple[dict[str, list[int] | None], str, list[dict[str, str]]]:
    """CPUs per worker, a description and warnings, for a pattern given by name, PatternSpec or TrafficShape."""
    shape = pattern if isinstance(pattern, TrafficShape) else _spec(pattern).shape
    return policy.choose_placement(pin, transport, shape, keys)
