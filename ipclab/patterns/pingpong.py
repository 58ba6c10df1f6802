"""pingpong: the client sends S bytes, the server echoes S bytes; the client times every round trip.

One-way latency is about half the round trip. On lossy transports a ping whose echo does not come back within
REPLY_TIMEOUT counts as lost, and a late echo of an earlier ping is discarded (never timed): every ping of 1 B
or more carries its sequence number (the header's, or the sequence field's below 16 B, see common.py) and an
echo must carry the ping's own. An empty ping carries none: after a lost one the client waits out its echo
(REPLY_TIMEOUT without anything arriving) before the next ping, counting whatever comes as stale.
"""

from __future__ import annotations

import time
from typing import Any

from ..declarations import PatternSpec, TrafficShape
from ..transports.channels import hot_io
from . import openloop
from .base import by_role, counted_per, latency_metrics, pair_roles
from .common import (
    HEADER,
    HEADER_SIZE,
    Context,
    IntegrityError,
    cpu_figures,
    encode_samples,
    end_marker,
    grow,
    new_samples,
    seq_modulus,
    seq_view,
)
from .loops import LOST, Tally, latency_figures, round_trips, send_markers, serve_until_end

ORDER = 10
WAIT_OUT_LIMIT = 10_000  # stale echoes read at most while waiting out a lost empty ping (bounded however flooded)
UNNUMBERED = ("empty pings carry no sequence number: an echo is matched to the ping it follows, and a lost "
              "ping's echo is waited out (REPLY_TIMEOUT); one later than that would be timed as the next's")
LABELS = {"server": "echo server", "client": "client"}

SPEC = PatternSpec(
    name="pingpong",
    summary="the client sends S bytes, the server echoes them; round-trip time per exchange",
    shape=TrafficShape(duplex=True, in_flight=1),
    headline="rtt_p50_us",
    count_class="round_trip",
    labels=LABELS,
    # A round trip is two messages (ping and echo): its rate, CPU time and loss are counted per round trip.
    metrics=latency_metrics("rtt", "round trip", "round trip")
    + counted_per("round trip", "round trips", rate="round trips per second (1 / mean round trip)",
                  detail="2 messages")
    + openloop.paced_metrics("round trip", "round trips", "round trip"),
    tables=("rtt_p50_us", "rtt_p99_us", "cpu_us_msg"),
    report_tables=("rtt_p50_us", "rtt_p99_us", "cpu_us_msg", "ctx_msg", "loss_pct"),
    sample_key="round_trips",
    quantiles_key="rtt_quantiles_ns",
    distribution="round-trip latency",
    default_run=True,
    paced="round trip",
)


roles = pair_roles


def _server(ch: Any, ctx: Context) -> dict[str, Any]:
    size, warmup, probe = ctx.size, ctx.warmup, ctx.probe
    rbuf = bytearray(size)
    rmv = memoryview(rbuf)
    send, recv = ch.send, ch.recv_into
    if ctx.reliable and ctx.count is not None and ctx.rate is None:
        # The known count: the tightest possible echo loop, calling the channel's C methods directly (hot_io).
        rsend, rrecv, finish_send, finish_recv, sent = hot_io(ch, size)
        for _ in range(warmup):
            recv(rmv)
            send(rmv)
        probe.begin()
        if ch.has_exchange and ctx.count:
            # A native exchange (shm's slots, posix-mq's queue pair): one call per round trip, the echo with the
            # next receive; the first ping received alone, the last echo sent alone.
            exchange = ch.exchange
            recv(rmv)
            for _ in range(ctx.count - 1):
                exchange(rmv, rmv)
            send(rmv)
            probe.end()
            return {"echoed": warmup + ctx.count, "probe": probe.result()}
        for _ in range(ctx.count):
            n = rrecv(rmv)
            if n != size:
                finish_recv(rmv, n)
            n = rsend(rmv)
            if n != sent:
                finish_send(rmv, n)
        probe.end()
        return {"echoed": warmup + ctx.count, "probe": probe.result()}

    # Duration runs and lossy transports: echo until the end marker, EOF or (lossy) the idle timeout. A ping
    # that can carry the marker is echoed until the marker comes (a duplicated ping must not end us early).
    mark_at, mark_value = serve_until_end(ch, ctx)
    total = None if ctx.count is None or size else warmup + ctx.count
    echoed = 0
    while True:
        try:
            recv(rmv)
        except (EOFError, TimeoutError):
            break
        if size and rbuf[mark_at] == mark_value:
            break
        try:
            send(rmv)
        except ConnectionRefusedError:  # a lossy client that already left
            break
        echoed += 1
        if echoed == warmup:
            probe.begin()
        if echoed == total:
            break
    probe.end()
    return {"echoed": echoed, "probe": probe.result()}


def _client(ch: Any, ctx: Context) -> dict[str, Any]:
    size, warmup, probe = ctx.size, ctx.warmup, ctx.probe
    sbuf = bytearray(ctx.payload)
    rbuf = bytearray(size)
    smv, rmv = memoryview(sbuf), memoryview(rbuf)
    send, recv = ch.send, ch.recv_into
    clock = time.perf_counter_ns
    pack, unpack = HEADER.pack_into, HEADER.unpack_from
    hdr = size >= HEADER_SIZE
    lossy = not ctx.reliable

    if ctx.rate is not None:  # open loop: pings on a schedule, several in flight (patterns/openloop.py)
        return openloop.client(ch, ctx, sbuf, size)
    if lossy:
        return _lossy_client(ch, ctx, sbuf, rbuf)

    seqv = seq_view(sbuf)  # below the header: the sequence field, the same bytes as on a lossy transport
    small = seqv is not None and not hdr
    mask = seq_modulus(size) - 1
    for seq in range(warmup):
        if hdr:
            pack(sbuf, 0, seq, 0)
        elif small:
            seqv[0] = seq & mask  # type: ignore[index]
        send(smv)
        recv(rmv)
    # Inside the timed window: the channel's C methods and one comparison each, no Python frame (hot_io).
    rsend, rrecv, finish_send, finish_recv, sent = hot_io(ch, size)
    fused, exchange = ch.has_exchange, ch.exchange  # a native exchange: one call per round trip instead

    cap = ctx.count if ctx.count is not None else 1 << 16
    samples = new_samples(cap)
    deadline = None if ctx.duration is None else clock() + int(ctx.duration * 1e9)
    n = corrupt = 0
    seq = warmup
    verify = ctx.verify
    probe.begin()
    while True:
        if hdr:
            pack(sbuf, 0, seq, clock())
        elif small:
            seqv[0] = seq & mask  # type: ignore[index]
        if fused:  # one call: the ping, and the wait for its echo (Channel.exchange)
            t0 = clock()
            exchange(smv, rmv)
            t1 = clock()
        else:
            t0 = clock()
            got = rsend(smv)
            if got != sent:
                finish_send(smv, got)
            got = rrecv(rmv)
            if got != size:
                finish_recv(rmv, got)
            t1 = clock()
        samples[n] = t1 - t0
        if hdr and unpack(rbuf, 0)[0] != seq:
            raise IntegrityError(f"round trip {n}: echo carries sequence {unpack(rbuf, 0)[0]}, expected {seq}")
        if verify and rmv != smv:  # after t1: checking never inflates the timed window
            corrupt += 1
        n += 1
        seq += 1
        if deadline is None:
            if n == cap:
                break
        elif t1 >= deadline:
            break
        elif n == cap:
            if not grow(samples):
                break  # MAX_SAMPLES round trips: the trial ends here, memory stays bounded
            cap = len(samples)
    probe.end()
    if not verify and rmv != smv:  # without --verify, the last echo is still checked byte for byte
        corrupt += 1
    if deadline is not None:
        send(memoryview(end_marker(ctx.payload)))
    return {"samples": encode_samples(samples, n), "n": n, "lost": 0, "stale": 0, "corrupt": corrupt,
            "probe": probe.result()}


def _lossy_client(ch: Any, ctx: Context, sbuf: bytearray, rbuf: bytearray) -> dict[str, Any]:
    """A ping whose echo does not come within REPLY_TIMEOUT is lost; a late echo of an earlier one is stale.

    An echo is matched by the sequence number it carries (modulo seq_modulus below 8 B: at 1 B an echo
    exactly 128 pings late would pass for the current one). Stale echoes during the warm-up are not counted."""
    size = ctx.size
    smv, rmv = memoryview(sbuf), memoryview(rbuf)
    send, recv = ch.send, ch.recv_into
    clock = time.perf_counter_ns
    pack = HEADER.pack_into
    hdr = size >= HEADER_SIZE
    sseq, rseq = seq_view(sbuf), seq_view(rbuf)
    numbered = rseq is not None
    mask = seq_modulus(size) - 1
    tally, verify, warmup = Tally(), ctx.verify, ctx.warmup

    def wait_out(seq: int) -> None:
        """An empty ping was lost: its echo may still come. Nothing for REPLY_TIMEOUT means it will not."""
        for _ in range(WAIT_OUT_LIMIT):
            try:
                recv(rmv)
            except TimeoutError:
                return
            if seq >= warmup:
                tally.stale += 1

    def exchange(seq: int) -> int:
        want = seq & mask
        if hdr:
            pack(sbuf, 0, seq, clock())
        elif numbered:
            sseq[0] = want  # type: ignore[index]
        t0 = clock()
        send(smv)
        while True:
            try:
                recv(rmv)
            except TimeoutError:
                if not numbered:
                    wait_out(seq)
                return LOST
            if not numbered or rseq[0] == want:  # type: ignore[index]
                t1 = clock()
                break
            if seq >= warmup:
                tally.stale += 1  # the late (or duplicated) echo of an earlier ping
        if verify and seq >= warmup and rmv != smv:
            tally.corrupt += 1
        return t1 - t0

    samples, n, lost = round_trips(ctx, exchange, ch)
    if size:
        send_markers(send, ctx.payload, lossy=True)
    out = {"samples": encode_samples(samples, n), "n": n, "lost": lost, "stale": tally.stale,
           "corrupt": tally.corrupt, "probe": ctx.probe.result()}
    if not numbered:
        out["caveat"] = UNNUMBERED
    return out


run = by_role(_server, _client)


def metrics(raw: dict[str, dict[str, Any]], ctx: Context) -> dict[str, Any]:
    """Per-trial figures from the workers' raw results (runs in the parent)."""
    client = raw["client"]
    if "schedule" in client:  # open loop: rtt from the intended send time, service from the actual one
        figures, n = openloop.answer_figures(client, "rtt")
        figures["round_trips"] = n
        figures.update(cpu_figures(raw, n))
        return figures
    figures, n, mean = latency_figures(client["samples"], "rtt")
    attempted = n + client["lost"]
    out: dict[str, Any] = {"round_trips": n, "lost": client["lost"], "stale": client["stale"],
                           "corrupt": client["corrupt"],
                           "loss_pct": 100.0 * client["lost"] / attempted if attempted else None}
    out.update(figures)
    if n:
        out["msg_s"] = 1e9 / mean if mean else None
    out.update(cpu_figures(raw, n))
    return out
