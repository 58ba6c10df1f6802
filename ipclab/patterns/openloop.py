"""The open-loop client (--rate) the request/response patterns share, and the schedule figures of a paced trial.

Why: a closed loop sends the next request only after the previous answer, so a stall delays one sample instead
of every request that should have been sent during it (coordinated omission). Here request i is due at
t0 + i/R whatever the answers do; latency is taken from that intended time, so a stall is charged to every
request it delayed. Several requests may be outstanding: between sends the client reads the answers that have
come (``Channel.wait_readable``) and matches each to its request by the sequence number in the 16-byte header.

Figures of a trial (raw, per request):
- ``samples``: answer received minus the request's INTENDED send time (the pattern's latency prefix);
- ``service``: answer received minus the request's actual send time (queueing behind earlier requests included;
  it differs from ``samples`` by the lag alone, so it shows how much of a latency the harness's late send was);
- ``lag``: actual minus intended send time, one per request sent: the harness's own error.

In flight: at most ``in_flight_cap`` requests are outstanding, so that the answers never fill the channel while
the client is blocked sending (a full echo direction would block the server, then both ends wait forever): 32 KiB
of answers, at most 128 requests, and no more than a channel's own depth (``in_flight_limit``, e.g. a POSIX
queue's msg_max). At the cap the client waits for the oldest answer before it sends again; such a send is late,
its lag says so, and its latency still counts from the intended time, so nothing is hidden.

Memory: one 8-byte sample per request in three arrays, grown by doubling up to MAX_REQUESTS (2**21: 21 s at
100,000/s, 48 MiB), whatever --count or --duration asked: the window ends there (figure ``window_capped``, a
cell warning), as the closed loops end theirs at MAX_SAMPLES. The
arrays, not a histogram, because folding samples into one inside the loop would stall the schedule it measures.

Lossy transports: a request unanswered REPLY_TIMEOUT after its send is lost; a late or duplicated answer is stale
(never timed). Requests need the header: below 16 B an open-loop cell is n/a.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from .. import pacing
from ..config import MAX_PACED
from ..declarations import Metric, Per, TrafficShape
from .base import latency_metrics
from .common import (
    HEADER,
    HEADER_SIZE,
    IDLE_TIMEOUT,
    REPLY_TIMEOUT,
    Context,
    IntegrityError,
    encode_samples,
    grow,
    new_samples,
)
from .loops import HISTOGRAMS, latency_figures, send_markers

IN_FLIGHT_BYTES = 32 * 1024
IN_FLIGHT_MAX = 128
SPAN_BITS = 12  # 4096 sequence slots: 2 s of a 2,000/s schedule around a lost request
MAX_REQUESTS = MAX_PACED
BLOCK_S = 1.0  # one wait for an answer at the in-flight cap (reliable: waited again until it comes)
NO_READINESS = ("{name} cannot wait for an answer without receiving it (no wait_readable), so requests cannot be "
                "in flight on a schedule; use --rate max (closed loop)")
SMALL = (f"open-loop requests are matched to their answers by the sequence number in the {HEADER_SIZE}-byte "
         f"header; use {HEADER_SIZE} B or more")


def paced_metrics(what: str, plural: str, per: Per, answers: bool = True) -> tuple[Metric, ...]:
    """The declared figures of a pattern's open-loop cells: schedule lag, offered and achieved rate, and for a
    pattern with answers the service time (``what`` timed from the actual send) and the most in flight."""
    out = latency_metrics("lag", "schedule lag (actual minus intended send time)", per)
    if answers:
        out += latency_metrics("service", f"{what} from the actual send (service time)", per)
    out += (Metric("offered_msg_s", "offered rate (--rate)", f"{plural}/s", True, per),
            Metric("achieved_msg_s", "achieved rate (sent per second, first intended to last actual send)",
                   f"{plural}/s", True, per),
            Metric("unsent", f"{plural} due before the end of a duration run but never sent", "", False, per))
    if answers:
        out += (Metric("in_flight_max", f"most {plural} outstanding at once", "", False, per),)
    return out


def not_applicable(size: int, rate: float | None, reliable: bool = True, answers: bool = True) -> str | None:
    """n/a of an open-loop cell known before it runs (the channel's readiness is checked in the worker):
    requests need the header to be matched to their answers; on a lossy transport the receiver gives up after
    IDLE_TIMEOUT without a datagram, so the schedule may leave no longer gap."""
    if rate is None:
        return None
    if answers and size < HEADER_SIZE:
        return SMALL
    if not reliable and rate < 1 / IDLE_TIMEOUT:
        return (f"on a lossy transport the receiver stops after {IDLE_TIMEOUT:g} s without a datagram; a rate of "
                f"{rate:g}/s leaves longer gaps; use at least {1 / IDLE_TIMEOUT:g}/s")
    return None


def carried_shape(declared: TrafficShape) -> TrafficShape:
    """The shape a transport must carry for an open-loop cell of a pattern declaring ``declared``: up to
    IN_FLIGHT_MAX requests outstanding (a stream's unbounded writer stays unbounded)."""
    if declared.in_flight is None or declared.in_flight >= IN_FLIGHT_MAX:
        return declared
    return dataclasses.replace(declared, in_flight=IN_FLIGHT_MAX)


def in_flight_cap(ch: Any, answer_size: int) -> int:
    """How many requests may be outstanding (see the module docstring)."""
    cap = max(1, min(IN_FLIGHT_MAX, IN_FLIGHT_BYTES // max(answer_size, 1)))
    limit = ch.in_flight_limit()  # a channel with a fixed depth (POSIX queues) says so; others None
    return max(1, min(cap, limit)) if limit is not None else cap


def client(ch: Any, ctx: Context, request: bytearray, answer_size: int) -> dict[str, Any]:
    """Warm-up closed-loop exchanges, then the paced window; returns the raw figures (module docstring).

    ``request`` is the message to send (its first 16 bytes get the sequence number and the intended send time);
    the answer is ``answer_size`` bytes whose header carries the request's sequence number and whose body must
    equal the payload's."""
    assert ctx.rate is not None
    rsize = len(request)
    if not ch.waits_readable:
        send_markers(ch.send, ctx.payload, not ctx.reliable, rsize)  # the server is waiting for us: release it
        return {"not_applicable": NO_READINESS.format(name=type(ch).__name__), "probe": ctx.probe.result()}
    pacing.lower_timer_slack()
    qmv = memoryview(request)
    abuf = bytearray(answer_size)
    amv = memoryview(abuf)
    abody, want = amv[HEADER_SIZE:], memoryview(ctx.payload)[HEADER_SIZE:answer_size]
    send, recv, ready = ch.send, ch.recv_into, ch.wait_readable
    clock, sleep = time.perf_counter_ns, time.sleep
    pack, unpack = HEADER.pack_into, HEADER.unpack_from
    lossy, verify, warmup, probe = not ctx.reliable, ctx.verify, ctx.warmup, ctx.probe
    timeout_ns = int(REPLY_TIMEOUT * 1e9)
    if lossy:
        ch.set_timeout(REPLY_TIMEOUT)
    for seq in range(warmup):  # closed loop: the channel and both processes warm up before the schedule starts
        pack(request, 0, seq, clock())
        send(qmv)
        try:
            while recv(amv) and unpack(abuf, 0)[0] != seq:
                pass
        except TimeoutError:
            pass

    count = ctx.count
    cap = in_flight_cap(ch, answer_size)
    # Slots by sequence number: a lost request keeps its slot until REPLY_TIMEOUT, while later ones are answered
    # around it; SPAN of them lets a lossy run keep its schedule past a loss (reliable channels answer in order).
    slots = 1 << max((cap - 1).bit_length(), SPAN_BITS)
    mask = slots - 1
    sent_at = new_samples(slots)
    pending = bytearray(slots)
    room = min(count if count is not None else 1 << 16, MAX_REQUESTS)
    lat, svc, lag = new_samples(room), new_samples(room), new_samples(room)
    sched = pacing.Schedule(ctx.rate)
    period = sched.period
    spin, slice_ns = pacing.spin_ns(period), pacing.SLICE_NS
    i = oldest = got = lost = stale = corrupt = in_flight_max = out = 0
    capped = False
    last_send = 0

    def take() -> None:
        """Receive one answer (one is there) and time it against its request."""
        nonlocal got, stale, corrupt, oldest, out
        try:
            recv(amv)
        except TimeoutError:  # lossy: readiness said yes but a filtered datagram was all there was
            return
        t = clock()
        k = unpack(abuf, 0)[0] - warmup
        if k < oldest or k >= i or not pending[k & mask]:
            if not lossy:
                raise IntegrityError(f"request {k + warmup}: an answer nobody is waiting for (expected "
                                     f"{oldest + warmup})")
            stale += 1
            return
        if not lossy and k != oldest:
            raise IntegrityError(f"request {oldest + warmup}: answer {k + warmup} came first on a reliable channel")
        pending[k & mask] = 0
        out -= 1
        if got == len(lat):
            grow(lat)
            grow(svc)
        lat[got] = t - (t0 + int(k * period))
        svc[got] = t - sent_at[k & mask]
        got += 1
        if verify and abody != want:
            corrupt += 1
        while oldest < i and not pending[oldest & mask]:
            oldest += 1

    def expire(now: int) -> bool:
        """Lossy: the oldest request got no answer within REPLY_TIMEOUT: lost."""
        nonlocal oldest, lost, out
        if not lossy or oldest == i or now - sent_at[oldest & mask] < timeout_ns:
            return False
        pending[oldest & mask] = 0
        lost += 1
        out -= 1
        while oldest < i and not pending[oldest & mask]:
            oldest += 1
        return True

    def oldest_due(now: int) -> int:
        """How long to wait for the oldest answer: until it would count as lost (lossy), else BLOCK_S."""
        return sent_at[oldest & mask] + timeout_ns if lossy else now + int(BLOCK_S * 1e9)

    def wait_answer(until: int) -> None:
        """Take an answer if one comes before ``until`` (ns); a channel that only looks is looked at in slices."""
        now = clock()
        if ready(max(0.0, (until - now) / 1e9)):
            take()
            return
        now = clock()
        if now < until:
            sleep(min(slice_ns, until - now) / 1e9)

    probe.begin()
    t0 = sched.start(clock())
    end = None if ctx.duration is None else t0 + int(ctx.duration * 1e9)
    while True:
        due = t0 + int(i * period)
        if i == count or count is None and (due >= end or last_send >= end):  # type: ignore[operator]
            break  # a duration run also ends when the clock passes its end: sends still due are "unsent"
        if i == len(lag) and (i >= MAX_REQUESTS or not grow(lag)):
            capped = True  # the window ends here (a count or duration beyond MAX_REQUESTS): memory stays bounded
            break
        while True:
            now = clock()
            if out >= cap or i - oldest >= slots:  # at the cap: an answer first (this send will be late)
                if not expire(now):
                    wait_answer(oldest_due(now))
                continue
            if now >= due:
                break
            if out:
                if expire(now):
                    continue
                wait_answer(due - spin if due - now > spin else now)
            elif due - now > spin:
                sleep((due - now - spin) / 1e9)
        pack(request, 0, warmup + i, due)  # the intended send time travels in the header (a paced stream's too)
        now = clock()
        send(qmv)
        sent_at[i & mask] = now
        pending[i & mask] = 1
        lag[i] = now - due
        last_send = now
        i += 1
        out += 1
        if out > in_flight_max:
            in_flight_max = out
    while oldest < i:  # the answers still out
        now = clock()
        if not expire(now):
            wait_answer(oldest_due(now))
    probe.end()
    if got and not verify and abody != want:  # the last answer is checked byte for byte in any case
        corrupt += 1
    send_markers(send, ctx.payload, lossy, rsize)
    return {"samples": encode_samples(lat, got), "service": encode_samples(svc, got), "lag": encode_samples(lag, i),
            "n": got, "sent": i, "lost": lost, "stale": stale, "corrupt": corrupt,
            "schedule": schedule_raw(ctx.rate, i, t0, last_send, in_flight_max, cap, capped,
                                     unsent(end, t0, period, i)),
            "probe": probe.result()}


def unsent(end: int | None, t0: int, period: float, sent: int) -> int:
    """Requests a duration run's schedule had due before its end that the sender never got to (0 with a count)."""
    if end is None:
        return 0
    due = math.ceil((end - t0) / period)  # requests i with t0 + i * period < end
    return max(0, due - sent)


def schedule_raw(rate: float, sent: int, t0: int, last_send: int, in_flight_max: int | None, cap: int | None,
                 capped: bool, behind: int = 0) -> dict[str, Any]:
    """What a paced sender reports about its schedule (read by schedule_figures in the parent)."""
    return {"offered_msg_s": rate, "sent": sent, "t0_ns": t0, "last_send_ns": last_send,
            "in_flight_max": in_flight_max, "in_flight_cap": cap, "capped": capped, "unsent": behind}


def answer_figures(raw: dict[str, Any], prefix: str) -> tuple[dict[str, Any], int]:
    """A paced client's latency figures: ``{prefix}_*`` from the intended send time and ``service_*`` from the
    actual one, both with their histograms under HISTOGRAMS; also the number of answers timed."""
    out, n, _ = latency_figures(raw["samples"], prefix)
    service, _, _ = latency_figures(raw["service"], "service")
    out[HISTOGRAMS].update(service.pop(HISTOGRAMS))
    out.update(service)
    lost, sent = raw["lost"], raw["sent"]
    out.update({"lost": lost, "stale": raw["stale"], "corrupt": raw["corrupt"],
                "loss_pct": 100.0 * lost / sent if sent else None})
    return out, n


def schedule_figures(raw_by_role: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The schedule figures of a paced trial, from whichever worker paced it (the one with "schedule"):
    ``lag_*_us`` (actual minus intended send time) with its histogram, ``offered_msg_s``, ``achieved_msg_s``
    (pacing.achieved_rate), ``unsent`` (a duration run: requests due before its end never sent, because the
    sender fell behind), ``in_flight_max`` (most requests outstanding at once; absent for a stream)."""
    for raw in raw_by_role.values():
        sched = raw.get("schedule")
        if sched is None:
            continue
        out, _, _ = latency_figures(raw["lag"], "lag")
        out.update(offered_msg_s=sched["offered_msg_s"],
                   achieved_msg_s=pacing.achieved_rate(sched["sent"], sched["t0_ns"], sched["last_send_ns"]))
        out["unsent"] = sched.get("unsent", 0)
        if sched.get("in_flight_max") is not None:
            out["in_flight_max"] = sched["in_flight_max"]
        if sched.get("capped"):
            out["window_capped"] = 1
        return out
    return {}
