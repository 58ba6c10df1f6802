"""The slot protocol of shm, shm-spin and mmap for one message in flight (ipclab/transports/slot.py): lengths
that change (the receive path's cached view), 0 B, messages around and far above the slot size, a caller that
sends before its peer has read (waits, never overwrites), exchange (a send and the receive that answers it in one
call) with its fallbacks, and the runner's round-trip patterns over it, blocking and spinning. Timing is never
asserted."""

from __future__ import annotations

import random
import time

import pytest
from test_shm import DUPLEX, RING_CLASSES, _in_thread, _run, _through_ring, ring_pair

from ipclab.transports import slot
from ipclab.transports.mmapfile import MmapTransport
from ipclab.transports.segment import RingChannel, RingTransport, SlotChannel
from ipclab.transports.shm import ShmSpinTransport, ShmTransport

BOTH_MODES = [ShmTransport, ShmSpinTransport]


def _echo(client, server, messages: list[bytes], size: int) -> None:
    """Ping-pong ``messages`` through both slots; the server echoes into a buffer of ``size`` bytes."""
    def echo() -> None:
        buf = memoryview(bytearray(size))
        for _ in messages:
            n = server.recv_into(buf)
            server.send(buf[:n])

    thread, errors = _in_thread(echo)
    rbuf = memoryview(bytearray(size))
    for msg in messages:
        client.send(memoryview(msg))
        n = client.recv_into(rbuf)
        assert n == len(msg) and rbuf[:n] == msg
    thread.join(30)
    assert not thread.is_alive() and not errors, errors


@pytest.mark.parametrize("cls", BOTH_MODES)
def test_cell_size_then_other_lengths_then_back(cls: type[RingTransport]) -> None:
    """The receive path copies from a view cached for the last length: a request/reply of two lengths, 0 B,
    one byte under and over the room, and 1 MiB through a 4 KiB slot (frames of the room)."""
    room = 4096 - 8
    mib = 1024 * 1024
    rng = random.Random(3)
    lengths = [64, 64, 16, 64, 0, 0, 64, room - 1, room, room + 1, 64, mib, 64, 3 * room + 5, 1, 64]
    messages = [rng.randbytes(n) for n in lengths * 3]
    with ring_pair(cls, 4096, DUPLEX, size=64) as (client, server):
        _echo(client, server, messages, mib)


@pytest.mark.parametrize("cls", BOTH_MODES)
def test_many_round_trips_at_the_cell_size(cls: type[RingTransport]) -> None:
    with ring_pair(cls, slot.slot_bytes_for(4096), DUPLEX, size=4096) as (client, server):
        _echo(client, server, [random.Random(i).randbytes(4096) for i in range(2000)], 4096)


@pytest.mark.parametrize("cls", BOTH_MODES)
def test_a_writer_ahead_of_its_reader_waits_for_the_slot(cls: type[RingTransport]) -> None:
    """Two sends without a receive break the declared shape: the second waits until the first is read (it
    never overwrites it), and every message arrives in order, whatever its size."""
    sizes = [0, 1, 7, 100, 247, 248, 249, 1000, 5003]
    rng = random.Random(5)
    messages = [rng.randbytes(rng.choice(sizes)) for _ in range(150)]
    assert _through_ring(cls, 256, messages, exact=True, shape=DUPLEX) == messages
    assert _through_ring(cls, 256, messages, exact=False, shape=DUPLEX) == messages


def test_sender_blocks_while_the_slot_is_full() -> None:
    with ring_pair(ShmTransport, 4096, DUPLEX, size=8) as (client, server):
        client.send(memoryview(b"first..."))
        done: list = []
        thread, errors = _in_thread(lambda: (client.send(memoryview(b"second..")), done.append(1)))
        thread.join(0.1)
        assert not done  # still waiting: the first message is unread
        buf = memoryview(bytearray(8))
        assert server.recv_into(buf) == 8 and buf == b"first..."
        thread.join(10)
        assert done and not errors
        assert server.recv_into(buf) == 8 and buf == b"second.."


@pytest.mark.parametrize("cls", RING_CLASSES)
def test_close_after_a_frame_that_was_not_yet_read(cls: type[RingTransport]) -> None:
    """The close's count can come with the last frame's: the frame first, then EOFError, twice over."""
    with ring_pair(cls, 4096, DUPLEX, size=8) as (client, server):
        client.send(memoryview(b"12345678"))
        client.close()
        buf = memoryview(bytearray(8))
        assert server.recv_into(buf) == 8 and buf == b"12345678"
        for _ in range(2):
            with pytest.raises(EOFError):
                server.recv_into(buf)


@pytest.mark.process
def test_round_trip_patterns_over_the_slot() -> None:
    """pingpong (count and duration: the end marker) and reqrep, --verify, blocking and spinning."""
    for kw in ({"count": 300}, {"duration": 0.3}):
        result = _run(("shm", "shm-spin", "mmap"), ("pingpong", "reqrep"), (0, 64, 70000), verify=True, **kw)
        for cell in result["cells"]:
            where = f"{cell['pattern']} {cell['transport']} {cell['size_bytes']} {kw}"
            if cell["status"] == "n/a":  # reqrep at 0 B
                continue
            assert cell["status"] == "ok", f"{where}: {cell['reason']}"
            assert cell["trials"][0]["metrics"]["corrupt"] == 0, where


def test_each_shape_gets_its_protocol(tmp_path) -> None:
    """One message in flight: slots sized to the message; anything else (streams, bursts): the ring."""
    from ipclab.declarations import TrafficShape
    from ipclab.transports.base import CellSpec
    from ipclab.transports.ring import ring_bytes_for

    for shape, is_slot in ((DUPLEX, True), (TrafficShape(duplex=False, in_flight=None), False),
                           (TrafficShape(duplex=True, in_flight=8), False)):
        for size in (0, 64, 65536):
            transport = ShmTransport(str(tmp_path), CellSpec(shape=shape, size=size))
            try:
                address = transport.setup()
            finally:
                transport.teardown()
            assert address["slot"] is is_slot
            want = slot.slot_bytes_for(size) if is_slot else ring_bytes_for(size)
            assert address["rings"][0]["ring_bytes"] == want
    assert ring_bytes_for(65536) == 1024 * 1024  # 16 messages while the ring stays cache-sized
    assert ring_bytes_for(1024 * 1024) == 4 * 1024 * 1024  # RING_MESSAGES of them beyond that


@pytest.mark.process
def test_streams_on_the_resized_ring() -> None:
    """stream at 64 KiB (16 per ring now) by count and by duration (the end marker), --verify."""
    for kw in ({"count": 200}, {"duration": 0.3}):
        result = _run(("shm", "shm-spin", "mmap"), ("stream",), (65536,), verify=True, **kw)
        for cell in result["cells"]:
            where = f"{cell['transport']} {kw}"
            assert cell["status"] == "ok", f"{where}: {cell['reason']}"
            m = cell["trials"][0]["metrics"]
            assert m["corrupt"] == 0 and m["lost"] == 0, where


def _reply(request: bytes, i: int) -> bytes:
    """What the exchanging server answers: not an echo (another length, other bytes), so both directions count."""
    return bytes(reversed(request)) + bytes([i & 0xFF]) * (i % 5)


@pytest.mark.parametrize("cls", [ShmTransport, ShmSpinTransport, MmapTransport])
def test_exchange_carries_requests_and_replies_of_changing_lengths(cls: type[RingTransport]) -> None:
    """Both ends exchange (the server: a first receive, then reply-and-receive, the last reply sent alone), mixed
    with plain send / recv_into round trips (a warm-up) on the client: 0 B, the cell's size, one byte under and
    over the room, 1 MiB through a 4 KiB slot (frames), each arriving whole and in order both ways."""
    room = 4096 - 8
    mib = 1024 * 1024
    rng = random.Random(11)
    lengths = [64, 64, 64, 16, 64, 0, 0, 64, room - 1, room, room + 1, 64, mib, 64, 3 * room + 5, 1, 64, 64]
    requests = [rng.randbytes(n) for n in lengths]
    with ring_pair(cls, 4096, DUPLEX, size=64) as (client, server):
        assert isinstance(client, SlotChannel) and client.has_exchange
        got: list[bytes] = []

        def serve() -> None:
            buf = memoryview(bytearray(mib + 8))
            n = server.recv_into(buf)
            for i in range(len(requests)):
                got.append(bytes(buf[:n]))
                reply = memoryview(_reply(got[-1], i))
                if i == len(requests) - 1:
                    server.send(reply)
                else:
                    n = server.exchange(reply, buf)

        thread, errors = _in_thread(serve)
        rbuf = memoryview(bytearray(mib + 8))
        for i, request in enumerate(requests):
            if i % 7 < 2:  # plain calls between exchanges: the state words must stay right for them
                client.send(memoryview(request))
                n = client.recv_into(rbuf)
            else:
                n = client.exchange(memoryview(request), rbuf)
            assert bytes(rbuf[:n]) == _reply(request, i), i
        thread.join(30)
        assert not thread.is_alive() and not errors, errors
        assert got == requests


@pytest.mark.parametrize("cls", BOTH_MODES)
def test_exchange_with_a_buffer_too_small_leaves_the_reply(cls: type[RingTransport]) -> None:
    """A reply larger than the buffer raises ValueError and stays in the slot, for recv_into with a larger one,
    whether exchange sent it (the cached length) or send did (another length); exchange then goes on at the new
    lengths."""
    with ring_pair(cls, 4096, DUPLEX, size=64) as (client, server):
        got: list[bytes] = []

        def serve() -> None:
            buf = memoryview(bytearray(64))
            assert server.recv_into(buf) == 64
            got.append(bytes(buf))
            for reply in (b"q" * 64, b"r" * 100):
                assert server.exchange(memoryview(reply), buf) == 64
                got.append(bytes(buf))
            server.send(memoryview(b"s" * 100))

        thread, errors = _in_thread(serve)
        large = memoryview(bytearray(200))
        for request, small, reply in ((b"a", 32, b"q" * 64), (b"c", 64, b"r" * 100)):
            with pytest.raises(ValueError, match=f"{len(reply)}-byte message"):
                client.exchange(memoryview(request * 64), memoryview(bytearray(small)))
            assert client.recv_into(large) == len(reply) and large[:len(reply)] == reply
        assert client.exchange(memoryview(b"b" * 64), large) == 100 and large[:100] == b"s" * 100
        thread.join(30)
        assert not thread.is_alive() and not errors, errors
        assert got == [b"a" * 64, b"c" * 64, b"b" * 64]


@pytest.mark.parametrize("cls", BOTH_MODES)
def test_exchange_ends_in_eof_when_the_peer_closes(cls: type[RingTransport]) -> None:
    """The server reads the request and closes instead of replying: exchange raises EOFError, and so does every
    receive after it; a reply sent before the close is delivered first."""
    with ring_pair(cls, 4096, DUPLEX, size=8) as (client, server):
        def serve() -> None:
            buf = memoryview(bytearray(8))
            assert server.recv_into(buf) == 8
            server.exchange(memoryview(b"reply..1"), buf)
            server.close()

        thread, errors = _in_thread(serve)
        buf = memoryview(bytearray(8))
        assert client.exchange(memoryview(b"request1"), buf) == 8 and buf == b"reply..1"
        with pytest.raises(EOFError):
            client.exchange(memoryview(b"request2"), buf)
        with pytest.raises(EOFError):
            client.recv_into(buf)
        thread.join(30)
        assert not thread.is_alive() and not errors, errors


def test_only_the_slot_declares_a_native_exchange() -> None:
    """The ring (a stream's shape) keeps the base class's flag off: the hot loops then make their own calls."""
    with ring_pair(ShmTransport, 4096, DUPLEX, size=8) as (client, _):
        assert type(client) is SlotChannel and SlotChannel.has_exchange
    with ring_pair(ShmTransport, 4096, size=8) as (client, _):
        assert type(client) is RingChannel and not client.has_exchange


@pytest.mark.parametrize("cls", BOTH_MODES)
def test_wait_readable_sees_exchanged_and_plain_frames_without_taking_them(cls: type[RingTransport]) -> None:
    """A frame sent by exchange leaves the slot's state word at 0 (blocking ends): readiness must still see it,
    as it sees a plain one, and a look must not consume either; a closed peer reads as ready (EOFError next)."""
    with ring_pair(cls, 4096, DUPLEX, size=8) as (client, server):
        assert server.waits_readable
        assert server.wait_readable(0) is False and server.wait_readable(0.002) is False
        replies: list[bytes] = []

        def ask() -> None:
            buf = memoryview(bytearray(8))
            assert client.exchange(memoryview(b"exchange"), buf) == 8
            replies.append(bytes(buf))
            client.send(memoryview(b"plainmsg"))

        thread, errors = _in_thread(ask)
        buf = memoryview(bytearray(8))
        for expected in (b"exchange", b"plainmsg"):
            deadline = time.monotonic() + 10  # bounded: a look-only (spinning) end answers at once
            while not server.wait_readable(0.05):
                if time.monotonic() > deadline:
                    pytest.fail(f"{cls.name}: a sent frame never became readable")
                time.sleep(0.001)
            assert server.wait_readable(0) is True  # looking twice takes nothing
            assert server.recv_into(buf) == 8 and buf == expected
            assert server.wait_readable(0) is False
            if expected == b"exchange":
                server.send(memoryview(b"answer.."))
        thread.join(30)
        assert not thread.is_alive() and not errors, errors
        assert replies == [b"answer.."]
        client.close()
        assert server.wait_readable(0.5) is True
        with pytest.raises(EOFError):
            server.recv_into(buf)
