"""Control channel between the runner and a worker: length-prefixed JSON over any byte stream.

Control traffic never shares the measured channel. Messages are dicts with a "type": CONFIG, READY, START,
STARTED, RESULT, ERROR, EXIT. JSON only: bytes from another process are never unpickled.

The stream is whatever carries bytes both ways: one socket (a socketpair inherited at spawn), or two pipe ends
(a child's stdin and stdout, as a launcher that runs ``ssh host python -m ipclab.worker --stdio`` sees them).
Everything here reads and writes with ``os.read``/``os.write`` on file descriptors, so both work the same.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any, Protocol

_LEN = struct.Struct("!I")
MAX_MESSAGE = 256 * 1024 * 1024  # a RESULT with every sample of a large run still fits
_CHUNK = 1 << 16


class HasFileno(Protocol):
    def fileno(self) -> int: ...



class ControlClosed(EOFError):
    """The peer closed the control channel (it exited or died)."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    return _LEN.pack(len(body)) + body


def _fd(end: int | HasFileno) -> int:
    return end if isinstance(end, int) else end.fileno()


def write_all(end: int | HasFileno, data: bytes) -> None:
    """Write every byte (a pipe takes at most its buffer per write; a RESULT can be far larger)."""
    fd = _fd(end)
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def send(end: int | HasFileno, message: dict[str, Any]) -> None:
    """One message to a socket, a pipe's write end, or any object with fileno()."""
    write_all(end, encode(message))


class Reader:
    """Incremental reader: ``feed()`` whatever is available, ``pop()`` complete messages.

    The runner multiplexes several workers with select(); a worker uses the blocking :meth:`recv`. ``source``
    is a socket, a pipe's read end, or an fd number owned by someone else (the Reader never closes it).
    """

    def __init__(self, source: int | HasFileno) -> None:
        self.source = source
        self._buf = bytearray()
        self.closed = False

    def fileno(self) -> int:
        return _fd(self.source)

    def feed(self) -> None:
        """Read what is available now (call when select says readable)."""
        chunk = os.read(self.fileno(), _CHUNK)
        if not chunk:
            self.closed = True
        self._buf += chunk

    def pop(self) -> dict[str, Any] | None:
        if len(self._buf) < _LEN.size:
            return None
        (length,) = _LEN.unpack_from(self._buf)
        if length > MAX_MESSAGE:
            raise ValueError(f"control message of {length} bytes exceeds {MAX_MESSAGE}")
        if len(self._buf) < _LEN.size + length:
            return None
        body = bytes(self._buf[_LEN.size : _LEN.size + length])
        del self._buf[: _LEN.size + length]
        try:
            message = json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError included
            raise ValueError(f"malformed control message ({exc})") from None
        if not isinstance(message, dict) or "type" not in message:
            raise ValueError("malformed control message")
        return message

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until one message arrives; TimeoutError after ``timeout`` s, ControlClosed on EOF."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self.pop()
            if message is not None:
                return message
            if self.closed:
                raise ControlClosed("control channel closed")
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fileno()], [], [], wait)
            if not ready:
                raise TimeoutError("no control message in time")
            self.feed()


class ControlChannel:
    """One control channel: a reader end and a writer end (the same socket, or two pipes).

    ``ends`` are the objects to close with the channel (sockets, pipe files); fd numbers given to ``Reader``
    and ``send`` are taken from them, so the channel never closes a number that may already name another file.
    """

    def __init__(self, read_end: HasFileno, write_end: HasFileno) -> None:
        self.read_end = read_end
        self.write_end = write_end
        self.reader = Reader(read_end)

    def fileno(self) -> int:
        return self.reader.fileno()

    def send(self, message: dict[str, Any]) -> None:
        send(self.write_end, message)

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        return self.reader.recv(timeout)

    def close(self) -> None:
        for end in {id(self.read_end): self.read_end, id(self.write_end): self.write_end}.values():
            try:
                end.close()  # type: ignore[attr-defined]
            except OSError:
                pass


def pipe_pair() -> tuple[ControlChannel, ControlChannel]:
    """Two connected Streams over two pipes: what a child's stdin/stdout pair looks like (no socket)."""
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    # The files own the fds from here on; each ControlChannel closes its two.
    files = [open(fd, mode, buffering=0)  # noqa: SIM115
             for fd, mode in ((a_r, "rb"), (a_w, "wb"), (b_r, "rb"), (b_w, "wb"))]
    return ControlChannel(files[0], files[1]), ControlChannel(files[2], files[3])
