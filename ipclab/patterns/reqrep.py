"""reqrep: a small request, an S-byte reply (the file-download shape); time to last byte per request.

Wire format (decided here, kept honest):
- The request is R = min(16, S) bytes: for S >= 16 the 16-byte header (u64 request id, u64 send time); below 16
  bytes the whole payload (the cell then degenerates to a ping-pong, and says so in its name only).
  Channels carry messages of any length up to the run's size (``send`` writes len(msg) bytes, ``recv_into`` of an
  R-byte buffer reads exactly R bytes on a stream), so no framing is added: both sides know R and S.
- The reply is S bytes: the run's payload whose first 16 bytes are replaced by the request's header, so that a
  client on a lossy transport can tell the reply to its request from the late reply to an earlier one.

Timing: the client reads the clock before sending the request and after the last byte of the reply (time to last
byte, TTLB). Throughput is S / mean TTLB (bytes delivered per second of request time): the time the client
spends checking replies is excluded from both.

End-to-end check, like a downloader holding a published digest: the client knows only sha256 of the payload body
(bytes 16..S, or the whole payload below 16 B) and hashes the body of the last reply of every trial, and of every
reply with --verify; the 16-byte header must carry the id of the request (checked on every reply).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from ..declarations import Metric, PatternSpec, TrafficShape
from . import openloop
from .base import by_role, counted_per, latency_metrics, pair_roles
from .common import HEADER, HEADER_SIZE, Context, IntegrityError, cpu_figures, encode_samples, receive_buffer
from .loops import LOST, Tally, latency_figures, round_trips, send_markers, serve_until_end

ORDER = 30
LABELS = {"server": "reply server", "client": "requester"}

SPEC = PatternSpec(
    name="reqrep",
    summary="a small request, an S-byte reply (the file-download shape); time to last byte per request",
    shape=TrafficShape(duplex=True, in_flight=1),
    headline="ttlb_p50_us",
    count_class="round_trip",
    labels=LABELS,
    metrics=latency_metrics("ttlb", "request to last reply byte", "request")
    + counted_per("request", "requests", rate="requests per second (1 / mean TTLB)", detail="request + S-byte reply")
    + (Metric("mb_s", "reply bytes per second of request time (S / mean TTLB)", "MB/s", True, "request"),)
    + openloop.paced_metrics("request to last reply byte", "requests", "request"),
    tables=("ttlb_p50_us", "ttlb_p99_us", "mb_s", "cpu_us_msg"),
    sample_key="requests",
    quantiles_key="ttlb_quantiles_ns",
    distribution="request to last reply byte",
    paced="request",
)


roles = pair_roles


def not_applicable(transport: Any, size: int, options: Any = None) -> str | None:
    """Pattern-level n/a (the runner asks after the transport's own check)."""
    if size == 0:
        return "an empty reply has no bytes to download; reqrep needs a size of at least 1 B"
    return None


def request_size(size: int) -> int:
    return min(HEADER_SIZE, size)


def _server(ch: Any, ctx: Context) -> dict[str, Any]:
    size, warmup, probe = ctx.size, ctx.warmup, ctx.probe
    rsize = request_size(size)
    qbuf = bytearray(rsize)
    qmv = memoryview(qbuf)
    reply = bytearray(ctx.payload)
    rmv = memoryview(reply)
    head = rmv[:rsize]  # the request's header is copied here: no allocation per request
    send, recv = ch.send, ch.recv_into
    if ctx.reliable and ctx.count is not None and ctx.rate is None:
        for _ in range(warmup):
            recv(qmv)
            head[:] = qmv
            send(rmv)
        probe.begin()
        if ch.has_exchange and ctx.count:
            # A native exchange (shm's slots, posix-mq's queue pair): the reply and the wait for the next request
            # in one call; the first request received alone, the last reply sent alone.
            exchange = ch.exchange
            recv(qmv)
            for _ in range(ctx.count - 1):
                head[:] = qmv
                exchange(rmv, qmv)
            head[:] = qmv
            send(rmv)
        else:
            for _ in range(ctx.count):
                recv(qmv)
                head[:] = qmv
                send(rmv)
        probe.end()
        return {"served": warmup + ctx.count, "probe": probe.result()}

    # Duration runs and lossy transports: serve until the end marker, EOF or (lossy) the idle timeout.
    mark_at, mark_value = serve_until_end(ch, ctx)
    total = None if ctx.count is None else warmup + ctx.count
    served = 0
    while True:
        try:
            n = recv(qmv)
        except (EOFError, TimeoutError):
            break
        if n != rsize:
            continue  # not a request of this run (a datagram of another size): ignore it
        if qbuf[mark_at] == mark_value:
            break
        head[:] = qmv
        try:
            send(rmv)
        except ConnectionRefusedError:  # a lossy client that already left
            break
        served += 1
        if served == warmup:
            probe.begin()
        if served == total:
            break
    probe.end()
    return {"served": served, "probe": probe.result()}


def _client(ch: Any, ctx: Context) -> dict[str, Any]:
    size = ctx.size
    rsize = request_size(size)
    qbuf = bytearray(ctx.payload[:rsize])
    if ctx.rate is not None:  # open loop: requests on a schedule, several in flight (patterns/openloop.py)
        return openloop.client(ch, ctx, qbuf, size)
    qmv = memoryview(qbuf)
    rbuf, rmv, rbody, want_body = receive_buffer(ctx)
    digest = hashlib.sha256(want_body).digest()  # the published digest the replies are checked against
    sha256 = hashlib.sha256
    send, recv = ch.send, ch.recv_into
    clock = time.perf_counter_ns
    pack, unpack = HEADER.pack_into, HEADER.unpack_from
    hdr = size >= HEADER_SIZE
    lossy = not ctx.reliable
    tally, verify, warmup = Tally(), ctx.verify, ctx.warmup

    def exchange(seq: int) -> int:
        if hdr:
            pack(qbuf, 0, seq, clock())
        t0 = clock()
        send(qmv)
        while True:
            try:
                recv(rmv)
            except TimeoutError:  # lossy only: the request or its reply was lost
                return LOST
            if not hdr or unpack(rbuf, 0)[0] == seq:
                t1 = clock()
                break
            if not lossy:
                raise IntegrityError(f"request {seq}: the reply carries id {unpack(rbuf, 0)[0]}")
            tally.stale += 1  # the late reply to an earlier request
        if verify and seq >= warmup:  # after t1: checking never inflates the timed window
            tally.checked += 1
            if sha256(rbody).digest() != digest:
                tally.corrupt += 1
        return t1 - t0

    samples, n, lost = round_trips(ctx, exchange, ch)
    if n and not verify:  # the last reply of every trial is hashed in any case
        tally.checked += 1
        if sha256(rbody).digest() != digest:
            tally.corrupt += 1
    if lossy or ctx.duration is not None:
        send_markers(send, ctx.payload, lossy, rsize)
    return {"samples": encode_samples(samples, n), "n": n, "lost": lost, "stale": tally.stale,
            "corrupt": tally.corrupt, "checked": tally.checked, "probe": ctx.probe.result()}


run = by_role(_server, _client)


def metrics(raw: dict[str, dict[str, Any]], ctx: Context) -> dict[str, Any]:
    """Per-trial figures (parent side): TTLB percentiles, throughput, loss and the sha256 check."""
    client = raw["client"]
    if "schedule" in client:  # open loop: ttlb from the intended send time, service from the actual one
        figures, n = openloop.answer_figures(client, "ttlb")
        figures.update(requests=n, request_bytes=request_size(ctx.size), reply_bytes=ctx.size)
        figures.update(cpu_figures(raw, n))
        return figures
    figures, n, mean = latency_figures(client["samples"], "ttlb")
    attempted = n + client["lost"]
    out: dict[str, Any] = {"requests": n, "lost": client["lost"], "stale": client["stale"],
                           "corrupt": client["corrupt"], "sha256_checked": client["checked"],
                           "loss_pct": 100.0 * client["lost"] / attempted if attempted else None,
                           "request_bytes": request_size(ctx.size), "reply_bytes": ctx.size}
    out.update(figures)
    if n:
        out["msg_s"] = 1e9 / mean if mean else None
        out["mb_s"] = ctx.size * 1e3 / mean if mean else None  # bytes/ns * 1e3 = MB/s
    out.update(cpu_figures(raw, n))
    return out
