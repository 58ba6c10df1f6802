"""Loss/reorder/duplicate accounting and end-of-stream handling, driven by a scripted in-process channel.

Deterministic: the channel delivers exactly the datagrams the test lists, so every counter has one right value.
"""

from __future__ import annotations

import pytest

from ipclab.patterns import pingpong, stream
from ipclab.patterns.common import (
    HEADER,
    Context,
    IntegrityError,
    end_marker,
    make_payload,
    seq_modulus,
    seq_view,
)
from ipclab.transports.base import Channel


class Scripted(Channel):
    """Delivers the scripted messages in order, then raises TimeoutError (lossy) or EOFError (reliable)."""

    def __init__(self, messages: list[bytes], end: type[Exception] = TimeoutError) -> None:
        self.messages = list(messages)
        self.sent: list[bytes] = []
        self.end = end
        self.timeout: float | None = None

    def set_timeout(self, seconds: float | None) -> None:
        self.timeout = seconds

    def send(self, msg: memoryview) -> None:
        self.sent.append(bytes(msg))

    def recv_into(self, buf: memoryview) -> int:
        if not self.messages:
            raise self.end("script exhausted")
        msg = self.messages.pop(0)
        buf[: len(msg)] = msg
        return len(msg)

    def close(self) -> None:
        pass


def _msg(payload: bytes, seq: int) -> bytes:
    m = bytearray(payload)
    HEADER.pack_into(m, 0, seq, 0)
    return bytes(m)


def _ctx(size: int = 64, count: int = 10, warmup: int = 2, reliable: bool = False) -> Context:
    return Context(size=size, count=count, duration=None, warmup=warmup, seed=7, verify=True, reliable=reliable)


def test_lossy_stream_counts_loss_reorder_duplicates() -> None:
    ctx = _ctx()
    p = ctx.payload
    # warm-up 0,1; measured 2..11; 5 and 9 lost, 7 duplicated, 4 arrives after 6
    order = [0, 1, 2, 3, 6, 4, 7, 7, 8, 10, 11]
    ch = Scripted([_msg(p, s) for s in order] + [bytes(end_marker(p))])
    raw = stream.run("server", 0, ch, ctx)
    assert raw["received"] == 8  # unique measured: 2,3,4,6,7,8,10,11
    assert raw["duplicated"] == 1
    assert raw["reordered"] == 1
    assert raw["ended_by"] == "end marker"
    figures = stream.metrics({"server": raw, "client": {"sent": 10, "probe": {}}}, ctx)
    assert figures["lost"] == 2 and figures["received"] == 8  # 5 and 9 never came


def test_lossy_stream_unique_count() -> None:
    ctx = _ctx()
    p = ctx.payload
    order = [0, 1, 2, 3, 6, 4, 7, 7, 8, 10, 11]
    ch = Scripted([_msg(p, s) for s in order])
    raw = stream.run("server", 0, ch, ctx)
    measured_unique = len({s for s in order if s >= 2})
    assert raw["unique"] == measured_unique == 8
    assert raw["ended_by"] == "idle timeout"  # no marker: the consumer gives up instead of hanging


def test_lossy_consumer_sets_an_idle_timeout() -> None:
    ctx = _ctx()
    ch = Scripted([])
    raw = stream.run("server", 0, ch, ctx)
    assert ch.timeout is not None and ch.timeout > 0
    assert raw["received"] == 0


def test_reliable_stream_rejects_a_gap() -> None:
    ctx = _ctx(reliable=True, count=5, warmup=0)
    p = ctx.payload
    ch = Scripted([_msg(p, s) for s in (0, 1, 3, 4, 5)], end=EOFError)
    with pytest.raises(IntegrityError, match="sequence 3"):
        stream.run("server", 0, ch, ctx)


def test_reliable_stream_counts_corruption_with_verify() -> None:
    ctx = _ctx(reliable=True, count=4, warmup=0)
    p = ctx.payload
    msgs = [bytearray(_msg(p, s)) for s in range(4)]
    msgs[2][40] ^= 0x01
    ch = Scripted([bytes(m) for m in msgs], end=EOFError)
    raw = stream.run("server", 0, ch, ctx)
    assert raw["corrupt"] == 1 and raw["received"] == 4


def _small(payload: bytes, seq: int) -> bytes:
    """A message below the header: its sequence field (seq_bytes wide, modulo seq_modulus) and the payload."""
    m = bytearray(payload)
    view = seq_view(m)
    assert view is not None
    view[0] = seq % seq_modulus(len(m))
    return bytes(m)


def test_small_messages_carry_no_header_but_are_counted() -> None:
    ctx = _ctx(size=8, count=6, warmup=1)
    p = ctx.payload
    ch = Scripted([_small(p, s) for s in range(5)] + [bytes(end_marker(p))])
    raw = stream.run("server", 0, ch, ctx)
    assert raw["received"] == 4  # 5 arrived, the first was warm-up
    assert raw["ended_by"] == "end marker"


def test_producer_sends_exactly_count_plus_warmup_and_markers() -> None:
    ctx = _ctx(count=10, warmup=3)
    ch = Scripted([])
    raw = stream.run("client", 0, ch, ctx)
    assert raw["sent"] == 10
    data = [m for m in ch.sent if m[7] != 0xFF]
    assert [HEADER.unpack_from(m)[0] for m in data] == list(range(13))
    assert all(m[16:] == ctx.payload[16:] for m in data)
    assert len(ch.sent) - len(data) == 3  # lossy: the end marker is sent several times


def test_pingpong_lossy_client_counts_lost_echoes_and_discards_stale_ones() -> None:
    ctx = _ctx(count=4, warmup=0)
    p = ctx.payload

    class Echo(Scripted):
        """Echoes pings 0 and 2, never 1, and delivers a stale echo of 0 just before the echo of 3."""

        def __init__(self) -> None:
            super().__init__([])

        def send(self, msg: memoryview) -> None:
            seq = HEADER.unpack_from(msg)[0]
            self.sent.append(bytes(msg))
            if seq in (0, 2):
                self.messages.append(bytes(msg))
            elif seq == 3:
                self.messages += [_msg(p, 0), bytes(msg)]  # a stale echo of 0 first

    raw = pingpong.run("client", 0, Echo(), ctx)
    assert raw["n"] == 3 and raw["lost"] == 1 and raw["stale"] == 1
    assert raw["corrupt"] == 0


def test_same_payload_everywhere() -> None:
    assert make_payload(1, 100) == make_payload(1, 100)
    assert make_payload(1, 100) != make_payload(2, 100)
    assert len(set(make_payload(3, 4096))) > 200  # pseudo-random, never zeros


def test_empty_lossy_stream_sends_no_marker_that_could_pass_for_a_message() -> None:
    ctx = _ctx(size=0, count=10, warmup=0)
    ch = Scripted([])
    raw = stream.run("client", 0, ch, ctx)
    assert raw["sent"] == 10 and len(ch.sent) == 10  # no end markers: they would look like messages


def test_sample_arrays_stop_growing_at_the_cap(monkeypatch) -> None:
    from array import array

    from ipclab.patterns import common

    monkeypatch.setattr(common, "MAX_SAMPLES", 8)
    samples = array("q", bytes(8 * 3))
    assert common.grow(samples) and len(samples) == 6
    assert common.grow(samples) and len(samples) == 8
    assert not common.grow(samples) and len(samples) == 8
    assert len(common.decode_samples(common.encode_samples(samples, 100))) == 8
