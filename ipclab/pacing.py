"""Keeping a send schedule t0 + i/R in a worker: sleep through the long part of a gap, spin the last bit.

Why not sleep to the due time: a Linux thread's sleep overshoots by its timer slack (50 us by default) plus the
wake-up; at 10,000 msg/s (100 us apart) that alone is half a period. Why not spin all the time: workers of a
blocking transport share one CPU (engine.policy), so a spinning client would take the CPU its own server needs
to answer. So an open-loop client first lowers its timer slack to 1 us (prctl PR_SET_TIMERSLACK, Linux; the
slack is per thread and the worker's main thread is the only one that paces), then sleeps until SPIN_NS before
the due time and spins on the clock (or on a readiness look) for the rest.

Measured on this 2-vCPU VM, pipe pingpong at 10,000/s, 64 B (see the issue note for the table): with the
default 50 us slack and no spinning, achieved 9,92x/s and lag p50 ~60 us; slack 1 us and SPIN_NS 20 us gave
achieved within 0.1 % and lag p50 of a few us. A longer spin bought nothing measurable and costs CPU.

The schedule is integer nanoseconds on perf_counter_ns (CLOCK_MONOTONIC on Linux, shared by the processes of
one host): ``due(i) = t0 + int(i * period)``, ``period = 1e9 / R`` as a float (exact to well under 1 ns for the
2**21 requests a trial may hold).
"""

from __future__ import annotations

import time
from collections.abc import Callable

SPIN_NS = 20_000  # the last 20 us before a due time are spun, not slept
SLICE_NS = 20_000  # a channel that can only look (the shm ring) is looked at every 20 us while requests wait
TIMER_SLACK_NS = 1_000
PR_SET_TIMERSLACK = 29


def lower_timer_slack(ns: int = TIMER_SLACK_NS) -> bool:
    """Ask the kernel to wake this thread within ``ns`` of a sleep's end; False where it cannot (not Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


class Schedule:
    """Due times t0 + i/R in ns; ``t0`` is set by ``start`` (a little ahead, so request 0 is not late)."""

    __slots__ = ("rate", "period", "t0")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.period = 1e9 / rate
        self.t0 = 0

    def start(self, now: int, lead_ns: int = 50_000) -> int:
        self.t0 = now + lead_ns
        return self.t0

    def due(self, i: int) -> int:
        return self.t0 + int(i * self.period)


def sleep_until(due: int, clock: Callable[[], int] = time.perf_counter_ns, spin_ns: int = SPIN_NS) -> int:
    """Sleep until ``spin_ns`` before ``due``, then spin; returns the clock reading at or after ``due``."""
    now = clock()
    gap = due - now
    if gap > spin_ns:
        time.sleep((gap - spin_ns) / 1e9)
        now = clock()
    while now < due:
        now = clock()
    return now


def achieved_rate(sent: int, t0: int, last_send: int) -> float | None:
    """Requests sent per second over the window: (sent - 1) intervals from the first intended send time to the
    actual send of the last request. On schedule this is the offered rate; every send the harness could not make
    on time (a full pipe, a stall it had to wait out) pushes the last send later and the figure down."""
    if sent < 2 or last_send <= t0:
        return None
    return (sent - 1) * 1e9 / (last_send - t0)
