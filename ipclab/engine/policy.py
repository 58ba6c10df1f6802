"""Per-cell policy read from declarations: messages per trial, warm-up, CPU placement, and the warnings they raise.

Nothing here names a pattern: counts come from ``PatternSpec.count_class``, placement from ``PatternSpec.shape``
and the transport's declared ``spins`` and ``reliable``.
"""

from __future__ import annotations

import os
from typing import Any

from ..config import MiB
from ..declarations import CountClass, TrafficShape

Warning = dict[str, str]  # {"code": ..., "message": ...}
Placement = dict[str, list[int] | None]
ROUND_TRIP_COUNTS = (200, 5000)  # each iteration is a full wake-up cycle
ONE_WAY_COUNTS = (200, 100000)  # a small-message trial lasts ~0.1-0.5 s rather than a few scheduler ticks


def warning(code: str, message: str) -> Warning:
    """A cell warning: a stable code the reports group and filter by, and the text the user reads."""
    return {"code": code, "message": message}


def auto_count(count_class: CountClass, size: int) -> int:
    """Messages per trial when --count/--duration are not given: ~64 MiB of traffic.

    Round trips: 200..5000 (each is a full wake-up cycle). One-way traffic: 200..100000, so that a trial of
    small messages lasts ~0.1-0.5 s rather than a few scheduler ticks.
    """
    low, high = ROUND_TRIP_COUNTS if count_class == "round_trip" else ONE_WAY_COUNTS
    budget = 64 * MiB // max(size, 1)
    return max(low, min(high, budget))


PACED_SECONDS = 1.0  # an open-loop cell without --count/--duration sends about this long
PACED_COUNTS = (200, 100000)


def paced_count(rate: float) -> int:
    """Requests (messages) of an open-loop cell when --count/--duration are not given: about PACED_SECONDS of
    the schedule (rate x 1 s), 200..100000: enough samples for a p99 at low rates, a bounded trial at high ones."""
    low, high = PACED_COUNTS
    return max(low, min(high, round(rate * PACED_SECONDS)))


def auto_warmup(count: int) -> int:
    return min(100, count // 10)


def usable_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def choose_placement(pin: str, transport: Any, shape: TrafficShape, keys: list[str],
                     cpus: list[int] | None = None) -> tuple[Placement, str, list[Warning]]:
    """CPUs per worker, a description for table headers, and warnings.

    auto: workers of a blocking transport share one CPU, whatever the traffic. A wake-up that crosses vCPUs
    costs 60-180 us of CPU on a VM against 6-25 us on one CPU, and an unpinned run flips between the two from
    run to run; measured here, one CPU was faster, cheaper per message and steadier for one-way traffic too (pipe
    64 KiB: 3951 vs 319 MB/s; benchmarks/placement.py). Busy-polling transports get one CPU per side: two pollers
    on one CPU would cost a whole timeslice per message; so does a writer that never waits (an unbounded shape)
    over a transport without back-pressure (UDP), whose reader must run in parallel to keep up. ``--pin cross``
    shows what parallel sides buy. ``cpus`` (default: this process's affinity) is injectable for tests.
    """
    cpus = usable_cpus() if cpus is None else sorted(cpus)
    warnings: list[Warning] = []
    mode = pin
    if pin == "auto":
        # A writer that can outrun its reader without ever blocking (no back-pressure: UDP) would, on the
        # reader's CPU, overrun it before it is scheduled (44-58 % loss measured, against 0-2 % in parallel).
        overruns = not transport.reliable and shape.unbounded
        mode = "cross" if (transport.spins or overruns) else "same"
    if mode == "cross" and len(cpus) < 2:
        warnings.append(warning("placement", f"only {len(cpus)} CPU available: cross-CPU placement impossible, "
                                             "both workers share it"))
        mode = "same"
    if mode == "none" or not cpus:
        return {k: None for k in keys}, "unpinned", warnings
    if mode == "same":
        cpu = cpus[-1]
        if transport.spins:
            warnings.append(warning("placement", f"{transport.name} busy-polls: two pollers on one CPU cost a "
                                                 "scheduler timeslice per message; use --pin cross"))
        return {k: [cpu] for k in keys}, f"same CPU ({cpu})", warnings
    if mode == "cross":
        server, client = cpus[0], cpus[1]
    else:
        parts = [int(p) for p in mode.split(",")]
        server, client = parts[0], parts[-1]
    placed: Placement = {k: [server] if k.startswith("server") else [client] for k in keys}
    if server == client:
        return placed, f"same CPU ({server})", warnings
    return placed, f"cross CPUs (server {server}, client {client})", warnings


def worker_keys(roles: list[tuple[str, int]]) -> list[str]:
    """Raw-result keys: the role name, or role+index when a pattern has several workers of one role."""
    counts: dict[str, int] = {}
    for role, _ in roles:
        counts[role] = counts.get(role, 0) + 1
    return [role if counts[role] == 1 else f"{role}{index}" for role, index in roles]
