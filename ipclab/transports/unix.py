"""unix: an AF_UNIX stream socket whose file lives in the run's private 0700 directory."""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from .base import Channel, Transport
from .channels import StreamSocketChannel


class UnixTransport(Transport):
    name = "unix"
    summary = "AF_UNIX SOCK_STREAM socket in a private 0700 directory"

    def setup(self) -> dict[str, Any]:
        self.path = os.path.join(self.workdir, f"ipclab-{secrets.token_hex(4)}.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(self.path)
            os.chmod(self.path, 0o600)
            listener.listen(self.spec.clients)
            fd = listener.detach()  # now owned by _parent_fds, closed by close_parent_fds
        self._parent_fds.append(fd)
        self._fds = {"server": (fd,)}
        return {"path": self.path, "listen_fd": fd}

    def teardown(self) -> None:
        super().teardown()
        path = getattr(self, "path", None)
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        if role == "server":
            listener = socket.socket(fileno=address["listen_fd"])
            conn, _ = listener.accept()
            listener.close()
            return StreamSocketChannel(conn)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address["path"])
        return StreamSocketChannel(sock)
