"""tcp: a loopback TCP connection with TCP_NODELAY; the kernel picks the port (no fixed ports)."""

from __future__ import annotations

import socket
from typing import Any

from .base import Channel, Transport
from .channels import StreamSocketChannel

HOST = "127.0.0.1"


class TcpTransport(Transport):
    name = "tcp"
    summary = "TCP over loopback (127.0.0.1), TCP_NODELAY, kernel-chosen port"

    def setup(self) -> dict[str, Any]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind((HOST, 0))
            listener.listen(self.spec.clients)
            port = listener.getsockname()[1]
            fd = listener.detach()  # now owned by _parent_fds, closed by close_parent_fds
        self._parent_fds.append(fd)
        self._fds = {"server": (fd,)}
        return {"host": HOST, "port": port, "listen_fd": fd}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        if role == "server":
            listener = socket.socket(fileno=address["listen_fd"])
            sock, _ = listener.accept()
            listener.close()
        else:
            sock = socket.create_connection((address["host"], address["port"]))
        # Nagle would hold small messages back waiting for an ACK: ping-pong would measure the delayed-ACK timer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return StreamSocketChannel(sock)
