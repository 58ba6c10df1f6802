"""Reusable channels: byte streams over file descriptors or SOCK_STREAM sockets, and datagram sockets.

The hot path of each is one C call plus a length check; the loop that completes a partial read or write only
runs when the kernel split a message (large messages on a pipe or a socket).

``hot_io(channel, size)`` is what the patterns' reliable hot loops call instead of ``send``/``recv_into``: the
raw C methods themselves plus two completions, so that a message costs one C call and one comparison rather
than a Python frame around the C call (a frame is ~0.1 us; four of them were ~7 % of a 6 us pipe round trip)::

    send, recv, finish_send, finish_recv, sent = hot_io(channel, size)
    n = recv(buf)                       # bytes received: short on a split byte stream, 0 at EOF
    if n != size: finish_recv(buf, n)   # completes the message or raises EOFError
    n = send(msg)                       # bytes written (== sent when the kernel took all of it)
    if n != sent: finish_send(msg, n)   # writes the rest (raises BlockingIOError on EAGAIN)

A channel offers this by declaring ``has_raw_io = True`` and setting ``raw_io`` to (send, recv, finish_send,
finish_recv) with a ``send`` that returns the byte count (or None, with ``no_count`` as finish_send); any
other channel gets its own whole-message ``send``/``recv_into``, ``sent`` = None (what such a ``send`` returns)
and completions that do nothing, so its figures are exactly what they were.
"""

from __future__ import annotations

import io
import select
import socket
from collections.abc import Callable
from typing import Any

from .base import BoundChannel, Channel, HotIO, set_recv_timeout
from .ledger import OwnedFd


def _whole(buf: memoryview, n: object) -> None:
    """Completion for channels whose send/recv_into move whole messages: nothing is ever left to do."""


def no_count(msg: memoryview, n: object) -> None:
    """finish_send of a raw send that returns None, not a byte count (it sends the whole message or raises):
    hot_io then gives ``sent`` = None, so ``n != sent`` never calls this."""


def hot_io(channel: Channel, size: int) -> tuple[Any, Any, Any, Any, int | None]:
    """(send, recv, finish_send, finish_recv, sent) for a hot loop; see the module docstring for the protocol."""
    if channel.has_raw_io:
        send, recv, finish_send, finish_recv = channel.raw_io
        return send, recv, finish_send, finish_recv, None if finish_send is no_count else size
    return channel.send, channel.recv_into, _whole, _whole, None


def fd_waiter(fd: int) -> Callable[[float], bool]:
    """wait_readable for a pollable fd: select() for a timeout (microsecond resolution; poll() and epoll()
    round a timeout up to whole milliseconds, too coarse for a request schedule), poll() to just look."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    look, wait, fds = poller.poll, select.select, [fd]

    def wait_readable(timeout_s: float) -> bool:
        if timeout_s <= 0:
            return bool(look(0))
        return bool(wait(fds, (), (), timeout_s)[0])

    return wait_readable


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


def _write_all(write: Callable[[memoryview], int | None], msg: memoryview, done: int | None) -> None:
    """Complete a short write (rare: a signal interrupted a blocking write after some bytes)."""
    if done is None:  # FileIO.write on a non-blocking fd that is full
        raise BlockingIOError("the channel is non-blocking and full")
    view = memoryview(msg)
    total = len(view)
    while done < total:
        n = write(view[done:])
        if n is None:
            raise BlockingIOError("the channel is non-blocking and full")
        done += n


def _whole_reads(readinto: Callable[[memoryview], int | None]) -> Callable[[memoryview], int]:
    """recv_into for a byte stream: one C call; the completion loop runs only after a short read."""

    def recv_into(buf: memoryview) -> int:
        n = readinto(buf)
        if n == len(buf):
            return n
        return _fill(readinto, buf, n)

    return recv_into


def _stream_io(write: Callable[[memoryview], int | None], readinto: Callable[[memoryview], int | None]) -> HotIO:
    """The raw I/O of a byte stream for hot_io: the C calls themselves and their two completions."""
    return write, readinto, lambda msg, n: _write_all(write, msg, n), lambda buf, n: _fill(readinto, buf, n)


class FdStreamChannel(BoundChannel):
    """A byte stream over a read fd and/or a write fd (pipes, FIFOs); the channel owns both."""

    has_raw_io = True

    def __init__(self, read_fd: int | None, write_fd: int | None) -> None:
        self._reader = io.FileIO(read_fd, "rb", closefd=True) if read_fd is not None else None
        self._write_fd = OwnedFd(write_fd) if write_fd is not None else None
        # FileIO.write is one write(2) in a bound C method: the hot loops call it directly (see hot_io).
        self._writer = io.FileIO(write_fd, "wb", closefd=False) if write_fd is not None else None
        readinto = self._reader.readinto if self._reader is not None else self.recv_into
        write = self._writer.write if self._writer is not None else self.send
        if self._reader is not None:
            self.recv_into = _whole_reads(readinto)  # type: ignore[method-assign,assignment]
        if self._writer is not None:

            def send(msg: memoryview) -> None:
                n = write(msg)
                if n != len(msg):
                    _write_all(write, msg, n)

            self.send = send  # type: ignore[method-assign]
        self.raw_io = _stream_io(write, readinto)

    waits_readable = True

    def wait_readable(self, timeout_s: float) -> bool:
        """Readiness of the read fd (the first call binds a poller to this instance)."""
        if self._reader is None:
            raise OSError("this endpoint cannot receive")
        self.wait_readable = fd_waiter(self._reader.fileno())  # type: ignore[method-assign,assignment]
        return self.wait_readable(timeout_s)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._writer is not None:
            self._writer.close()  # closefd=False: only marks it closed; the owner closes the fd just below
            self._writer = None
        if self._write_fd is not None:
            self._write_fd.close()
            self._write_fd = None


class SocketChannel(BoundChannel):
    """A channel over one connected socket, which it owns; subclasses bind ``send``/``recv_into`` to it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def set_timeout(self, seconds: float | None) -> None:
        set_recv_timeout(self.sock, seconds)

    waits_readable = True

    def wait_readable(self, timeout_s: float) -> bool:
        """Readiness of the socket (the first call binds a poller to this instance)."""
        self.wait_readable = fd_waiter(self.sock.fileno())  # type: ignore[method-assign,assignment]
        return self.wait_readable(timeout_s)

    def close(self) -> None:
        self.sock.close()


class StreamSocketChannel(SocketChannel):
    """A connected SOCK_STREAM socket (unix, tcp): fixed-size messages need no framing."""

    has_raw_io = True

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.send = sock.sendall  # type: ignore[method-assign,assignment]
        self.recv_into = _whole_reads(sock.recv_into)  # type: ignore[method-assign,assignment]
        # sock.send returns the count; blocking SOCK_STREAM sockets take everything unless a signal interrupts
        self.raw_io = _stream_io(sock.send, sock.recv_into)


def _empty_receiver(readinto: Callable[..., int]) -> Callable[[], int]:
    """Receive an empty message on a socket that keeps boundaries (see DatagramSocketChannel): a 1-byte scratch
    buffer with MSG_TRUNC waits for a message and returns its real length, which must be 0."""
    scratch = bytearray(1)
    trunc = socket.MSG_TRUNC

    def recv_empty() -> int:
        n = readinto(scratch, 1, trunc)
        if n:
            raise ValueError(f"a {n}-byte datagram arrived where an empty message was due")
        return 0

    return recv_empty


class DatagramSocketChannel(SocketChannel):
    """A connected SOCK_DGRAM socket (udp, unix-dgram): one datagram per message, boundaries kept.

    A receive timeout (SO_RCVTIMEO) surfaces as TimeoutError; the lossy patterns use it so that a lost
    datagram never hangs the receiver.

    Empty messages: recv(2) into a 0-byte buffer returns 0 at once on Linux, whether a datagram is queued or not
    (and consumes nothing), so an empty message is received into a 1-byte scratch buffer with MSG_TRUNC, which
    waits for a datagram and returns its real length: a non-empty datagram where an empty one was due is an error.
    """

    has_raw_io = True

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.send = sock.send  # type: ignore[method-assign,assignment]
        readinto = sock.recv_into
        recv_empty = _empty_receiver(readinto)

        def recv_into(buf: memoryview) -> int:
            try:
                if len(buf):
                    return readinto(buf)
                return recv_empty()
            except BlockingIOError:  # SO_RCVTIMEO expired (set_timeout)
                raise TimeoutError("no datagram before the receive timeout") from None

        self.recv_into = recv_into  # type: ignore[method-assign]
        self.raw_io = (sock.send, recv_into, _whole, _whole)  # send returns the datagram's size
