"""udp: two connected loopback UDP sockets; loss, reordering and duplicates are counted, not fatal."""

from __future__ import annotations

import socket
from typing import Any

from .base import Channel, Transport
from .channels import DatagramSocketChannel

HOST = "127.0.0.1"
UDP_MAX = 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header)


class UdpTransport(Transport):
    name = "udp"
    summary = "UDP over loopback (127.0.0.1), one datagram per message"
    reliable = False
    ordered = False
    boundaries = True
    empty_ok = True
    max_message = UDP_MAX
    multi_writer = True

    @classmethod
    def limit_reason(cls, size: int) -> str:
        return f"a UDP datagram carries at most {UDP_MAX} bytes (IPv4 limit); {size} is larger"

    def setup(self) -> dict[str, Any]:
        server = self.own_socket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        server.bind((HOST, 0))
        clients = []
        for _ in range(self.spec.clients):
            client = self.own_socket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            client.bind((HOST, 0))
            client.connect(server.getsockname())
            clients.append(client)
        if self.spec.clients == 1:
            # Connected on both ends: each socket only accepts datagrams from its peer.
            server.connect(clients[0].getsockname())
        self._fds = {"server": (server.fileno(),)}
        for i, client in enumerate(clients):
            self._fds[f"client{i}"] = (client.fileno(),)
        return {"server_fd": server.fileno(), "client_fds": [c.fileno() for c in clients]}

    def fds_for(self, role: str, index: int = 0) -> tuple[int, ...]:
        return self._fds["server"] if role == "server" else self._fds[f"client{index}"]

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        fd = address["server_fd"] if role == "server" else address["client_fds"][index]
        return DatagramSocketChannel(socket.socket(fileno=fd))
