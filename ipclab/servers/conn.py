"""What the event loop and the services share: the server's settings, one client connection, the service contract.

A connection keeps three clocks, because "idle" alone is not a bound a hostile client has to respect:

- ``last``: the last byte moved either way (the --idle-timeout of an ordinary quiet client);
- ``accepted``: when it was accepted. A service that answers one request (``request_deadline``) needs the whole
  request within --idle-timeout of the accept, however the bytes trickle in (slowloris);
- ``out_since``: since when output has been waiting without any of it being taken. A client that keeps sending
  but never reads its replies is dropped after --idle-timeout, whatever it sends.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Protocol


class Stop(Exception):
    """SIGINT/SIGTERM: leave the loop; the exit status is 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class ServerConfig:
    service: str  # echo | time | file
    kind: str  # tcp | udp | unix
    host: str = "127.0.0.1"
    port: int = 0
    family: int = socket.AF_INET
    path: str | None = None  # --unix
    root: str | None = None  # --root (file)
    max_clients: int = 64
    idle_timeout: float = 30.0
    max_request: int = 1024
    quiet: bool = False


class Conn:
    """One connected client: its socket, what is queued for it, and the service's per-client state."""

    __slots__ = ("sock", "peer", "out", "file_fd", "file_off", "file_left", "closing", "eof", "last", "mask",
                 "inbuf", "done", "lingering", "counted", "accepted", "out_since")

    def __init__(self, sock: socket.socket, peer: str, counted: bool = True) -> None:
        self.sock = sock
        self.peer = peer
        self.out = bytearray()
        self.file_fd = -1
        self.file_off = 0
        self.file_left = 0
        self.closing = False  # close once everything queued has been sent
        self.eof = False  # the client shut its sending side
        self.accepted = self.last = self.out_since = time.monotonic()
        self.mask = 0
        self.inbuf = bytearray()  # request bytes so far (file server)
        self.done = False  # the request was answered; later bytes are discarded
        self.lingering = False  # our side is shut; waiting for the client to close
        self.counted = counted  # counts against --max-clients (a "busy" reply does not)

    def write(self, data: bytes) -> None:
        if not self.pending():  # output starts waiting now: the client has --idle-timeout to take some
            self.out_since = time.monotonic()
        self.out += data

    def send_file(self, fd: int, length: int) -> None:
        """Queue ``length`` bytes of the open file ``fd`` after the buffered output (the fd is closed after)."""
        if not self.pending():
            self.out_since = time.monotonic()
        self.file_fd, self.file_off, self.file_left = fd, 0, length
        if not length:
            self._close_file()

    def finish(self) -> None:
        self.closing = True

    def pending(self) -> bool:
        return bool(self.out) or self.file_left > 0

    def _close_file(self) -> None:
        if self.file_fd >= 0:
            os.close(self.file_fd)
        self.file_fd, self.file_left = -1, 0


class Service(Protocol):
    name: str
    # True: the client sends one request and the service answers it (file); the whole request must arrive
    # within --idle-timeout of the accept. False: a conversation (echo), bounded by progress instead.
    request_deadline: bool

    def on_connect(self, conn: Conn) -> None: ...
    def on_data(self, conn: Conn, data: bytes) -> None: ...
    def on_eof(self, conn: Conn) -> None: ...
    def on_datagram(self, data: bytes) -> bytes | None: ...
    def busy(self, limit: int) -> bytes: ...  # what a client over --max-clients (``limit``) reads
