"""udp: two connected loopback UDP sockets; loss, reordering and duplicates are counted, not fatal.

A connected socket takes datagrams from its peer only; the unconnected reader of several writers keeps only
those from our clients' addresses and reports any other (sockets.PeerFilteredChannel).

Across hosts (ipclab.engine.remote): each host makes its own ends, bound to its own address (never a wildcard).
The side that runs here is made by the parent (``setup_remote``), the other host's by its worker
(``bind_remote``), which reports its address (BOUND); every end is then connected to its peer, as on one host,
except a server of several writers, which stays unconnected.
"""

from __future__ import annotations

import socket
from typing import Any

from .base import Channel
from .sockets import DatagramTransport, bound_socket, loopback_socket

UDP_MAX = 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header)


class UdpTransport(DatagramTransport):
    name = "udp"
    summary = "UDP over loopback (127.0.0.1), one datagram per message"
    order = 40
    reliable = False
    ordered = False
    max_message = UDP_MAX
    shared_kernel = False  # UDP reaches other hosts
    bind_host: str | None = None  # across hosts: this host's address the parent's sockets bind

    @classmethod
    def limit_reason(cls, size: int) -> str:
        return f"a UDP datagram carries at most {UDP_MAX} bytes (IPv4 limit); {size} is larger"

    def _bound(self, tag: str) -> socket.socket:
        if self.bind_host is not None:
            return bound_socket(self.ledger, self.bind_host, socket.SOCK_DGRAM)
        return loopback_socket(self.ledger, socket.SOCK_DGRAM)

    # -- across hosts (ipclab.engine.remote) ---------------------------------------------------------------------
    def setup_remote(self, remote_roles: frozenset[str], here: str, there: str) -> dict[str, Any]:
        """The ends that run here, bound to ``here``; the other host's ends bind ``there`` in ``bind_remote``."""
        self.bind_host = here
        clients = self.spec.clients
        if "server" in remote_roles:
            ends = [self._bound(f"c{i}") for i in range(clients)]
            for i, end in enumerate(ends):
                self.pass_fds("client", end, index=i)
            return {"server_fd": None, "client_fds": [e.fileno() for e in ends], "clients": clients,
                    "server_host": there, "client_addrs": [list(e.getsockname()) for e in ends]}
        server = self._bound("srv")
        self.pass_fds("server", server)
        return {"server_fd": server.fileno(), "client_fds": [-1] * clients, "clients": clients,
                "client_host": there, "server_addr": list(server.getsockname())}

    @classmethod
    def bind_remote(cls, address: dict[str, Any], role: str, index: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
        """On the other host: this end's socket, bound there and connected to its peer where the peer is known."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if role == "server":
                sock.bind((address["server_host"], 0))
                if address["clients"] == 1:  # connected: it accepts datagrams from its one peer only
                    sock.connect(tuple(address["client_addrs"][0]))
                shared: dict[str, Any] = {"server_addr": list(sock.getsockname())}
            else:
                sock.bind((address["client_host"], 0))
                sock.connect(tuple(address["server_addr"]))
                shared = {f"client{index}_addr": list(sock.getsockname())}
        except BaseException:
            sock.close()
            raise
        if role == "server":
            return {"server_fd": sock.detach()}, shared
        fds = list(address["client_fds"])
        fds[index] = sock.detach()
        return {"client_fds": fds}, shared

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        channel = super().connect(address, role, index)
        peer = None  # across hosts, this host's end is connected once the other host has said where its end is
        if role == "server" and address.get("clients") == 1 and "client0_addr" in address:
            peer = address["client0_addr"]
        elif role != "server" and "server_addr" in address:
            peer = address["server_addr"]
        if peer is not None:
            try:
                channel.sock.connect(tuple(peer))  # type: ignore[attr-defined]
            except BaseException:
                channel.close()
                raise
        return channel
