"""Channel.exchange (a send and the receive that answers it, one call) over every transport, fast tier: both
ends of a real transport in this process. A native exchange (shm's slots, posix-mq's queue pair) must carry the
same bytes as send + recv_into; every other channel's is the base class's, which is exactly those two calls."""

from __future__ import annotations

import threading

import pytest
from inprocess import pair

from ipclab.declarations import TrafficShape
from ipclab.transports import get_transport
from ipclab.transports.base import CellSpec

ROUND_TRIP = TrafficShape(duplex=True, in_flight=1)  # ping-pong's shape: what the slot channel is chosen for
NATIVE = {"shm", "shm-spin", "mmap", "posix-mq"}
TRIED = ["pipe", "unix", "tcp", "shm", "shm-spin", "mmap", "posix-mq", "zmq-ipc"]


def _available(name: str) -> type:
    cls = get_transport(name)
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    return cls


@pytest.mark.parametrize("name", TRIED)
def test_exchange_round_trips_carry_each_request_and_its_own_reply(name: str, workdir: str) -> None:
    """200 round trips through exchange on both ends (the server: a first receive, then reply-and-receive, the
    last reply alone, as pingpong's loop does); each reply differs from its request, so a stale or crossed
    buffer shows."""
    cls = _available(name)
    t = cls(workdir, CellSpec(shape=ROUND_TRIP, size=64))
    try:
        _, server, (client,) = pair(t)
        try:
            assert client.has_exchange == server.has_exchange == (name in NATIVE)
            errors: list[BaseException] = []

            def serve() -> None:
                try:
                    buf = memoryview(bytearray(64))
                    assert server.recv_into(buf) == 64
                    for i in range(200):
                        reply = memoryview(bytes(buf[::-1]))
                        if i == 199:
                            server.send(reply)
                        else:
                            assert server.exchange(reply, buf) == 64
                except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                    errors.append(exc)

            thread = threading.Thread(target=serve)
            thread.start()
            rbuf = memoryview(bytearray(64))
            for i in range(200):
                request = bytes((i + j) % 256 for j in range(64))
                assert client.exchange(memoryview(request), rbuf) == 64
                assert bytes(rbuf) == request[::-1], i
            thread.join(30)
            assert not thread.is_alive() and not errors, errors
        finally:
            client.close()
            server.close()
    finally:
        t.teardown()


def test_a_posix_mq_exchange_after_set_timeout_times_out(workdir: str) -> None:
    """set_timeout replaces the receive with mq_timedreceive; exchange must then use it too (TimeoutError, the
    request still sent), not block on the untimed receive it was built with."""
    cls = _available("posix-mq")
    t = cls(workdir, CellSpec(shape=ROUND_TRIP, size=8))
    try:
        _, server, (client,) = pair(t)
        try:
            client.set_timeout(0.05)
            buf = memoryview(bytearray(8))
            raised: list[BaseException] = []

            def ask() -> None:
                try:
                    client.exchange(memoryview(b"request!"), buf)
                except BaseException as exc:  # noqa: BLE001 - checked below
                    raised.append(exc)

            thread = threading.Thread(target=ask)
            thread.start()
            thread.join(5)
            if thread.is_alive():  # blocked on the untimed receive: unblock it, then fail
                server.send(memoryview(b"unblock!"))
                thread.join(5)
                pytest.fail("exchange ignored the receive timeout")
            assert len(raised) == 1 and isinstance(raised[0], TimeoutError), raised
            assert server.recv_into(buf) == 8 and buf == b"request!"
            client.set_timeout(None)
            server.send(memoryview(b"late rep"))
            server.send(memoryview(b"reply..."))
            assert client.recv_into(buf) == 8 and buf == b"late rep"
            assert client.exchange(memoryview(b"second.."), buf) == 8 and buf == b"reply..."
        finally:
            client.close()
            server.close()
    finally:
        t.teardown()
