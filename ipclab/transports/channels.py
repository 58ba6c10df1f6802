"""Reusable channels: byte streams over file descriptors or stream sockets, and datagram sockets.

The hot path of each is one C call plus a length check; the loop that completes a partial read or write only
runs when the kernel split a message (large messages on a pipe or a socket).
"""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable

from .base import Channel, set_recv_timeout


def _fill(readinto: Callable[[memoryview], int | None], buf: memoryview, got: int | None) -> int:
    """Complete a message after a short read (allocates one memoryview; rare)."""
    total = len(buf)
    if not got:
        if total == 0:
            return 0
        raise EOFError("peer closed the channel")
    view = memoryview(buf)
    while got < total:
        n = readinto(view[got:])
        if not n:
            raise EOFError(f"peer closed the channel after {got} of {total} bytes")
        got += n
    return total


def _write_all(write: Callable[[memoryview], int], msg: memoryview, done: int) -> None:
    view = memoryview(msg)
    total = len(view)
    while done < total:
        done += write(view[done:])


class FdStreamChannel(Channel):
    """A byte stream over a read fd and/or a write fd (pipes, FIFOs)."""

    def __init__(self, read_fd: int | None, write_fd: int | None) -> None:
        self._reader = io.FileIO(read_fd, "rb", closefd=True) if read_fd is not None else None
        self._write_fd = write_fd
        if self._reader is not None:
            readinto = self._reader.readinto

            def recv_into(buf: memoryview) -> int:
                n = readinto(buf)
                if n == len(buf):
                    return n
                return _fill(readinto, buf, n)

            self.recv_into = recv_into  # type: ignore[method-assign]
        if write_fd is not None:
            write = os.write
            fd = write_fd

            def send(msg: memoryview) -> None:
                n = write(fd, msg)
                if n != len(msg):
                    _write_all(lambda view: write(fd, view), msg, n)

            self.send = send  # type: ignore[method-assign]

    def send(self, msg: memoryview) -> None:  # replaced per instance in __init__
        raise OSError("this endpoint cannot write")

    def recv_into(self, buf: memoryview) -> int:  # replaced per instance in __init__
        raise OSError("this endpoint cannot read")

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._write_fd is not None:
            try:
                os.close(self._write_fd)
            except OSError:
                pass
            self._write_fd = None


class StreamSocketChannel(Channel):
    """A connected SOCK_STREAM socket (unix, tcp): fixed-size messages need no framing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.send = sock.sendall  # type: ignore[method-assign]
        readinto = sock.recv_into

        def recv_into(buf: memoryview) -> int:
            n = readinto(buf)
            if n == len(buf):
                return n
            return _fill(readinto, buf, n)

        self.recv_into = recv_into  # type: ignore[method-assign]

    def send(self, msg: memoryview) -> None:  # replaced per instance
        self.sock.sendall(msg)

    def recv_into(self, buf: memoryview) -> int:  # replaced per instance
        raise NotImplementedError

    def set_timeout(self, seconds: float | None) -> None:
        set_recv_timeout(self.sock, seconds)

    def close(self) -> None:
        self.sock.close()


class DatagramSocketChannel(Channel):
    """A connected SOCK_DGRAM socket (udp, unix-dgram): one datagram per message, boundaries kept.

    A receive timeout (SO_RCVTIMEO) surfaces as TimeoutError; the lossy patterns use it so that a lost
    datagram never hangs the receiver.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.send = sock.send  # type: ignore[method-assign]
        readinto = sock.recv_into

        def recv_into(buf: memoryview) -> int:
            try:
                return readinto(buf)
            except BlockingIOError:
                raise TimeoutError("no datagram before the receive timeout") from None

        self.recv_into = recv_into  # type: ignore[method-assign]

    def send(self, msg: memoryview) -> None:  # replaced per instance
        self.sock.send(msg)

    def recv_into(self, buf: memoryview) -> int:  # replaced per instance
        raise NotImplementedError

    def set_timeout(self, seconds: float | None) -> None:
        set_recv_timeout(self.sock, seconds)

    def close(self) -> None:
        self.sock.close()
