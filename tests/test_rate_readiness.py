"""Channel readiness (``wait_readable``), fast tier: both ends of a real transport in this process. The open-loop
client reads answers only when one is there, so a channel's "ready" must mean a whole message can be received
now, and "not ready" must not consume anything."""

from __future__ import annotations

import pytest
from inprocess import pair

from ipclab.declarations import TrafficShape
from ipclab.patterns.openloop import IN_FLIGHT_MAX, in_flight_cap
from ipclab.transports import get_transport
from ipclab.transports.base import CellSpec

WAITERS = ["pipe", "unix", "tcp", "udp", "shm", "mmap", "posix-mq", "zmq-ipc", "fifo", "unix-dgram", "mp-pipe"]


@pytest.mark.parametrize("name", WAITERS)
def test_ready_means_a_message_is_there(name: str, workdir: str) -> None:
    cls = get_transport(name)
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    # The shape an open-loop cell asks for (openloop.carried_shape): several requests in flight.
    t = cls(workdir, CellSpec(shape=TrafficShape(duplex=True, in_flight=IN_FLIGHT_MAX), size=64))
    try:
        _, server, (client,) = pair(t)
        try:
            assert client.waits_readable
            assert client.wait_readable(0) is False  # nothing sent yet: a look says no
            assert client.wait_readable(0.002) is False  # a short wait too, and consumes nothing
            msg = memoryview(bytes(range(64)))
            for _ in range(3):
                server.send(msg)
            buf = bytearray(64)
            for _ in range(3):
                for _ in range(1000):  # a look-only channel may say no before the message lands: bounded
                    if client.wait_readable(0.05):
                        break
                else:
                    pytest.fail(f"{name}: a sent message never became readable")
                assert client.recv_into(memoryview(buf)) == 64 and bytes(buf) == bytes(msg)
            assert client.wait_readable(0) is False  # all three taken: nothing left
            assert 1 <= in_flight_cap(client, 64) <= 128
        finally:
            client.close()
            server.close()
    finally:
        t.teardown()


def test_a_queue_caps_requests_in_flight_at_its_depth(workdir: str) -> None:
    cls = get_transport("posix-mq")
    if cls.unavailable_reason():
        pytest.skip(cls.unavailable_reason())
    t = cls(workdir, CellSpec(shape=TrafficShape(duplex=True), size=64))
    try:
        _, server, (client,) = pair(t)
        try:
            depth = client.in_flight_limit()  # type: ignore[attr-defined]
            assert in_flight_cap(client, 64) == min(depth, 128)
        finally:
            client.close()
            server.close()
    finally:
        t.teardown()
