"""tcp: loopback TCP connections with TCP_NODELAY; the kernel picks the port (no fixed ports).

One client: one connection. Several clients (fan-in): the server accepts one connection per client and reads
them all (MultiStreamChannel). The connect pattern gets the listening socket itself and a dialer, because it
measures setting connections up.
"""

from __future__ import annotations

import socket
from typing import Any

from .base import Channel, Transport
from .channels import StreamSocketChannel
from .multistream import DialChannel, ListenerChannel, MultiStreamChannel

HOST = "127.0.0.1"
BACKLOG = 128  # the connect pattern dials in a tight loop; fan-in connects all producers at once


class TcpTransport(Transport):
    name = "tcp"
    summary = "TCP over loopback (127.0.0.1), TCP_NODELAY, kernel-chosen port"
    multi_writer = True
    dials = True  # the connect pattern can open a new connection per iteration

    def setup(self) -> dict[str, Any]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind((HOST, 0))
            listener.listen(max(BACKLOG, self.spec.clients))
            port = listener.getsockname()[1]
            fd = listener.detach()  # now owned by _parent_fds, closed by close_parent_fds
        self._parent_fds.append(fd)
        self._fds = {"server": (fd,)}
        mode = "listener" if self.spec.pattern == "connect" else "connected"
        return {"host": HOST, "port": port, "listen_fd": fd, "clients": self.spec.clients, "mode": mode}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        listening = address.get("mode") == "listener"
        if role == "server":
            listener = socket.socket(fileno=address["listen_fd"])
            if listening:
                return ListenerChannel(listener)
            socks = [listener.accept()[0] for _ in range(address.get("clients", 1))]
            listener.close()
            for sock in socks:
                # Nagle would hold small messages back waiting for an ACK: ping-pong would measure the
                # delayed-ACK timer.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return StreamSocketChannel(socks[0]) if len(socks) == 1 else MultiStreamChannel(socks)
        if listening:
            return DialChannel(socket.AF_INET, (address["host"], address["port"]))
        sock = socket.create_connection((address["host"], address["port"]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return StreamSocketChannel(sock)
