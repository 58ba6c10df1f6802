"""Keeping a send schedule t0 + i/R in a worker: sleep through the long part of a gap, spin the last bit.

Why not sleep to the due time: a Linux thread's sleep overshoots by its timer slack (50 us by default) plus the
wake-up; at 10,000 msg/s (100 us apart) that alone is half a period. Why not spin all the time: workers of a
blocking transport share one CPU (engine.policy), so a spinning client would take the CPU its own server needs
to answer. So an open-loop client first lowers its timer slack to 1 us (prctl PR_SET_TIMERSLACK, Linux; the
slack is per thread and the worker's main thread is the only one that paces), then sleeps until spin_ns(period)
before the due time and spins on the clock (or on a readiness look) for the rest.

Measured with the pacing loop alone pinned to one CPU of this 2-vCPU VM (lag = actual minus intended send time;
achieved was within 0.03 % of offered in every row, so the lag decides; CPU = the pacer's share of its CPU):

    machine   rate    timer slack     spin    lag p50   lag p99   CPU
    load 8    1000    50 us (default)  0 us    90 us    4.6 ms    3 %
    load 8    1000    1 us            20 us     4 us    3.9 ms    2 %
    load 8    10000   1 us            20 us     9 us    6.0 ms   18 %
    load 1    1000    50 us (default)  0 us    96 us    449 us    3 %
    load 1    1000    1 us            20 us    11-30 us  143-481 us 3-4 %
    load 1    1000    1 us            50 us   0.4 us     48 us    4 %
    load 1    10000   1 us            20 us   3-14 us  36 us-2.6 ms 18-24 %
    load 1    10000   1 us            40 us   0.1 us     27 us   33 %
    load 1    10000   1 us            60 us     0 us    129 us   54 %

An idle vCPU wakes 30-50 us late (the hypervisor), a busy one sooner: 20 us of spin was enough under load but
not idle. Chosen: timer slack 1 us and spin_ns(period) = min(50 us, period / 4): 50 us at 1,000/s (4 % CPU),
25 us at 10,000/s (about a quarter of the CPU rather than half: the server shares it under --pin auto). p99 lag
of milliseconds under load is the client waiting for a CPU, which no pacing helps (each cell's lag figures say
how much). Through a pipe (pingpong, 64 B) achieved was 1,000.0/s and 9,947-10,000/s in every run, within 1 %.

The schedule is integer nanoseconds on perf_counter_ns (CLOCK_MONOTONIC on Linux, shared by the processes of
one host): ``due(i) = t0 + int(i * period)``, ``period = 1e9 / R`` as a float (exact to well under 1 ns for the
2**21 requests a trial may hold).
"""

from __future__ import annotations

import time
from collections.abc import Callable

SPIN_NS = 50_000  # at most the last 50 us before a due time are spun, not slept (spin_ns: a quarter period below)
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


def spin_ns(period: float) -> int:
    """How long before a due time to stop sleeping and spin: SPIN_NS, or a quarter of the period when that is
    shorter, so a fast schedule leaves the shared CPU to the server for most of each gap (measured below)."""
    return min(SPIN_NS, int(period // 4))


def sleep_until(due: int, clock: Callable[[], int] = time.perf_counter_ns, spin: int = SPIN_NS) -> int:
    """Sleep until ``spin`` ns before ``due``, then spin; returns the clock reading at or after ``due``."""
    now = clock()
    gap = due - now
    if gap > spin:
        time.sleep((gap - spin) / 1e9)
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
