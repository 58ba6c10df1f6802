"""The parent side shared by the socket transports: bound sockets owned by the ledger, and two bases.

- ``unix_socket`` / ``loopback_socket``: a new socket registered in the ledger and bound, to a 0600 file in the
  private 0700 directory or to a kernel-chosen loopback port (never a fixed one).
- :class:`ListeningTransport` (unix, tcp, unix-seqpacket): the parent binds and listens before any worker
  starts, so clients may reach it at once and no address is ever guessed; the server inherits the listening
  socket by fd. One client: one connection. Several writers: the server accepts one connection per client and
  reads them all (MultiStreamChannel). Peers are authenticated before anything is timed: the parent also makes
  and binds every client's socket, so the server knows each client's address and accepts only those; any other
  connection (another local user polling the port) is closed at once, never read, and counted in ``foreign``.
  A connection per iteration: the server gets the listening socket itself (ListenerChannel), the client a
  dialer (DialChannel); those connections are not authenticated (a check per connection would be timed).
  zmq-ipc and zmq-tcp bind their listener the same way.
- :class:`DatagramTransport` (udp, unix-dgram): one socket per end, made and bound by the parent. Every client
  socket is bound (a reply needs an address to go to) and connected to the server. With one client the server
  is connected back to it, so each socket accepts datagrams from its peer only; with several writers the server
  stays unconnected and receives from all of them; a network one (udp) keeps only datagrams whose source is one
  of our clients (PeerFilteredChannel: a foreign datagram is counted in ``foreign``, never as a message). The
  workers inherit their socket by fd.
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

    def _client_socket(self, index: int) -> socket.socket:
        """Client ``index``'s socket, bound by the parent so that the server knows whom to accept."""
        if self.family == socket.AF_UNIX:
            return unix_socket(self.ledger, self.workdir, f".c{index}.sock", self.kind)
        return loopback_socket(self.ledger, self.kind)

    def setup(self) -> dict[str, Any]:
        listener, where = self._listener()
        listener.listen(max(BACKLOG, self.spec.clients))
        self.pass_fds("server", listener)
        mode = "listener" if self.spec.shape.dials else "connected"
        address = {**where, "listen_fd": listener.fileno(), "clients": self.spec.clients, "mode": mode,
                   "empty": self.spec.size == 0}
        if mode == "connected" and getattr(self, "bind_host", None) is None:  # clients here: bind them for the server
            self.bind_clients(address, self._client_socket)
        return address

    def bind_clients(self, address: dict[str, Any], make: Any) -> None:
        """Make and bind every client's socket here (handed to the client workers), so the server knows whom to
        accept: ``address["peers"]``. Across hosts with the clients on the other host (``--reverse``) no socket can
        be handed over; the server then accepts the first connections (see the module docstring)."""
        clients = [make(i) for i in range(self.spec.clients)]
        for i, client in enumerate(clients):
            self.pass_fds("client", client, index=i)
        address["client_fds"] = [c.fileno() for c in clients]
        address["peers"] = [c.getsockname() for c in clients]

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        listening = address.get("mode") == "listener"
        if role == "server":
            listener = socket.socket(fileno=address["listen_fd"])
            if listening:
                return ListenerChannel(listener)
            with listener:
                socks, foreign = accept_peers(listener, address.get("peers"), address.get("clients", 1))
            for sock in socks:
                cls._prepare(sock, address)
            channel = (cls._channel(socks[0], address) if len(socks) == 1
                       else MultiStreamChannel(socks, whole_messages=cls.boundaries))
            channel.foreign = foreign
            return channel
        if listening:
            return DialChannel(cls.family, cls._target(address), cls.kind)
        if "client_fds" in address:  # bound by the parent: the server expects it
            sock = socket.socket(fileno=address["client_fds"][index])
        else:  # a client on the other host of a --reverse run: nothing could be handed over
            sock = socket.socket(cls.family, cls.kind)
        try:
            cls._prepare(sock, address)
            sock.connect(cls._target(address))
        except BaseException:
            sock.close()
            raise
        return cls._channel(sock, address)


def _peer(name: Any) -> Any:
    """A socket address as getpeername/recvfrom give it (JSON turned the (host, port) tuple into a list)."""
    return tuple(name) if isinstance(name, list) else name


def accept_peers(listener: socket.socket, peers: list[Any] | None,
                 clients: int = 1) -> tuple[list[socket.socket], int]:
    """Accept one connection from each address in ``peers`` (in that order), and the number of others refused.

    Anyone else who connects first (another local user polling the port) is closed at once and never read: it can
    neither take a client's place nor make the cell fail. The server's setup budget bounds the wait. Without
    ``peers`` (clients on another host that bound their own sockets) the first ``clients`` connections are taken.
    """
    if peers is None:
        return [listener.accept()[0] for _ in range(clients)], 0
    wanted = {_peer(p): i for i, p in enumerate(peers)}
    socks: list[socket.socket | None] = [None] * len(peers)
    foreign = 0
    while None in socks:
        sock, source = listener.accept()
        i = wanted.pop(_peer(source), None)
        if i is None:
            sock.close()
            foreign += 1
            continue
        socks[i] = sock
    return [s for s in socks if s is not None], foreign


class PeerFilteredChannel(DatagramSocketChannel):
    """An unconnected datagram socket (the reader of several writers) that keeps only datagrams from ``peers``.

    recvfrom_into names each datagram's source: one from anyone else is dropped and counted in ``foreign``,
    never delivered as a message. The price is one small address tuple per datagram, on this endpoint only.
    """

    def __init__(self, sock: socket.socket, peers: list[Any]) -> None:
        super().__init__(sock)
        wanted = frozenset(_peer(p) for p in peers)
        recvfrom_into = sock.recvfrom_into
        scratch = bytearray(1)
        trunc = socket.MSG_TRUNC

        def recv_into(buf: memoryview) -> int:
            try:
                while True:
                    if len(buf):
                        n, source = recvfrom_into(buf)
                    else:  # see DatagramSocketChannel: an empty datagram needs a scratch byte and MSG_TRUNC
                        n, source = recvfrom_into(scratch, 0, trunc)
                        if n:
                            raise ValueError(f"a {n}-byte datagram arrived where an empty message was due")
                    if source in wanted:
                        return n
                    self.foreign += 1
            except BlockingIOError:  # SO_RCVTIMEO expired (set_timeout)
                raise TimeoutError("no datagram before the receive timeout") from None

        self.recv_into = recv_into  # type: ignore[method-assign]
        self.raw_io = (sock.send, recv_into, self.raw_io[2], self.raw_io[3])


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
        return {"server_fd": server.fileno(), "client_fds": [c.fileno() for c in clients],
                "peers": [c.getsockname() for c in clients]}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        fd = address["server_fd"] if role == "server" else address["client_fds"][index]
        sock = socket.socket(fileno=fd)
        # Unconnected, a network socket takes datagrams from anyone; an AF_UNIX one lives in the private 0700
        # directory, where no other user can reach it (and a path per datagram would cost its reader 15 %).
        if role == "server" and len(address["client_fds"]) > 1 and sock.family != socket.AF_UNIX:
            return PeerFilteredChannel(sock, address["peers"])
        return DatagramSocketChannel(sock)
