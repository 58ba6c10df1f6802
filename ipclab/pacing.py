"""Keeping a send schedule t0 + i/R in a worker: sleep through the long part of a gap, spin the last bit.

Why not sleep to the due time: a Linux thread's sleep overshoots by its timer slack (50 us by default) plus the
wake-up; at 10,000 msg/s (100 us apart) that alone is half a period. Why not spin all the time: workers of a
blocking transport share one CPU (engine.policy), so a spinning client would take the CPU its own server needs
to answer. So an open-loop client first lowers its timer slack to 1 us (prctl PR_SET_TIMERSLACK, Linux; the
slack is per thread and the worker's main thread is the only one that paces), then sleeps until SPIN_NS before
the due time and spins on the clock (or on a readiness look) for the rest.

Measured (2-vCPU VM, load average 8 from other jobs, the pacing loop alone pinned to one CPU, lag = actual minus
intended send time; achieved is within 0.03 % of offered in every row, so the lag decides):

    rate    timer slack    spin     lag p50
    1000    50 us (default)  0 us    90 us
    1000    50 us           20 us    71 us
    1000    1 us             0 us    32 us
    1000    1 us            20 us     4 us      <- chosen: a few us, 2-3 % CPU
    1000    1 us            60 us     0 us      (twice the CPU at 10,000/s, and worse p50 there: 259 us)
    10000   50 us           20 us    56 us
    10000   1 us            20 us     9 us

p99 lag was 0.6-6 ms in every row: on a machine that busy the client sometimes waits for a CPU, which no pacing
can help (the lag figures of every cell say how much). Through a pipe (pingpong, 64 B) the chosen setting gave
achieved 1,000.0/s and 9,947-10,000/s, lag p50 8-20 us.

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
