"""Loops the round-trip patterns share: the timed client loop, end markers, and the figures of its samples
(streams use the last two as well).

``round_trips(ctx, exchange)`` is the client side of every pattern that times one exchange at a time and may
lose it (reqrep, connect, burst, and pingpong on lossy transports): warm-up, the measured window (count or
duration), growing the sample array of a duration run up to MAX_SAMPLES, and counting lost exchanges.
``exchange(seq)`` does one exchange and returns its duration in ns, or LOST when the reply never came (the
exchange reads the clock itself, so the loop's own bookkeeping is never inside the timed window).

One Python call per exchange is the price of sharing: it is paid outside the timed window, and exchanges that
use it cost microseconds (a lossy datagram round trip, a request of S bytes, a new connection, K messages).
pingpong's reliable client keeps its own loop, which calls the channel's C methods directly (hot_io), because a
frame per round trip is a visible share of a 6 us pipe round trip.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from typing import Any

from .. import stats
from ..histogram import Histogram
from .common import (
    END_MARKERS,
    IDLE_TIMEOUT,
    REPLY_TIMEOUT,
    Context,
    decode_samples,
    end_marker,
    grow,
    marker_test,
    new_samples,
)

HISTOGRAMS = "histograms"  # the key of metrics()'s output holding {prefix: histogram JSON} (the sweep moves it)

LOST = -1  # what exchange() returns when the reply did not come within the timeout (lossy transports)
DEFAULT_CAP = 1 << 16  # initial sample array of a duration run (grown by doubling)


class Tally:
    """Counters an exchange updates as it goes: late replies discarded, corrupt replies, anything unexpected."""

    __slots__ = ("stale", "corrupt", "checked", "unexpected")

    def __init__(self) -> None:
        self.stale = self.corrupt = self.checked = self.unexpected = 0


def round_trips(ctx: Context, exchange: Callable[[int], int], channel: Any = None,
                cap: int = DEFAULT_CAP) -> tuple[array, int, int]:
    """(samples, measured, lost): ctx.warmup unmeasured exchanges, then a count or a duration of measured ones.

    On a lossy transport ``channel`` gets the REPLY_TIMEOUT after which an exchange counts as lost.

    With a count, the trial ends after ``count`` measured exchanges, lost ones included (a lost exchange is an
    attempt like any other: loss is a figure, not a reason to run longer). A duration run's window starts after
    the warm-up, as on the reliable loops, and ends at the first exchange finishing past the deadline.
    """
    probe, clock, count = ctx.probe, time.perf_counter_ns, ctx.count
    if channel is not None and not ctx.reliable:
        channel.set_timeout(REPLY_TIMEOUT)
    for seq in range(ctx.warmup):
        exchange(seq)
    cap = count if count is not None else cap
    samples = new_samples(cap)
    n = lost = 0
    seq = ctx.warmup
    probe.begin()
    deadline = None if ctx.duration is None else clock() + int(ctx.duration * 1e9)
    while True:
        took = exchange(seq)
        seq += 1
        if took == LOST:
            lost += 1
        else:
            samples[n] = took
            n += 1
        if deadline is None:
            if n + lost == count:
                break
        elif clock() >= deadline:
            break
        elif n == cap:
            if not grow(samples):
                break  # MAX_SAMPLES exchanges: the trial ends here, memory stays bounded
            cap = len(samples)
    probe.end()
    return samples, n, lost


def serve_until_end(channel: Any, ctx: Context) -> tuple[int, int]:
    """Before a server's loop that runs until the end marker (duration runs, lossy transports): a lossy channel
    gets the IDLE_TIMEOUT, and the CPU window opens now when no warm-up comes first. Returns the end marker's
    test (index, value), as common.marker_test. The loop itself stays in the pattern: it is the timed echo."""
    if not ctx.reliable:
        channel.set_timeout(IDLE_TIMEOUT)
    if ctx.warmup == 0:
        ctx.probe.begin()
    return marker_test(ctx.payload)


def send_markers(send: Callable[[memoryview], Any], payload: bytes, lossy: bool, length: int | None = None) -> None:
    """Tell the server to stop with the end marker of ``payload`` (its first ``length`` bytes): once, or
    END_MARKERS times on a lossy transport, which may lose some; a server already gone is fine."""
    marker = memoryview(end_marker(payload))[:length]
    for _ in range(END_MARKERS if lossy else 1):
        try:
            send(marker)
        except (ConnectionRefusedError, BrokenPipeError):
            break


def latency_figures(samples_b64: str, prefix: str,
                    names: tuple[str, ...] = stats.LATENCY_NAMES) -> tuple[dict[str, Any], int, float]:
    """Figures of a client's timed exchanges: ``{prefix}_{name}_us`` for each summary ``name`` (p99.9 is
    'p999'), exact over this trial's samples; the stored distribution ``{prefix}_quantiles_ns``; and, under
    ``"histograms"``, ``{prefix: histogram JSON}`` for the cell's pooled summary (HISTOGRAMS). Also
    returns the number of samples and their mean (ns)."""
    samples = decode_samples(samples_b64)
    h = Histogram.of(samples)
    out: dict[str, Any] = {HISTOGRAMS: {prefix: h.to_json()}}
    ordered = sorted(samples)
    if not ordered:
        return out, 0, 0.0
    # Percentiles from the sorted samples; mean and stdev from the histogram's exact integer sums (the same
    # values, without two more passes over up to MAX_SAMPLES Python ints).
    s = {"min": ordered[0], "max": ordered[-1], "mean": h.mean(), "stdev": h.stdev()}
    for name in names:
        if name not in s:
            s[name] = stats.percentile(ordered, float(name[1:]))
        out[stats.latency_key(prefix, name)] = s[name] / 1000.0
    out[f"{prefix}_quantiles_ns"] = [round(v) for v in stats.quantiles(ordered)]
    return out, len(ordered), float(s["mean"])
