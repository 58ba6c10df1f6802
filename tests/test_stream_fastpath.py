"""stream's hot loops (patterns/streamloops.py): every message counted and its sequence checked, one-way latency
sampled 1 in 16, a duration run timed up to its last sampled message, zmq's zero-copy pool sending intact bytes.

Fast tier: the loops over a real pipe in one process (a producer thread, a consumer thread: no processes).
Process tier: zmq-ipc at 512 KiB and 1 MiB through the CLI with --verify (the zero-copy pool).
"""

from __future__ import annotations

import json
import math
import os
import threading
from typing import Any

import pytest
from conftest import run_cli

from ipclab.patterns import stream
from ipclab.patterns.common import HEADER, Context, IntegrityError, decode_samples
from ipclab.patterns.streamloops import SAMPLE_EVERY, consume_reliable, header_words, produce
from ipclab.transports.channels import FdStreamChannel, hot_io, no_count


def test_header_words_are_the_header_layout() -> None:
    buf = bytearray(64)
    words = header_words(buf)
    words[0] = 12345
    words[1] = 678
    assert HEADER.unpack_from(buf, 0) == (12345, 678)
    assert header_words(bytearray(15)) is None


def _pipe_run(size: int, count: int | None = None, duration: float | None = None, warmup: int = 5,
              verify: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stream roles over one pipe, in two threads of this process: (consumer's result, producer's)."""
    r, w = os.pipe()
    out: dict[str, Any] = {}

    def ctx() -> Context:
        return Context(size=size, count=count, duration=duration, warmup=warmup, seed=3, verify=verify,
                       reliable=True)

    def role(name: str, channel: FdStreamChannel) -> None:
        with channel:
            out[name] = stream.run(name, 0, channel, ctx())

    threads = [threading.Thread(target=role, args=("server", FdStreamChannel(r, None))),
               threading.Thread(target=role, args=("client", FdStreamChannel(None, w)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out["server"], out["client"]


@pytest.mark.parametrize("size", [1, 8, 16, 64, 4096])
def test_counted_run_counts_every_message_and_samples_one_in_sixteen(size: int) -> None:
    consumer, producer = _pipe_run(size, count=1000, warmup=7)
    assert consumer["received"] == consumer["window"] == producer["sent"] == 1000
    assert consumer["corrupt"] == 0
    lat = decode_samples(consumer["latency"])
    # sampled: the measured sequence numbers 7..1006 that are multiples of 16
    assert len(lat) == (sum(1 for s in range(7, 1007) if s % SAMPLE_EVERY == 0) if size >= 16 else 0)
    assert all(v > 0 for v in lat)


@pytest.mark.parametrize("size", [8, 64])
def test_duration_run_ends_at_the_marker_and_times_up_to_the_last_sample(size: int) -> None:
    consumer, producer = _pipe_run(size, duration=0.05, verify=True)
    assert consumer["ended_by"] == "end marker"
    assert consumer["received"] == producer["sent"] > 0
    assert consumer["window"] <= consumer["received"] < consumer["window"] + SAMPLE_EVERY
    assert consumer["last_ns"] > consumer["first_ns"] and consumer["corrupt"] == 0
    if size >= 16:
        assert len(decode_samples(consumer["latency"])) == math.ceil(consumer["window"] / SAMPLE_EVERY)


def test_a_skipped_message_fails_the_cell() -> None:
    """A message missing on a reliable transport: the consumer's per-message sequence test raises at once."""
    r, w = os.pipe()
    msg = bytearray(64)
    with os.fdopen(w, "wb", buffering=0) as wf:
        for seq in (0, 1, 3):  # no warm-up; message 2 is missing
            HEADER.pack_into(msg, 0, seq, 1)
            wf.write(msg)
    with FdStreamChannel(r, None) as channel:
        ctx = Context(size=64, count=10, duration=None, warmup=0, seed=3, verify=False, reliable=True)
        with pytest.raises(IntegrityError, match="message 2: got sequence 3"):
            consume_reliable(channel, ctx)


def test_every_message_sampled_when_the_producer_stamps_every_one() -> None:
    """every=1 (a paced producer stamps each message with its due time): a latency sample per message."""
    r, w = os.pipe()
    msg = bytearray(64)
    with os.fdopen(w, "wb", buffering=0) as wf:
        for seq in range(20):
            HEADER.pack_into(msg, 0, seq, 1)
            wf.write(msg)
    with FdStreamChannel(r, None) as channel:
        ctx = Context(size=64, count=20, duration=None, warmup=0, seed=3, verify=False, reliable=True)
        out = consume_reliable(channel, ctx, every=1)
    assert out["received"] == 20 and len(decode_samples(out["latency"])) == 20


def test_hot_io_gives_no_sent_count_for_sends_that_return_none() -> None:
    r, w = os.pipe()
    with FdStreamChannel(r, w) as channel:
        assert hot_io(channel, 64)[4] == 64  # FileIO.write returns the byte count
        channel.raw_io = (channel.send, channel.recv_into, no_count, no_count)
        assert hot_io(channel, 64)[4] is None  # a send returning None: never "short"


def test_producer_alone_never_rewrites_a_buffer_libzmq_still_holds() -> None:
    """The zero-copy pool: a buffer is rewritten only after its tracker is done (a fake channel counts it)."""

    class Tracker:
        def __init__(self, data: bytes) -> None:
            self.done, self.data = False, data

        def wait(self) -> None:
            self.done = True

    class Channel:
        def __init__(self) -> None:
            self.sent: list[tuple[int, Tracker, memoryview]] = []

        def send(self, msg: memoryview) -> None:
            raise AssertionError("the pooled producer sends by reference only")

        def zero_copy_send(self, size: int) -> Any:
            def send(msg: memoryview) -> Tracker:
                for _, tracker, view in self.sent:
                    if view.obj is msg.obj:
                        assert tracker.done, "a buffer was rewritten while libzmq held it"
                tracker = Tracker(bytes(msg))
                self.sent.append((HEADER.unpack_from(msg, 0)[0], tracker, msg))
                return tracker
            return send

    ch = Channel()
    ctx = Context(size=65536, count=100, duration=None, warmup=3, seed=3, verify=False, reliable=True)
    assert produce(ch, ctx) == 103
    assert [seq for seq, _, _ in ch.sent] == list(range(103))
    assert all(HEADER.unpack_from(t.data, 0)[0] == seq for seq, t, _ in ch.sent)  # each left with its own number


def test_zmq_sends_by_reference_from_512_kib_only() -> None:
    """Below ZERO_COPY_MIN a message is copied (the collector thread costs more than the memcpy); from it up,
    the channel offers the tracked send."""
    zmq = pytest.importorskip("zmq")
    from ipclab.transports.zmq_transport import ZERO_COPY_MIN, ZmqChannel

    ctx = zmq.Context(io_threads=1)
    ch = ZmqChannel(ctx, ctx.socket(zmq.PUSH))
    try:
        assert ZERO_COPY_MIN == 512 * 1024
        assert ch.zero_copy_send(64 * 1024) is None
        assert ch.zero_copy_send(ZERO_COPY_MIN - 1) is None
        assert callable(ch.zero_copy_send(ZERO_COPY_MIN))
        assert callable(ch.zero_copy_send(1 << 20))
    finally:
        ch.close()


@pytest.mark.process
@pytest.mark.parametrize("size", ["512K", "1M"])
def test_zmq_zero_copy_stream_delivers_intact_bytes(size: str, tmp_path: Any) -> None:
    """Zero-copy sends from a pool of reused buffers: with --verify every body is compared byte for byte and
    every sequence number checked; a buffer rewritten while libzmq still held it would show as corrupt."""
    out = tmp_path / "r.json"
    proc = run_cli("run", "-t", "zmq-ipc", "-p", "stream", "-s", size, "--count", "400", "--warmup", "20",
                   "--trials", "1", "--verify", "-q", "--format", "json", "-o", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    (cell,) = json.loads(out.read_text())["cells"]
    assert cell["status"] == "ok", cell.get("reason")
    summary = cell["summary"]
    assert summary["received"] == summary["sent"] == 400
    assert summary["corrupt"] == 0 and summary["lost"] == 0
