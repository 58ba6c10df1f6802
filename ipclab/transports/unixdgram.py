"""unix-dgram: AF_UNIX SOCK_DGRAM sockets bound in the run's private 0700 directory (socket files 0600).

One datagram per message: boundaries are kept and an empty datagram is a valid (empty) message. Unlike UDP,
the kernel never drops a local datagram: a sender whose peer's receive queue is full (net.unix.max_dgram_qlen)
blocks until there is room, so the transport is reliable and ordered.

Size limit: the kernel refuses (EMSGSIZE) a datagram larger than the sender's send buffer minus a small
overhead (``len > sk_sndbuf - 32`` in unix_dgram_sendmsg). The default send buffer is net.core.wmem_default,
so the limit is measured once per process, by sending datagrams of decreasing size (binary search) over a
fresh socketpair with the same defaults the transport uses: no guessing the kernel's formula.

Every client socket is bound to its own file (a reply needs an address to go to) and connected to the server.
With one client the server is connected back to it, so each socket accepts datagrams from its peer only;
with several (fan-in) the server stays unconnected and receives from all of them.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
from typing import Any

from ..config import format_size
from .base import Channel, Transport
from .channels import DatagramSocketChannel

PROBE_CEILING = 1 << 26  # 64 MiB: no default send buffer is anywhere near this


@functools.lru_cache(maxsize=1)
def measured_limit() -> tuple[int, int]:
    """(largest datagram this kernel accepts on a default AF_UNIX socket, that socket's SO_SNDBUF)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        sndbuf = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        b.setblocking(False)

        def fits(n: int) -> bool:
            try:
                a.send(bytes(n), socket.MSG_DONTWAIT)  # the queue is empty: only EMSGSIZE can refuse it
            except OSError:
                return False
            b.recv(n + 1)
            return True

        lo, hi = 0, min(PROBE_CEILING, 2 * sndbuf)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
    return lo, sndbuf


class UnixDgramTransport(Transport):
    name = "unix-dgram"
    summary = "AF_UNIX SOCK_DGRAM sockets in a private 0700 directory, one datagram per message"
    boundaries = True
    empty_ok = True
    multi_writer = True

    @classmethod
    def limit(cls) -> int | None:
        return measured_limit()[0]

    @classmethod
    def limit_reason(cls, size: int) -> str:
        limit, sndbuf = measured_limit()
        return (f"{format_size(size)} exceeds the unix-dgram limit of {limit} bytes (a datagram must fit in the "
                f"sender's SO_SNDBUF of {sndbuf} B; raise net.core.wmem_default)")

    def setup(self) -> dict[str, Any]:
        tag = secrets.token_hex(4)
        server_path = os.path.join(self.workdir, f"ipclab-{tag}.srv.dsock")
        server = self._bound(server_path)
        clients = []
        for i in range(self.spec.clients):
            client = self._bound(os.path.join(self.workdir, f"ipclab-{tag}.c{i}.dsock"))
            client.connect(server_path)
            clients.append(client)
        if len(clients) == 1:
            server.connect(self._paths[-1])
        self._fds = {"server": (server.fileno(),)}
        for i, client in enumerate(clients):
            self._fds[f"client{i}"] = (client.fileno(),)
        return {"server_fd": server.fileno(), "client_fds": [c.fileno() for c in clients]}

    def _bound(self, path: str) -> socket.socket:
        sock = self.own_socket(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
        sock.bind(self.own_path(path))
        os.chmod(path, 0o600)  # the directory is 0700 already; the file says so too
        return sock

    def fds_for(self, role: str, index: int = 0) -> tuple[int, ...]:
        return self._fds["server"] if role == "server" else self._fds[f"client{index}"]

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        fd = address["server_fd"] if role == "server" else address["client_fds"][index]
        return DatagramSocketChannel(socket.socket(fileno=fd))
