"""The paced stream (``stream --rate R``): the producer sends message i at t0 + i/R and stamps that INTENDED send
time in the header, so the consumer's one-way latency (stream.py, unchanged) is measured from the schedule: a
consumer or a channel that stalls is charged for every message the stall delayed, at a fixed offered load.

Same host only, as stream's one-way latency always is (both ends read one CLOCK_MONOTONIC); across hosts the
remote code drops it. A stream has no answers: there is no service time (the header has room for one time,
and it carries the intended one) and nothing in flight to count; the schedule lag and the achieved rate are
the producer's (pacing.achieved_rate). Below 16 B the messages carry no time: the cell paces and counts, and
has no one-way latency.
"""

from __future__ import annotations

import time
from typing import Any

from .. import pacing
from .common import HEADER, HEADER_SIZE, Context, encode_samples, grow, new_samples, seq_modulus, seq_view
from .loops import send_markers
from .openloop import MAX_REQUESTS, schedule_raw, unsent


def producer(ch: Any, ctx: Context) -> dict[str, Any]:
    """Warm-up messages as fast as they go, then the paced window (count or duration)."""
    assert ctx.rate is not None
    pacing.lower_timer_slack()
    size, warmup, probe = ctx.size, ctx.warmup, ctx.probe
    sbuf = bytearray(ctx.payload)
    smv = memoryview(sbuf)
    send = ch.send
    clock = time.perf_counter_ns
    pack = HEADER.pack_into
    hdr = size >= HEADER_SIZE
    seqv = seq_view(sbuf)
    small = seqv is not None and not hdr
    mask = seq_modulus(size) - 1
    for seq in range(warmup):
        if hdr:
            pack(sbuf, 0, seq, clock())
        elif small:
            seqv[0] = seq & mask  # type: ignore[index]
        send(smv)
    count = ctx.count
    lag = new_samples(min(count if count is not None else 1 << 16, MAX_REQUESTS))
    sched = pacing.Schedule(ctx.rate)
    period = sched.period
    spin = pacing.spin_ns(period)
    sleep = time.sleep
    probe.begin()
    t0 = sched.start(clock())
    end = None if ctx.duration is None else t0 + int(ctx.duration * 1e9)
    i = last_send = 0
    capped = False
    while True:
        due = t0 + int(i * period)
        if i == count or count is None and (due >= end or last_send >= end):  # type: ignore[operator]
            break  # a duration run also ends when the clock passes its end: sends still due are "unsent"
        if i == len(lag) and (i >= MAX_REQUESTS or not grow(lag)):
            capped = True  # as openloop.client: the window ends at MAX_REQUESTS
            break
        seq = warmup + i
        if hdr:
            pack(sbuf, 0, seq, due)
        elif small:
            seqv[0] = seq & mask  # type: ignore[index]
        now = clock()
        if due - now > spin:
            sleep((due - now - spin) / 1e9)
        while now < due:
            now = clock()
        send(smv)
        lag[i] = now - due
        last_send = now
        i += 1
    probe.end()
    if size and (count is None or not ctx.reliable):  # as stream's producer: the consumer cannot know the count
        send_markers(send, ctx.payload, lossy=not ctx.reliable)
    return {"sent": i, "sent_total": warmup + i, "lag": encode_samples(lag, i),
            "schedule": schedule_raw(ctx.rate, i, t0, last_send, None, None, capped, unsent(end, t0, period, i)),
            "probe": probe.result()}
