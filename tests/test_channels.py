"""The shared channels, in one process: whole messages, EOF, and empty datagrams that really wait."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from ipclab.transports.channels import DatagramSocketChannel, FdStreamChannel, StreamSocketChannel, hot_io


@pytest.mark.parametrize("family", [socket.AF_UNIX, socket.AF_INET])
def test_empty_datagram_waits_for_a_datagram(family: int) -> None:
    if family == socket.AF_UNIX:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    else:
        a, b = socket.socket(family, socket.SOCK_DGRAM), socket.socket(family, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.connect(b.getsockname())
        b.connect(a.getsockname())
    sender, receiver = DatagramSocketChannel(a), DatagramSocketChannel(b)
    try:
        receiver.set_timeout(0.05)
        empty = memoryview(bytearray(0))
        with pytest.raises(TimeoutError):  # nothing queued: must wait, not return 0 at once
            receiver.recv_into(empty)
        sender.send(empty)
        assert receiver.recv_into(empty) == 0  # the empty datagram is consumed
        with pytest.raises(TimeoutError):
            receiver.recv_into(empty)
        sender.send(memoryview(b"xyz"))
        with pytest.raises(ValueError, match="3-byte datagram"):
            receiver.recv_into(empty)
    finally:
        sender.close()
        receiver.close()


def test_stream_channels_deliver_whole_messages_across_short_reads() -> None:
    r, w = os.pipe()
    reader, writer = FdStreamChannel(r, None), FdStreamChannel(None, w)
    a, b = socket.socketpair()
    sa, sb = StreamSocketChannel(a), StreamSocketChannel(b)
    try:
        msg = bytes(range(256)) * 300  # 76800 B: more than a pipe buffer, arrives in pieces
        for tx, rx in ((writer, reader), (sa, sb)):
            buf = bytearray(len(msg))
            t = threading.Thread(target=tx.send, args=(memoryview(msg),))
            t.start()
            assert rx.recv_into(memoryview(buf)) == len(msg)
            t.join(10)
            assert buf == msg
            send, recv, finish_send, finish_recv, sent = hot_io(rx, len(msg))
            assert callable(recv) and callable(finish_recv)
        writer.close()
        with pytest.raises(EOFError):
            reader.recv_into(memoryview(bytearray(10)))
    finally:
        reader.close()
        writer.close()
        sa.close()
        sb.close()


def test_hot_io_is_declared_not_probed() -> None:
    """A channel offers raw I/O by declaring it (has_raw_io); an attribute that happens to be called raw_io on a
    channel that does not declare it is never used."""
    from ipclab.transports.base import Channel

    class Plain(Channel):
        raw_io = ("not", "hot", "io", "at all")  # type: ignore[assignment]

        def send(self, msg: memoryview) -> None:
            pass

        def recv_into(self, buf: memoryview) -> int:
            return len(buf)

        def close(self) -> None:
            pass

    plain = Plain()
    send, recv, finish_send, finish_recv, sent = hot_io(plain, 8)
    assert (send, recv, sent) == (plain.send, plain.recv_into, None)
    finish_send(memoryview(b""), None)  # completions do nothing for whole-message channels
    a, b = socket.socketpair()
    with StreamSocketChannel(a) as sa, StreamSocketChannel(b):
        assert StreamSocketChannel.has_raw_io and hot_io(sa, 8)[4] == 8


def test_fd_stream_channel_owns_its_fds() -> None:
    before = set(os.listdir("/proc/self/fd"))
    r, w = os.pipe()
    channel = FdStreamChannel(r, w)
    channel.close()
    channel.close()  # idempotent
    assert set(os.listdir("/proc/self/fd")) == before


def test_seqpacket_channel_hot_path_sees_eof() -> None:
    from ipclab.transports.unixseqpacket import SeqpacketChannel

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tx, rx = SeqpacketChannel(a), SeqpacketChannel(b)
    try:
        send, recv, finish_send, finish_recv, sent = hot_io(rx, 5)
        assert hot_io(tx, 5)[0](memoryview(b"hello")) == 5 == sent
        buf = memoryview(bytearray(5))
        assert recv(buf) == 5 and buf == b"hello"
        tx.close()
        n = recv(buf)
        assert n == 0
        with pytest.raises(EOFError):
            finish_recv(buf, n)
        with pytest.raises(EOFError):
            rx.recv_into(buf)
    finally:
        tx.close()
        rx.close()
