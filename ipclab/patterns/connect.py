"""connect: the cost of setting a connection up, per iteration: connect, send one message, close.

Each iteration the client opens a new connection, sends one S-byte message (with -s 1 this is the textbook
"connect + one byte + close") and waits until the server, having read the whole message, closes its end; then it
closes its own. The client times the whole iteration (socket creation to close). The server accepts, reads S
bytes, closes and accepts the next; a connection that closes without sending anything ends the run.

Only transports that can open connections run it: SPEC.shape says ``dials`` and the transport decides from its own
declared capability (tcp, unix). The transport hands the server its listening socket (ListenerChannel) and the
client a dialer (DialChannel). The server closes first, so TCP's TIME_WAIT state lands on the server side and
the client never runs out of ephemeral ports.
"""

from __future__ import annotations

import time
from typing import Any

from ..declarations import Metric, PatternSpec, TrafficShape
from .base import by_role, counted_per, latency_metrics, pair_roles
from .common import Context, cpu_figures, encode_samples
from .loops import Tally, latency_figures, round_trips

ORDER = 50
LABELS = {"server": "acceptor", "client": "dialer"}

SPEC = PatternSpec(
    name="connect",
    summary="connect, send one message, close: the cost of setting a connection up",
    shape=TrafficShape(duplex=True, in_flight=1, dials=True),
    headline="conn_p50_us",
    count_class="round_trip",
    labels=LABELS,
    metrics=latency_metrics("conn", "connect + message + close", "connection")
    + (Metric("conn_s", "connections per second", "conn/s", True, "connection"),)
    + counted_per("connection", "connections", loss=False, detail="connect + message + close"),
    tables=("conn_p50_us", "conn_p99_us", "cpu_us_msg"),
    sample_key="connections",
    quantiles_key="conn_quantiles_ns",
    distribution="connect + message + close",
)


roles = pair_roles


def _read_exactly(conn: Any, view: memoryview) -> int:
    """Bytes read before EOF (len(view) when the whole message came)."""
    got, total = 0, len(view)
    while got < total:
        n = conn.recv_into(view[got:])
        if not n:
            break
        got += n
    return got


def _server(ch: Any, ctx: Context) -> dict[str, Any]:
    probe, size = ctx.probe, ctx.size
    buf = bytearray(size)
    view = memoryview(buf)
    want = memoryview(ctx.payload)
    accept, verify = ch.accept, ctx.verify
    served = short = corrupt = 0
    warmup = ctx.warmup
    if not warmup:
        probe.begin()
    while True:
        conn = accept()
        try:
            got = _read_exactly(conn, view)
        finally:
            conn.close()
        if got == 0:
            break  # the client's "no more" connection
        served += 1
        if served == warmup:  # the CPU window matches the client's: measured connections only
            probe.begin()
        if got != size:
            short += 1
        elif verify and view != want:
            corrupt += 1
    probe.end()
    if not verify and served and view != want:  # the last message is always checked byte for byte
        corrupt += 1
    return {"served": served, "short": short, "corrupt": corrupt, "probe": probe.result()}


def _client(ch: Any, ctx: Context) -> dict[str, Any]:
    dial = ch.dial
    msg = memoryview(bytes(ctx.payload))
    eof = memoryview(bytearray(1))
    clock = time.perf_counter_ns
    tally = Tally()

    def exchange(seq: int) -> int:
        t0 = clock()
        sock = dial()
        sock.sendall(msg)
        extra = sock.recv_into(eof)  # 0: the server read the message and closed
        sock.close()
        t1 = clock()
        if extra and seq >= ctx.warmup:
            tally.unexpected += 1
        return t1 - t0

    samples, n, _ = round_trips(ctx, exchange, cap=1 << 14)  # reliable: nothing is ever lost
    dial().close()  # an empty connection tells the server to stop
    return {"samples": encode_samples(samples, n), "n": n, "unexpected": tally.unexpected,
            "probe": ctx.probe.result()}


run = by_role(_server, _client)


def metrics(raw: dict[str, dict[str, Any]], ctx: Context) -> dict[str, Any]:
    """Per-trial figures (parent side): time per connection (percentiles) and connections per second."""
    client, server = raw["client"], raw["server"]
    figures, n, mean = latency_figures(client["samples"], "conn")
    out: dict[str, Any] = {"connections": n, "served": server["served"] - ctx.warmup, "short": server["short"],
                           "corrupt": server["corrupt"] + client["unexpected"]}
    out.update(figures)
    if n:
        out["conn_s"] = 1e9 / mean if mean else None
    out.update(cpu_figures(raw, n))
    return out
