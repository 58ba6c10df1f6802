"""unix: an AF_UNIX stream socket whose file lives in the run's private 0700 directory.

One client: one connection. Several clients (fan-in): the server accepts one connection per client and reads
them all (MultiStreamChannel). The connect pattern gets the listening socket itself and a dialer.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from .base import Channel, Transport
from .channels import StreamSocketChannel
from .multistream import DialChannel, ListenerChannel, MultiStreamChannel

BACKLOG = 128  # the connect pattern dials in a tight loop; fan-in connects all producers at once


class UnixTransport(Transport):
    name = "unix"
    summary = "AF_UNIX SOCK_STREAM socket in a private 0700 directory"
    multi_writer = True
    dials = True  # the connect pattern can open a new connection per iteration

    def setup(self) -> dict[str, Any]:
        self.path = self.own_path(os.path.join(self.workdir, f"ipclab-{secrets.token_hex(4)}.sock"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(self.path)
            os.chmod(self.path, 0o600)
            listener.listen(max(BACKLOG, self.spec.clients))
            fd = listener.detach()  # now owned by _parent_fds, closed by close_parent_fds
        self._parent_fds.append(fd)
        self._fds = {"server": (fd,)}
        mode = "listener" if self.spec.pattern == "connect" else "connected"
        return {"path": self.path, "listen_fd": fd, "clients": self.spec.clients, "mode": mode}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        listening = address.get("mode") == "listener"
        if role == "server":
            listener = socket.socket(fileno=address["listen_fd"])
            if listening:
                return ListenerChannel(listener)
            socks = [listener.accept()[0] for _ in range(address.get("clients", 1))]
            listener.close()
            return StreamSocketChannel(socks[0]) if len(socks) == 1 else MultiStreamChannel(socks)
        if listening:
            return DialChannel(socket.AF_UNIX, address["path"])
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address["path"])
        return StreamSocketChannel(sock)
