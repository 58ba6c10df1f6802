"""fanin: --clients N producers stream S-byte messages into one consumer; aggregate throughput and fairness.

Each producer sends --count messages (the count is per producer) as fast as the transport allows. Every message
says who sent it: the header's u64 sequence number carries the producer index in bits 48..55 and the producer's
own message number in bits 0..47, so the consumer checks per-producer order on reliable transports and counts
per-producer arrivals. Sizes below 16 bytes have no header and are n/a.

Throughput is timed at the consumer, first measured message to last, over all producers. Fairness is measured
only while every producer is sending (the contended window): the consumer snapshots the per-producer counts when
the last producer's first measured message arrives and again when the first producer finishes (its last counted
message or its end marker arrives); shares are each producer's fraction of the messages between the two. Producers
start a few milliseconds apart (separate interpreters, often on one CPU), so a short run may have no contended
window at all: the fairness figures are then empty, ``fair_window_msgs`` is 0 and ``missing`` says why, so the
fairness tables show the cell empty with that note (raise --count). Reported: the smallest and
largest share (in % of the messages; fair = 100/N), and Jain's index (sum x)^2 / (N * sum x^2): 1.0 when every
producer got the same share, 1/N when one got everything.

End markers (duration runs; lossy transports send several) carry 0xFF in the sequence's top byte and the
producer index in bits 48..55; the consumer stops when it has the count, a marker from every producer, EOF from
all, or (lossy) after the idle timeout. Duplicated datagrams are not detected (loopback UDP does not duplicate).
"""

from __future__ import annotations

import time
from typing import Any

from ..declarations import Metric, PatternSpec, TrafficShape
from .base import int_option, latency_metrics, needs_header, option
from .common import (
    END_MARKERS,
    HEADER,
    IDLE_TIMEOUT,
    Context,
    IntegrityError,
    cpu_figures,
    encode_samples,
    grow,
    new_samples,
    receive_buffer,
    throughput_figures,
)
from .loops import latency_figures

ORDER = 40
LABELS = {"server": "consumer", "client": "producer"}
MAX_CLIENTS = 64
CLIENTS = int_option("clients", "producers for the fan-in pattern", 1, 1, MAX_CLIENTS, "the number of clients")
NO_WINDOW = ("no contended window: the producers never all sent at once (one finished before the last started, "
             "e.g. all on one CPU); raise --count")

SPEC = PatternSpec(
    name="fanin",
    summary="--clients N producers stream into one consumer; aggregate throughput and fairness",
    shape=TrafficShape(duplex=False, many_writers=True, in_flight=None),
    headline="mb_s",
    count_class="bulk",
    labels=LABELS,
    metrics=(
        Metric("fair_jain", "fairness across producers (Jain, 1 = equal)", "", True, "trial"),
        Metric("share_min_pct", "smallest producer's share of messages", "%", True, "trial"),
    ) + latency_metrics("owl", "one-way latency under load, all producers", "message"),
    tables=("mb_s", "fair_jain", "share_min_pct", "cpu_us_msg"),
    sample_key="received",
    options=(CLIENTS,),
)
TAG_SHIFT = 48
NUMBER_MASK = (1 << TAG_SHIFT) - 1
MARKER_TAG = 0xFF << 56


def roles(options: dict[str, Any]) -> list[tuple[str, int]]:
    clients = option(options, CLIENTS)
    return [("server", 0)] + [("client", i) for i in range(clients)]


def not_applicable(transport: Any, size: int, options: Any = None) -> str | None:
    """Pattern-level n/a, asked after the transport's own check (which decides whether it takes several
    writers, from SPEC.shape.many_writers)."""
    return needs_header(size, "fan-in tags each message with its producer")


def run(role: str, index: int, channel: Any, ctx: Context) -> dict[str, Any]:
    if role == "server":
        return _consumer(channel, ctx)
    return _producer(channel, ctx, index)


def _producer(ch: Any, ctx: Context, index: int) -> dict[str, Any]:
    warmup, probe = ctx.warmup, ctx.probe
    sbuf = bytearray(ctx.payload)
    smv = memoryview(sbuf)
    send = ch.send
    clock = time.perf_counter_ns
    pack = HEADER.pack_into
    tag = index << TAG_SHIFT
    for seq in range(warmup):
        pack(sbuf, 0, tag | seq, clock())
        send(smv)
    probe.begin()
    seq = warmup
    if ctx.count is not None:
        for seq in range(warmup, warmup + ctx.count):
            pack(sbuf, 0, tag | seq, clock())
            send(smv)
        seq = warmup + ctx.count
    else:
        deadline = clock() + int(ctx.duration * 1e9)  # type: ignore[operator]
        while True:
            pack(sbuf, 0, tag | seq, clock())
            send(smv)
            seq += 1
            if not seq & 63 and clock() >= deadline:  # one clock read per 64 messages
                break
    probe.end()
    if ctx.count is None or not ctx.reliable:
        pack(sbuf, 0, MARKER_TAG | tag, 0)
        for _ in range(1 if ctx.reliable else END_MARKERS):
            try:
                send(smv)
            except (ConnectionRefusedError, BrokenPipeError):
                break
    return {"producer": index, "sent": seq - warmup, "sent_total": seq, "probe": probe.result()}


def _consumer(ch: Any, ctx: Context) -> dict[str, Any]:
    producers, warmup, probe, count = ctx.clients, ctx.warmup, ctx.probe, ctx.count
    reliable = ctx.reliable
    rbuf, rmv, got_body, want_body = receive_buffer(ctx)  # sizes below the header are n/a here
    recv = ch.recv_into
    clock = time.perf_counter_ns
    unpack = HEADER.unpack_from
    verify = ctx.verify
    expected = None if count is None else producers * count  # measured messages, if known
    if not reliable:
        ch.set_timeout(IDLE_TIMEOUT)
    next_seq = [0] * producers  # per producer: the number its next message must carry (reliable)
    counts = [0] * producers  # measured messages per producer
    ended = [False] * producers
    started = 0
    base: list[int] | None = None  # counts when every producer had started
    snapshot: list[int] | None = None  # counts when the first producer finished
    cap = expected if expected is not None else 1 << 16
    lat = new_samples(cap)
    measured = reordered = corrupt = markers = 0
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
        seq, sent_at = unpack(rbuf, 0)
        p = (seq >> TAG_SHIFT) & 0xFF
        if p >= producers:
            raise IntegrityError(f"message from producer {p}, but only {producers} producers run")
        if seq >> 56 == 0xFF:
            if not ended[p]:
                ended[p] = True
                markers += 1
                if snapshot is None:
                    snapshot = counts[:]
                if markers == producers:
                    ended_by = "end markers"
                    break
            continue
        number = seq & NUMBER_MASK
        if number != next_seq[p]:
            if reliable:
                raise IntegrityError(f"producer {p}: got message {number}, expected {next_seq[p]} "
                                     "(lost or reordered on a reliable transport)")
            if warmup <= number < next_seq[p]:  # a warm-up message out of place is not the window's
                reordered += 1
        if number >= next_seq[p]:
            next_seq[p] = number + 1
        if number < warmup:
            continue
        if not measured:
            t_first = now
            probe.begin()
        if measured < len(lat) or grow(lat):  # past MAX_SAMPLES: counted, latency no longer recorded
            lat[measured] = now - sent_at
        measured += 1
        t_last = now
        if not counts[p]:
            started += 1
            if started == producers:
                base = counts[:]
        counts[p] += 1
        if verify and got_body != want_body:
            corrupt += 1
        if counts[p] == count and snapshot is None:
            snapshot = counts[:]
        if measured == expected:
            break
    probe.end()
    if not verify and measured and got_body != want_body:  # the last message is always checked byte for byte
        corrupt += 1
    window = None
    if base is not None:
        end = snapshot or counts  # nobody finished (lossy, idle timeout): the window lasts to the end
        window = [e - b for e, b in zip(end, base)]
        if min(window) < 0 or not sum(window):  # the first producer finished before the last one started
            window = None
    return {"received": measured, "per_producer": counts, "window": window, "reordered": reordered,
            "corrupt": corrupt, "first_ns": t_first, "last_ns": t_last, "ended_by": ended_by,
            "latency": encode_samples(lat, measured), "probe": probe.result()}


def fairness(shares: list[int]) -> dict[str, float | None]:
    """Smallest and largest share (% of the total) and Jain's index of per-producer counts."""
    total = sum(shares)
    if not shares or total <= 0:
        return {"share_min_pct": None, "share_max_pct": None, "fair_jain": None}
    squares = sum(x * x for x in shares)
    return {"share_min_pct": 100.0 * min(shares) / total, "share_max_pct": 100.0 * max(shares) / total,
            "fair_jain": total * total / (len(shares) * squares)}


def metrics(raw: dict[str, dict[str, Any]], ctx: Context) -> dict[str, Any]:
    """Per-trial figures (parent side): aggregate throughput at the consumer, fairness, loss, latency."""
    consumer = raw["server"]
    producers = [r for key, r in raw.items() if key != "server"]
    sent = sum(r["sent"] for r in producers)
    received = consumer["received"]
    lost = max(0, sent - received)
    out: dict[str, Any] = {
        "producers": len(producers), "sent": sent, "received": received, "lost": lost,
        "loss_pct": 100.0 * lost / sent if sent else None, "reordered": consumer["reordered"],
        "corrupt": consumer["corrupt"], "elapsed_ns": consumer["last_ns"] - consumer["first_ns"],
        "per_producer": consumer["per_producer"], "fair_window": consumer["window"],
        "fair_window_msgs": sum(consumer["window"] or ()),
    }
    out.update(throughput_figures(received, out["elapsed_ns"], ctx.size))
    out.update(fairness(consumer["window"] or []))
    if out["fair_jain"] is None:  # the tables show the cell empty with this note, not the table missing
        out["missing"] = {key: NO_WINDOW for key in ("fair_jain", "share_min_pct", "share_max_pct")}
    out.update(latency_figures(consumer["latency"], "owl")[0])
    out.update(cpu_figures(raw, received))
    return out
