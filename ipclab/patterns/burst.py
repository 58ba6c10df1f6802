"""burst: the client sends K messages of S bytes back to back, the server reads all K and answers one ack.

What it shows: how a mechanism behaves with several messages in flight and one wake-up per K messages (batching,
buffer sizes, a writer that never waits for each message), between pingpong (K = 1) and stream (K unbounded).

Wire format (decided here):
- Data messages are S bytes, the run's payload; from 16 B on, the header's sequence number is the message's
  number in the whole trial, burst * K + i, and its send time.
- The ack is S bytes as well (every message of a run has exactly S bytes, so every transport carries it as it
  carries pingpong's echo, and no size limit is crossed that the data did not cross): the payload whose header
  carries the burst number (from 16 B on).

Timing: the client reads the clock before sending the first message of a burst and after the ack has arrived
(one sample per burst). MB/s = K * S bytes per mean burst time (10^6 B/s); msg/s = K data messages per mean burst
time; CPU time per message divides by the K * bursts data messages (the acks are the price of each burst).
--count counts bursts, --warmup warm-up bursts.

Not paced (``SPEC.paced`` None, so --rate gives burst its closed-loop cell only): a burst is K messages sent
back to back and one ack, so there is no per-message answer to time from an intended send; pacing whole bursts
would need a second, burst-level schedule and bursts in flight the server cannot tell apart below 16 B. The
open-loop view of "several in flight" is pingpong --rate, whose requests overlap whenever the server falls behind.

Lossy transports (UDP, datagrams) are handled like pingpong: the server answers a burst only when all K of its
messages arrived (it tells bursts apart by the header, so below 16 B a lossy cell is n/a); a burst whose ack does
not come within REPLY_TIMEOUT is lost, a late ack of an earlier burst is discarded (counted as stale).
"""

from __future__ import annotations

import time
from typing import Any

from ..declarations import Metric, PatternSpec, TrafficShape
from .base import by_role, int_option, latency_metrics, needs_header, option, pair_roles
from .common import HEADER, HEADER_SIZE, Context, IntegrityError, cpu_figures, encode_samples, receive_buffer
from .loops import LOST, Tally, latency_figures, round_trips, send_markers, serve_until_end

ORDER = 60
LABELS = {"server": "acknowledger", "client": "sender"}
BURST = int_option("burst", "messages per burst for the burst pattern (one ack per burst)", 16, 1, 4096,
                   "the burst length", metavar="K")

SPEC = PatternSpec(
    name="burst",
    summary="--burst K messages back to back, then one ack; round-trip time per burst and throughput",
    shape=TrafficShape(duplex=True, in_flight=BURST.default),
    headline="burst_p50_us",
    count_class="round_trip",
    labels=LABELS,
    metrics=latency_metrics("burst", "burst of K messages + ack", "batch") + (
        # Rates and CPU count the K data messages of a burst; the ack is part of their cost, not a message counted.
        Metric("msg_s", "data messages per second (acks not counted)", "msg/s", True, "message"),
        Metric("mb_s", "data bytes per second (acks not counted)", "MB/s", True, "message"),
        Metric("cpu_us_msg", "CPU time per data message (acks' cost included), all workers", "µs", False, "message"),
        Metric("ctx_msg", "context switches per data message, all workers", "", False, "message"),
        Metric("faults_msg", "minor page faults per data message, all workers", "", False, "message"),
        Metric("loss_pct", "bursts lost (a message or the ack)", "%", False, "batch")),
    tables=("burst_p50_us", "burst_p99_us", "mb_s", "cpu_us_msg"),
    report_tables=("burst_p50_us", "burst_p99_us", "mb_s", "cpu_us_msg", "loss_pct"),
    sample_key="bursts",
    quantiles_key="burst_quantiles_ns",
    distribution="burst round trip (K messages + ack)",
    options=(BURST,),
)


roles = pair_roles


def not_applicable(transport: Any, size: int, options: Any = None) -> str | None:
    """Pattern-level n/a (the runner asks after the transport's own check)."""
    if transport.reliable:
        return None
    return needs_header(size, "on a lossy transport the server tells bursts apart by a tag")


def _server(ch: Any, ctx: Context) -> dict[str, Any]:
    size, warmup, probe = ctx.size, ctx.warmup, ctx.probe
    k = option(ctx.options, BURST)
    rbuf, ack = bytearray(size), bytearray(ctx.payload)
    rmv, amv = memoryview(rbuf), memoryview(ack)
    send, recv = ch.send, ch.recv_into
    pack, unpack = HEADER.pack_into, HEADER.unpack_from
    hdr = size >= HEADER_SIZE
    if ctx.reliable and ctx.count is not None:
        # The known count: K reads, one ack, nothing else (the ack's header is the burst number).
        for burst in range(warmup + ctx.count):
            if burst == warmup:
                probe.begin()
            for _ in range(k):
                recv(rmv)
            if hdr:
                pack(ack, 0, burst, 0)
            send(amv)
        probe.end()
        return {"acked": warmup + ctx.count, "incomplete": 0, "probe": probe.result()}

    # Duration runs and lossy transports: until the end marker, EOF or (lossy) the idle timeout. A burst is
    # acked only when all K of its messages came (lossy: one lost message loses the burst, as the client sees).
    mark_at, mark_value = serve_until_end(ch, ctx)
    acked = incomplete = got = 0
    current = -1  # the burst being received (lossy: from the header)
    while True:
        try:
            recv(rmv)
        except (EOFError, TimeoutError):
            break
        if size and rbuf[mark_at] == mark_value:
            break
        if hdr:
            burst = unpack(rbuf, 0)[0] // k
            if burst != current:
                if got:
                    incomplete += 1  # the previous burst lost a message: no ack
                current, got = burst, 0
        else:
            burst = acked
        got += 1
        if got < k:
            continue
        got = 0
        if hdr:
            pack(ack, 0, burst, 0)
        try:
            send(amv)
        except ConnectionRefusedError:  # a lossy client that already left
            break
        acked += 1
        if acked == warmup:
            probe.begin()
    probe.end()
    return {"acked": acked, "incomplete": incomplete, "probe": probe.result()}


def _client(ch: Any, ctx: Context) -> dict[str, Any]:
    size = ctx.size
    k = option(ctx.options, BURST)
    sbuf = bytearray(ctx.payload)
    smv = memoryview(sbuf)
    rbuf, rmv, rbody, want_body = receive_buffer(ctx)  # the ack's header is the burst number: compare its body
    hdr = size >= HEADER_SIZE
    send, recv = ch.send, ch.recv_into
    clock = time.perf_counter_ns
    pack, unpack = HEADER.pack_into, HEADER.unpack_from
    lossy = not ctx.reliable
    tally, verify, warmup = Tally(), ctx.verify, ctx.warmup

    def exchange(burst: int) -> int:
        first = burst * k
        t0 = clock()
        if hdr:
            for seq in range(first, first + k):
                pack(sbuf, 0, seq, clock())
                send(smv)
        else:
            for _ in range(k):
                send(smv)
        while True:
            try:
                recv(rmv)
            except TimeoutError:  # lossy only: a message of the burst or its ack was lost
                return LOST
            if not hdr or (acked := unpack(rbuf, 0)[0]) == burst:
                t1 = clock()
                break
            if not lossy:
                raise IntegrityError(f"burst {burst}: the ack carries burst {acked}")
            tally.stale += 1  # the late ack of an earlier burst
        if verify and burst >= warmup and rbody != want_body:  # after t1: never inside the timed window
            tally.corrupt += 1
        return t1 - t0

    samples, n, lost = round_trips(ctx, exchange, ch)
    if n and not verify and rbody != want_body:  # the last ack is checked byte for byte in any case
        tally.corrupt += 1
    if lossy or ctx.duration is not None:
        send_markers(send, ctx.payload, lossy)
    return {"samples": encode_samples(samples, n), "n": n, "lost": lost, "stale": tally.stale,
            "corrupt": tally.corrupt, "burst": k, "probe": ctx.probe.result()}


run = by_role(_server, _client)


def metrics(raw: dict[str, dict[str, Any]], ctx: Context) -> dict[str, Any]:
    """Per-trial figures (parent side): per-burst round trip, throughput of the data messages, loss."""
    client = raw["client"]
    k = client["burst"]
    figures, n, mean = latency_figures(client["samples"], "burst")
    attempted = n + client["lost"]
    out: dict[str, Any] = {"bursts": n, "burst_length": k, "lost": client["lost"], "stale": client["stale"],
                           "corrupt": client["corrupt"], "incomplete": raw["server"]["incomplete"],
                           "loss_pct": 100.0 * client["lost"] / attempted if attempted else None}
    out.update(figures)
    if n and mean:
        out["msg_s"] = k * 1e9 / mean
        out["mb_s"] = k * ctx.size * 1e3 / mean if ctx.size else None  # bytes/ns * 1e3 = MB/s
    out.update(cpu_figures(raw, n * k))
    return out
