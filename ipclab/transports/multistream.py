"""Stream-socket endpoints beyond one connection, shared by tcp and unix.

- ``MultiStreamChannel``: the server side of N connected clients (the fan-in pattern). ``recv_into`` returns one
  whole message from whichever connection has data, round-robin over the ones the last readiness poll reported,
  so no producer can starve the others while the consumer keeps up.
- ``ListenerChannel`` / ``DialChannel``: the connect pattern, which measures setting connections up. The server
  keeps the listening socket itself (``accept()``), the client gets a ``dial()`` that opens a fresh connection.

Sockets stay blocking: a message whose first bytes arrived is completed with a blocking read from the same
connection (its producer wrote the whole message with one sendall), which keeps the hot path one poll per batch
plus one recv_into per message.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable, Sequence

from .base import Channel
from .channels import _fill


class MultiStreamChannel(Channel):
    """Receive-only endpoint over several connected stream sockets (one per producer)."""

    def __init__(self, socks: Sequence[socket.socket]) -> None:
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
                        raise EOFError("every producer closed its connection")
                    events = select(self._timeout)
                    if not events:
                        raise TimeoutError("no message before the receive timeout")
                    ready.extend(key.fileobj for key, _ in events)  # type: ignore[misc]
                sock = ready.pop()
                n = sock.recv_into(buf)
                if n == len(buf):
                    return n
                if n == 0 and len(buf):  # this producer has gone; the others may still be sending
                    self._selector.unregister(sock)
                    self._open -= 1
                    continue
                return _fill(sock.recv_into, buf, n)

        self.recv_into = recv_into  # type: ignore[method-assign]

    def send(self, msg: memoryview) -> None:
        raise OSError("a fan-in server endpoint only receives")

    def recv_into(self, buf: memoryview) -> int:  # replaced per instance
        raise NotImplementedError

    def set_timeout(self, seconds: float | None) -> None:
        self._timeout = seconds

    def close(self) -> None:
        self._selector.close()
        for sock in self.socks:
            sock.close()


class ListenerChannel(Channel):
    """The server of the connect pattern: the listening socket; ``accept()`` returns a connected socket."""

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
    """The client of the connect pattern: ``dial()`` opens one new connection to the server per call."""

    def __init__(self, family: int, address: str | tuple[str, int]) -> None:
        def dial() -> socket.socket:
            sock = socket.socket(family, socket.SOCK_STREAM)
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
