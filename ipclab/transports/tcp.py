"""tcp: loopback TCP connections with TCP_NODELAY; the kernel picks the port (no fixed ports).

One client: one connection. Several writers: the server accepts one connection per client and reads them all.
A connection per iteration: the server gets the listening socket itself and the client a dialer, because that
workload measures setting connections up (sockets.py). The parent binds every client's socket too, so the server
accepts our clients' addresses only: another local user connecting to the port first is refused, never read,
and reported (``foreign``), before anything is timed.
"""

from __future__ import annotations

import socket
from typing import Any

from .sockets import HOST, ListeningTransport, loopback_socket


class TcpTransport(ListeningTransport):
    name = "tcp"
    summary = "TCP over loopback (127.0.0.1), TCP_NODELAY, kernel-chosen port"
    order = 30
    shared_kernel = False  # TCP reaches other hosts
    family = socket.AF_INET

    def _listener(self) -> tuple[socket.socket, dict[str, Any]]:
        sock = loopback_socket(self.ledger)
        return sock, {"host": HOST, "port": sock.getsockname()[1]}

    @classmethod
    def _target(cls, address: dict[str, Any]) -> Any:
        return (address["host"], address["port"])

    @classmethod
    def _prepare(cls, sock: socket.socket, address: dict[str, Any]) -> None:
        # Nagle would hold small messages back waiting for an ACK: a round trip would measure the delayed-ACK timer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
