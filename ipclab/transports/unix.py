"""unix: an AF_UNIX SOCK_STREAM socket whose file lives in the run's private 0700 directory (mode 0600).

One client: one connection. Several writers: the server accepts one connection per client and reads them all.
A connection per iteration: the server gets the listening socket itself and the client a dialer (sockets.py).
"""

from __future__ import annotations

import socket
from typing import Any

from .sockets import ListeningTransport, unix_socket


class UnixTransport(ListeningTransport):
    name = "unix"
    summary = "AF_UNIX SOCK_STREAM socket in a private 0700 directory"
    order = 20
    family = socket.AF_UNIX

    def _listener(self) -> tuple[socket.socket, dict[str, Any]]:
        sock = unix_socket(self.ledger, self.workdir, ".sock")
        return sock, {"path": sock.getsockname()}

    @classmethod
    def _target(cls, address: dict[str, Any]) -> Any:
        return address["path"]
