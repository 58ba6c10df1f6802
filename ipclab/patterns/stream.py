"""stream: the producer sends as fast as the mechanism allows; the consumer counts and checks every message.

Throughput is timed at the consumer, from the first measured message to the last (never from the sender's
write loop, which kernel buffers would flatter). Messages of 16 bytes or more carry their sequence number, and
one in SAMPLE_EVERY (16) carries its send time, so the consumer also records one-way latency under load, sampled
1 in 16 (the hot loops are in streamloops.py). On lossy transports the consumer counts received, lost,
reordered and duplicated messages and never waits longer than IDLE_TIMEOUT for a datagram that was lost.
"""

from __future__ import annotations

import time
from typing import Any

from ..declarations import PatternSpec, TrafficShape
from .base import latency_metrics, pair_roles
from .common import (
    HEADER,
    HEADER_SIZE,
    IDLE_TIMEOUT,
    Context,
    IntegrityError,
    cpu_figures,
    encode_samples,
    grow,
    marker_test,
    new_samples,
    receive_buffer,
    seq_modulus,
    seq_view,
    throughput_figures,
)
from .loops import latency_figures, send_markers
from .openloop import paced_metrics
from .streamloops import SAMPLE_EVERY, SAMPLED, consume_reliable, produce

ORDER = 20
UNNUMBERED = ("empty messages carry no sequence number: the first --warmup arrivals are taken as the warm-up "
              "(a loss among them is charged to the measured window), reordering and duplicates cannot be seen")
LABELS = {"server": "consumer", "client": "producer"}

SPEC = PatternSpec(
    name="stream",
    summary="a producer sends as fast as the mechanism allows; throughput and one-way latency at the consumer",
    shape=TrafficShape(duplex=False, in_flight=None),
    headline="mb_s",
    count_class="bulk",
    labels=LABELS,
    metrics=latency_metrics("owl", f"one-way latency under load ({SAMPLED})", "message")
    + paced_metrics("one-way latency", "messages", "message", answers=False),  # --rate (patterns/paced.py)
    tables=("mb_s", "msg_s", "cpu_us_msg"),
    report_tables=("mb_s", "msg_s", "owl_p50_us", "cpu_us_msg", "loss_pct"),
    sample_key="received",
    quantiles_key="owl_quantiles_ns",
    distribution=f"one-way latency under load ({SAMPLED})",
    default_run=True,
    paced="message",  # --rate: the producer sends on a schedule (patterns/paced.py)
)


roles = pair_roles


def run(role: str, index: int, channel: Any, ctx: Context) -> dict[str, Any]:
    if ctx.rate is not None and role != "server":  # --rate: a paced producer (the consumer is the same)
        from .paced import producer

        return producer(channel, ctx)
    if role == "server":
        # The producer stamps 1 message in SAMPLE_EVERY; a paced one (--rate, where that exists) stamps all.
        every = 1 if ctx.rate is not None else SAMPLE_EVERY
        if ctx.reliable and ctx.size:
            return consume_reliable(channel, ctx, every)
        return _consumer_until_end(channel, ctx, every)
    return _producer(channel, ctx)


def _producer(ch: Any, ctx: Context) -> dict[str, Any]:
    seq = produce(ch, ctx)  # streamloops: the hot loop; latency stamped on 1 message in SAMPLE_EVERY
    # An empty message cannot carry a marker: the consumer would count it as one more message.
    if ctx.size and (ctx.count is None or not ctx.reliable):
        send_markers(ch.send, ctx.payload, lossy=not ctx.reliable)
    return {"sent": seq - ctx.warmup, "sent_total": seq, "probe": ctx.probe.result()}


def _consumer_until_end(ch: Any, ctx: Context, every: int = SAMPLE_EVERY) -> dict[str, Any]:
    """Duration runs and lossy transports: read until the end marker, EOF, the count, or the idle timeout.

    Every message of 1 B or more carries its sequence number (the header's, or the sequence field's modulo
    2**(8k-1), placed by serial-number arithmetic near the highest seen): warm-up messages are told by number,
    so loss, reordering and duplicates during warm-up are never charged to the measured window, and a lossy
    consumer reads on after the last measured message until the end marker, so a duplicate of it is counted.
    An empty message carries nothing: the first ``warmup`` arrivals are the warm-up, and the count is all.
    """
    size, warmup, probe = ctx.size, ctx.warmup, ctx.probe
    reliable = ctx.reliable
    rbuf, rmv, got_body, want_body = receive_buffer(ctx)
    recv = ch.recv_into
    clock = time.perf_counter_ns
    unpack = HEADER.unpack_from
    hdr = size >= HEADER_SIZE
    seqv = seq_view(rbuf)
    numbered = seqv is not None
    modulus = seq_modulus(size) if size < 8 else 0  # from 8 B up the number is whole: nothing to unwrap
    # UDP loses in long runs and reorders little: a number placed up to 7/8 of the modulus ahead of the highest
    # seen, at most 1/8 behind. A jump ahead of more than 1/4 is counted: the cell says the figures may be off.
    forward, leap, leaps = modulus - (modulus >> 3), modulus >> 2, 0
    verify = ctx.verify
    mark_at, mark_value = marker_test(ctx.payload)
    expected = ctx.count  # measured messages, if known
    if not reliable:
        ch.set_timeout(IDLE_TIMEOUT)
    cap = expected if expected is not None else 1 << 16
    smask = every - 1  # latency on the sequence numbers that are multiples of ``every`` (the stamped ones)
    lat = new_samples((cap + smask) // every if hdr else 0)
    seen = bytearray((warmup + cap) if numbered else 0)
    measured = warmup_seen = reordered = duplicated = corrupt = sampled = 0
    highest = -1
    sent_at = 0
    t_first = t_last = 0
    ended_by = "count"
    while True:
        try:
            recv(rmv)
        except TimeoutError:
            ended_by = "idle timeout"
            break
        except EOFError:
            ended_by = "eof"
            break
        now = clock()
        if size and rbuf[mark_at] == mark_value:
            ended_by = "end marker"
            break
        if numbered:
            if hdr:
                seq, sent_at = unpack(rbuf, 0)
            else:
                seq = seqv[0]  # type: ignore[index]
                if modulus:  # the number with these low bits nearest ahead of the highest seen (up to 7/8 ahead)
                    ahead = (seq - highest) % modulus
                    seq = highest + ahead if ahead < forward else highest + ahead - modulus
                    if ahead > leap and ahead < forward:
                        leaps += 1  # a long run lost in a row: near the limit of what the numbers can tell
            if reliable and seq != warmup_seen + measured:
                raise IntegrityError(f"message {warmup_seen + measured}: got sequence {seq} on a reliable transport")
            if seq < 0:  # from before the first message: nothing we sent (a corrupt or foreign number)
                corrupt += 1
                continue
            if seq >= len(seen):
                seen.extend(bytes(max(seq + 1, 2 * len(seen)) - len(seen)))  # rare: duration runs
            if seq < warmup:  # the warm-up: its losses, reorders and duplicates are not the window's
                if not seen[seq]:
                    seen[seq] = 1
                    warmup_seen += 1
                if seq > highest:
                    highest = seq
                continue
            if seen[seq]:
                duplicated += 1
                continue
            seen[seq] = 1
            if seq < highest:
                reordered += 1
            else:
                highest = seq
            # the stamped messages only; past MAX_SAMPLES: counted, latency not recorded
            if hdr and not seq & smask and (sampled < len(lat) or grow(lat)):
                lat[sampled] = now - sent_at
                sampled += 1
        elif warmup_seen < warmup:
            warmup_seen += 1
            continue
        if not measured:
            t_first = now
            probe.begin()
        if verify and got_body != want_body:
            corrupt += 1
        measured += 1
        t_last = now
        if measured == expected and not numbered:  # numbered: read on to the marker (a late duplicate counts)
            break
    probe.end()
    out = {"received": measured, "unique": measured, "reordered": reordered, "duplicated": duplicated,
           "corrupt": corrupt, "first_ns": t_first, "last_ns": t_last, "ended_by": ended_by,
           "latency": encode_samples(lat, sampled), "probe": probe.result()}
    if not numbered and not reliable:
        out["caveat"] = UNNUMBERED
    elif leaps:
        out["caveat"] = (f"at {size} B sequence numbers wrap every {modulus} messages, and runs of more than "
                         f"{leap} lost in a row were seen: loss, reordering and duplicates may be misplaced; use 8 B "
                         "or more")
    return out


def metrics(raw: dict[str, dict[str, Any]], ctx: Context) -> dict[str, Any]:
    """Per-trial figures (parent side): throughput at the consumer, loss accounting, one-way latency."""
    consumer, producer = raw["server"], raw["client"]
    sent, received = producer["sent"], consumer["unique"]
    lost = max(0, sent - received)
    out: dict[str, Any] = {
        "sent": sent,
        "received": received,
        "lost": lost,
        "loss_pct": 100.0 * lost / sent if sent else None,
        "reordered": consumer["reordered"],
        "duplicated": consumer["duplicated"],
        "corrupt": consumer["corrupt"],
        "elapsed_ns": consumer["last_ns"] - consumer["first_ns"],
    }
    # A reliable duration run times the messages up to its last sampled one (its "window", see streamloops).
    out.update(throughput_figures(consumer.get("window", received), out["elapsed_ns"], ctx.size))
    out.update(latency_figures(consumer["latency"], "owl")[0])
    out.update(cpu_figures(raw, received))
    return out
