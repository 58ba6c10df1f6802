"""The parent side shared by the socket transports: bound sockets owned by the ledger, and two bases.

- ``unix_socket`` / ``loopback_socket``: a new socket registered in the ledger and bound, to a 0600 file in the
  private 0700 directory or to a kernel-chosen loopback port (never a fixed one).
- :class:`ListeningTransport` (unix, tcp, unix-seqpacket): the parent binds and listens before any worker
  starts, so clients may reach it at once and no address is ever guessed; the server inherits the listening
  socket by fd. One client: one connection. Several writers: the server accepts one connection per client and
  reads them all (MultiStreamChannel). A connection per iteration: the server gets the listening socket itself
  (ListenerChannel), the client a dialer (DialChannel). zmq-ipc and zmq-tcp bind their listener the same way.
- :class:`DatagramTransport` (udp, unix-dgram): one socket per end, made and bound by the parent. Every client
  socket is bound (a reply needs an address to go to) and connected to the server. With one client the server
  is connected back to it, so each socket accepts datagrams from its peer only; with several writers the server
  stays unconnected and receives from all of them. The workers inherit their socket by fd.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any, ClassVar

from .base import Channel, MessageTransport, Transport
from .channels import DatagramSocketChannel, StreamSocketChannel
from .ledger import Ledger
from .multistream import DialChannel, ListenerChannel, MultiStreamChannel

HOST = "127.0.0.1"
BACKLOG = 128  # a client dialling per iteration comes in a tight loop; several writers arrive all at once


def unix_socket(ledger: Ledger, workdir: str, suffix: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """An AF_UNIX socket bound to a new 0600 file "ipclab-<random><suffix>" in ``workdir`` (both in the ledger)."""
    path = ledger.path(os.path.join(workdir, f"ipclab-{secrets.token_hex(4)}{suffix}"))
    sock = ledger.socket(socket.socket(socket.AF_UNIX, kind))
    sock.bind(path)
    os.chmod(path, 0o600)  # the directory is 0700 already; the file says so too
    return sock


def loopback_socket(ledger: Ledger, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """An AF_INET socket bound to a kernel-chosen port on 127.0.0.1 (in the ledger)."""
    sock = ledger.socket(socket.socket(socket.AF_INET, kind))
    sock.bind((HOST, 0))
    return sock


def bound_socket(ledger: Ledger, host: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """An AF_INET socket bound to a kernel-chosen port on ``host`` (in the ledger): this host's address on the
    route to another host, for a run across hosts (ipclab.engine.remote); never a wildcard."""
    sock = ledger.socket(socket.socket(socket.AF_INET, kind))
    sock.bind((host, 0))
    return sock


def remote_listener(host: str, backlog: int) -> tuple[int, int]:
    """On the other host of a run across hosts: a TCP socket listening on ``host`` (a kernel-chosen port), as
    (fd, port). The worker that made it owns the fd; it ends with that worker's process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(max(BACKLOG, backlog))
        port = sock.getsockname()[1]
    except BaseException:
        sock.close()
        raise
    return sock.detach(), port


class ListeningTransport(Transport):
    """Parent side and ``connect`` shared by the connection transports; subclasses say how to bind and reach."""

    multi_writer = True  # one connection per client
    dials = True
    family: ClassVar[int]
    kind: ClassVar[int] = socket.SOCK_STREAM

    def _listener(self) -> tuple[socket.socket, dict[str, Any]]:
        """A bound socket (unix_socket, loopback_socket) and the address fields a client needs to reach it."""
        raise NotImplementedError

    @classmethod
    def _target(cls, address: dict[str, Any]) -> Any:
        """What a client connects to (a path, a (host, port) pair)."""
        raise NotImplementedError

    @classmethod
    def _prepare(cls, sock: socket.socket, address: dict[str, Any]) -> None:
        """Options for a connected socket, on either side (TCP_NODELAY...)."""

    @classmethod
    def _channel(cls, sock: socket.socket, address: dict[str, Any]) -> Channel:
        return StreamSocketChannel(sock)

    def setup(self) -> dict[str, Any]:
        listener, where = self._listener()
        listener.listen(max(BACKLOG, self.spec.clients))
        self.pass_fds("server", listener)
        mode = "listener" if self.spec.shape.dials else "connected"
        return {**where, "listen_fd": listener.fileno(), "clients": self.spec.clients, "mode": mode,
                "empty": self.spec.size == 0}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        listening = address.get("mode") == "listener"
        if role == "server":
            listener = socket.socket(fileno=address["listen_fd"])
            if listening:
                return ListenerChannel(listener)
            with listener:
                socks = [listener.accept()[0] for _ in range(address.get("clients", 1))]
            for sock in socks:
                cls._prepare(sock, address)
            if len(socks) == 1:
                return cls._channel(socks[0], address)
            return MultiStreamChannel(socks, whole_messages=cls.boundaries)
        if listening:
            return DialChannel(cls.family, cls._target(address), cls.kind)
        sock = socket.socket(cls.family, cls.kind)
        try:
            cls._prepare(sock, address)
            sock.connect(cls._target(address))
        except BaseException:
            sock.close()
            raise
        return cls._channel(sock, address)


class DatagramTransport(MessageTransport):
    """Subclasses say how one end's socket is made and bound (``_bound``); the rest is shared."""

    def _bound(self, tag: str) -> socket.socket:
        """A new bound datagram socket (unix_socket, loopback_socket); ``tag`` names the end ("srv", "c0"...)."""
        raise NotImplementedError

    def setup(self) -> dict[str, Any]:
        server = self._bound("srv")
        clients = []
        for i in range(self.spec.clients):
            client = self._bound(f"c{i}")
            client.connect(server.getsockname())
            clients.append(client)
            self.pass_fds("client", client, index=i)
        if len(clients) == 1:
            server.connect(clients[0].getsockname())  # both ends connected: each accepts its peer only
        self.pass_fds("server", server)
        return {"server_fd": server.fileno(), "client_fds": [c.fileno() for c in clients]}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        fd = address["server_fd"] if role == "server" else address["client_fds"][index]
        return DatagramSocketChannel(socket.socket(fileno=fd))
