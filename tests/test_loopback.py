"""The in-process loopback transport the Inline launcher runs on. Fast tier: threads, no processes."""

from __future__ import annotations

import threading

import pytest

from ipclab.patterns import get_pattern
from ipclab.transports import TRANSPORTS, available_names, get_transport
from ipclab.transports.base import CellSpec
from ipclab.transports.loopback import LoopbackTransport, live_hubs


class Lossy(LoopbackTransport):
    name = "loopback-lossy"
    reliable = False
    drop_every = 3


def _setup(cls: type = LoopbackTransport, writers: int = 1, tmp: str = "/nonexistent") -> tuple:
    t = cls(tmp, CellSpec(shape=get_pattern("fanin").SPEC.shape, size=64, clients=writers))
    return t, t.setup()


def test_hidden_found_by_name_only() -> None:
    assert LoopbackTransport.hidden
    assert "loopback" not in TRANSPORTS and "loopback" not in available_names()
    assert get_transport("loopback") is LoopbackTransport
    with pytest.raises(KeyError):
        get_transport("no-such-transport")


def test_messages_both_ways_whole_and_in_order() -> None:
    t, address = _setup()
    try:
        server = LoopbackTransport.connect(address, "server", 0)
        client = LoopbackTransport.connect(address, "client", 0)
        buf = memoryview(bytearray(8))
        for i in range(3):
            client.send(memoryview(bytes([i]) * 8))
        assert [(server.recv_into(buf), bytes(buf)) for _ in range(3)] == [(8, bytes([i]) * 8) for i in range(3)]
        server.send(memoryview(b"reply"))
        assert client.recv_into(buf) == 5 and bytes(buf[:5]) == b"reply"
    finally:
        t.teardown()
    assert address["loopback"] not in live_hubs()


def test_the_reader_sees_eof_only_after_every_writer_closed() -> None:
    t, address = _setup(writers=2)
    try:
        server = LoopbackTransport.connect(address, "server", 0)
        producers = [LoopbackTransport.connect(address, "client", i) for i in range(2)]
        buf = memoryview(bytearray(4))
        producers[0].send(memoryview(b"aaaa"))
        producers[0].close()
        producers[1].send(memoryview(b"bbbb"))
        assert server.recv_into(buf) == 4 and server.recv_into(buf) == 4
        producers[1].close()
        with pytest.raises(EOFError):
            server.recv_into(buf)
    finally:
        t.teardown()


def test_timeout_and_teardown_wake_a_blocked_reader() -> None:
    t, address = _setup()
    server = LoopbackTransport.connect(address, "server", 0)
    buf = memoryview(bytearray(4))
    server.set_timeout(0.01)
    with pytest.raises(TimeoutError):
        server.recv_into(buf)
    server.set_timeout(None)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            server.recv_into(buf)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    reader = threading.Thread(target=read, name="ipclab-test-reader")
    reader.start()
    t.teardown()
    reader.join(5)
    assert not reader.is_alive() and isinstance(errors[0], EOFError)
    with pytest.raises(EOFError):  # and every read after it
        server.recv_into(buf)


def test_a_lossy_loopback_drops_every_nth_message() -> None:
    t, address = _setup(Lossy)
    try:
        server = Lossy.connect(address, "server", 0)
        client = Lossy.connect(address, "client", 0)
        for i in range(6):
            client.send(memoryview(bytes([i])))
        server.set_timeout(0.01)
        got = []
        buf = memoryview(bytearray(1))
        while True:
            try:
                server.recv_into(buf)
            except TimeoutError:
                break
            got.append(buf[0])
        assert got == [0, 1, 3, 4]
    finally:
        t.teardown()


def test_dialed_connections_carry_bytes_and_eof() -> None:
    t, address = _setup()
    try:
        server = LoopbackTransport.connect(address, "server", 0)
        client = LoopbackTransport.connect(address, "client", 0)
        conn = client.dial()  # type: ignore[attr-defined]
        conn.sendall(b"hello")
        conn.close()
        peer = server.accept()  # type: ignore[attr-defined]
        buf = bytearray(16)
        assert peer.recv_into(memoryview(buf)) == 5 and buf[:5] == b"hello"
        assert peer.recv_into(memoryview(buf)) == 0  # the dialer closed its side
        peer.close()
        assert conn.recv_into(memoryview(buf)) == 0
    finally:
        t.teardown()
    with pytest.raises(EOFError):
        server.accept()  # type: ignore[attr-defined]


def test_connect_outside_the_runners_process_is_one_clear_error() -> None:
    with pytest.raises(RuntimeError, match="Inline launcher"):
        LoopbackTransport.connect({"loopback": -1}, "server", 0)


def test_declared_applicability() -> None:
    dials = get_pattern("connect").SPEC
    plain = get_pattern("pingpong").SPEC
    assert "dialed connection" in (LoopbackTransport.not_applicable(dials.shape, 0) or "")
    assert LoopbackTransport.not_applicable(dials.shape, 64) is None
    assert LoopbackTransport.not_applicable(plain.shape, 0) is None  # empty messages are fine
