"""Connected-socket endpoints beyond one connection, shared by the connection transports (unix, tcp,
unix-seqpacket).

- ``MultiStreamChannel``: the server side of N connected clients (several writers). ``recv_into`` returns one
  whole message from whichever connection has data, round-robin over the ones the last readiness poll reported,
  so no writer can starve the others while the reader keeps up.
- ``ListenerChannel`` / ``DialChannel``: for a connection per iteration, which measures setting connections up.
  The server keeps the listening socket itself (``accept()``), the client gets a ``dial()`` that opens a fresh
  connection.

Sockets stay blocking: on a byte stream, a message whose first bytes arrived is completed with a blocking read
from the same connection (its writer wrote the whole message with one sendall), which keeps the hot path one poll
per batch plus one recv_into per message. A socket that keeps boundaries (SOCK_SEQPACKET) delivers whole messages
and needs no completion (``whole_messages``).
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable, Sequence

from .base import BoundChannel, Channel
from .channels import _fill


class MultiStreamChannel(BoundChannel):
    """Receive-only endpoint over several connected sockets (one per writer)."""

    def __init__(self, socks: Sequence[socket.socket], whole_messages: bool = False) -> None:
        self.socks = list(socks)
        self._selector = selectors.DefaultSelector()
        for sock in self.socks:
            self._selector.register(sock, selectors.EVENT_READ)
        self._open = len(self.socks)
        self._ready: list[socket.socket] = []
        self._timeout: float | None = None
        select, ready = self._selector.select, self._ready

        def recv_into(buf: memoryview) -> int:
            while True:
                if not ready:
                    if not self._open:
                        raise EOFError("every writer closed its connection")
                    events = select(self._timeout)
                    if not events:
                        raise TimeoutError("no message before the receive timeout")
                    ready.extend(key.fileobj for key, _ in events)  # type: ignore[misc]
                sock = ready.pop()
                n = sock.recv_into(buf)
                if n == len(buf):
                    return n
                if n == 0 and len(buf):  # this writer has gone; the others may still be sending
                    self._selector.unregister(sock)
                    self._open -= 1
                    continue
                return n if whole_messages else _fill(sock.recv_into, buf, n)

        self.recv_into = recv_into  # type: ignore[method-assign]

    def send(self, msg: memoryview) -> None:
        raise OSError("the endpoint of several writers only receives")

    def set_timeout(self, seconds: float | None) -> None:
        self._timeout = seconds

    def close(self) -> None:
        self._selector.close()
        for sock in self.socks:
            sock.close()


class ListenerChannel(Channel):
    """The server of a connection per iteration: the listening socket; ``accept()`` returns a connected socket."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.accept: Callable[[], socket.socket] = lambda: listener.accept()[0]

    def send(self, msg: memoryview) -> None:
        raise OSError("a listening endpoint carries no messages; accept() a connection")

    def recv_into(self, buf: memoryview) -> int:
        raise OSError("a listening endpoint carries no messages; accept() a connection")

    def set_timeout(self, seconds: float | None) -> None:
        self.listener.settimeout(seconds)

    def close(self) -> None:
        self.listener.close()


class DialChannel(Channel):
    """The client of a connection per iteration: ``dial()`` opens one new connection to the server per call."""

    def __init__(self, family: int, address: str | tuple[str, int], kind: int = socket.SOCK_STREAM) -> None:
        def dial() -> socket.socket:
            sock = socket.socket(family, kind)
            try:
                sock.connect(address)  # a numeric address: no name lookup inside the timed loop
            except BaseException:
                sock.close()
                raise
            return sock

        self.dial = dial

    def send(self, msg: memoryview) -> None:
        raise OSError("a dialing endpoint has no connection of its own; dial() one")

    def recv_into(self, buf: memoryview) -> int:
        raise OSError("a dialing endpoint has no connection of its own; dial() one")

    def close(self) -> None:
        pass
