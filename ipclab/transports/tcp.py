"""tcp: loopback TCP connections with TCP_NODELAY; the kernel picks the port (no fixed ports).

One client: one connection. Several writers: the server accepts one connection per client and reads them all.
A connection per iteration: the server gets the listening socket itself and the client a dialer, because that
workload measures setting connections up (sockets.py).

The parent binds every client's socket too, so the server accepts our clients' addresses only: another local user
connecting to the port first is refused, never read, and reported (``foreign``), before anything is timed. Across
hosts the same holds when the clients run here (the default); with ``--reverse`` the clients on the other host bind
their own sockets, and the server here takes the first connections.

Across hosts (ipclab.engine.remote): the server listens on its own host's address, never a wildcard. When the
server runs on the other host, it makes its listener there (``bind_remote``) and reports the port; when it runs
here (``--reverse``), the parent's listener binds this host's address on the route to the other host.
"""

from __future__ import annotations

import socket
from typing import Any

from .sockets import HOST, ListeningTransport, bound_socket, loopback_socket, remote_listener


class TcpTransport(ListeningTransport):
    name = "tcp"
    summary = "TCP over loopback (127.0.0.1), TCP_NODELAY, kernel-chosen port"
    order = 30
    shared_kernel = False  # TCP reaches other hosts
    family = socket.AF_INET
    bind_host: str | None = None  # across hosts: this host's address the parent's listener binds

    def _listener(self) -> tuple[socket.socket, dict[str, Any]]:
        if self.bind_host is not None:
            sock = bound_socket(self.ledger, self.bind_host)
            return sock, {"host": self.bind_host, "port": sock.getsockname()[1]}
        sock = loopback_socket(self.ledger)
        return sock, {"host": HOST, "port": sock.getsockname()[1]}

    @classmethod
    def _target(cls, address: dict[str, Any]) -> Any:
        return (address["host"], address["port"])

    @classmethod
    def _prepare(cls, sock: socket.socket, address: dict[str, Any]) -> None:
        # Nagle would hold small messages back waiting for an ACK: a round trip would measure the delayed-ACK timer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- across hosts (ipclab.engine.remote) ---------------------------------------------------------------------
    def setup_remote(self, remote_roles: frozenset[str], here: str, there: str) -> dict[str, Any]:
        """This host's side only: the listener when the server runs here, else nothing but the address."""
        if "server" not in remote_roles:
            self.bind_host = here
            return self.setup()
        mode = "listener" if self.spec.shape.dials else "connected"
        address = {"host": there, "port": 0, "clients": self.spec.clients, "mode": mode, "empty": self.spec.size == 0}
        if mode == "connected":  # the clients run here: bound here, so the server there accepts them only
            self.bind_clients(address, lambda i: bound_socket(self.ledger, here))
        return address

    @classmethod
    def bind_remote(cls, address: dict[str, Any], role: str, index: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
        """On the other host: the server's listener on ``address["host"]``; a client needs nothing made there."""
        if role != "server":
            return {}, {}
        fd, port = remote_listener(address["host"], address.get("clients", 1))
        return {"listen_fd": fd}, {"port": port}
