"""Control channel between the runner and a worker: length-prefixed JSON over a Unix socketpair.

Control traffic never shares the measured channel. Messages are dicts with a "type": CONFIG, READY, START,
RESULT, ERROR. JSON only: bytes from another process are never unpickled.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from typing import Any

_LEN = struct.Struct("!I")
MAX_MESSAGE = 256 * 1024 * 1024  # a RESULT with every sample of a large run still fits


class ControlClosed(EOFError):
    """The peer closed the control channel (it exited or died)."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    return _LEN.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(encode(message))


class Reader:
    """Incremental reader: ``feed()`` whatever is available, ``pop()`` complete messages.

    The runner multiplexes several workers with select(); the worker uses the blocking :meth:`recv`.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def feed(self) -> None:
        """Read what is available now (call when select says readable)."""
        chunk = self.sock.recv(1 << 16)
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
        message = json.loads(body)
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
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                raise TimeoutError("no control message in time")
            self.feed()
