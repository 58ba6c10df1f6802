"""unix-seqpacket: AF_UNIX SOCK_SEQPACKET connections, a socket file in the run's private 0700 directory (0600).

A connection like unix's (listen, accept, one connection per client, reliable and ordered) that keeps message
boundaries like unix-dgram's: one send is one record, and one recv returns exactly one record. Several writers
each get their own connection and the server reads them all.

Size limit: the kernel sends a record through the same path as a datagram (unix_seqpacket_sendmsg calls
unix_dgram_sendmsg), so a record must fit in the sender's SO_SNDBUF minus a small overhead; it is measured on this
kernel exactly as unix-dgram's is (limits.py).

Empty messages: recv(2) returns 0 both for an empty record and at end of connection. With SO_PASSCRED set on
the receiving socket every record carries its sender's credentials (SCM_CREDENTIALS) and the end of the
connection carries none, so an empty record is received with recvmsg and told from EOF by that ancillary data.
Only cells of empty messages pay for it: the option is set (in connect, before any message can be sent) only
when the messages are empty.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

from .base import Channel
from .channels import SocketChannel, _whole
from .limits import SndbufLimited
from .sockets import ListeningTransport, unix_socket

CRED_SPACE = socket.CMSG_SPACE(struct.calcsize("3i"))  # struct ucred: pid, uid, gid


class UnixSeqpacketTransport(SndbufLimited, ListeningTransport):
    name = "unix-seqpacket"
    summary = "AF_UNIX SOCK_SEQPACKET connections in a private 0700 directory, one record per message"
    order = 95
    boundaries = True
    empty_ok = True
    dials = False  # it could dial, but a connection per iteration is measured on the stream transports
    family = socket.AF_UNIX
    kind = socket.SOCK_SEQPACKET
    sock_type = socket.SOCK_SEQPACKET  # for the measured limit

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not hasattr(socket, "SO_PASSCRED"):
            return "SO_PASSCRED is not available on this platform (Linux only)"
        return None

    def _listener(self) -> tuple[socket.socket, dict[str, Any]]:
        sock = unix_socket(self.ledger, self.workdir, ".qsock", socket.SOCK_SEQPACKET)
        return sock, {"path": sock.getsockname()}

    @classmethod
    def _target(cls, address: dict[str, Any]) -> Any:
        return address["path"]

    @classmethod
    def _prepare(cls, sock: socket.socket, address: dict[str, Any]) -> None:
        if address.get("empty"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    @classmethod
    def _channel(cls, sock: socket.socket, address: dict[str, Any]) -> Channel:
        return SeqpacketChannel(sock, empty=bool(address.get("empty")))


class SeqpacketChannel(SocketChannel):
    """A connected SOCK_SEQPACKET socket: one record per message; EOFError when the peer has closed.

    ``empty``: the cell's messages are empty (the socket has SO_PASSCRED): the hot loops get the receiver that
    waits for an empty record, since a raw recv into an empty buffer returns 0 at once.
    """

    has_raw_io = True

    def __init__(self, sock: socket.socket, empty: bool = False) -> None:
        super().__init__(sock)
        self.send = sock.send  # type: ignore[method-assign,assignment]  # one record; returns its size
        readinto = sock.recv_into
        recv_empty = _empty_record_receiver(sock)

        def recv_into(buf: memoryview) -> int:
            try:
                if not len(buf):
                    return recv_empty()
                n = readinto(buf)
            except BlockingIOError:  # SO_RCVTIMEO expired (set_timeout)
                raise TimeoutError("no message before the receive timeout") from None
            if n:
                return n
            raise EOFError("peer closed the connection")

        def finish_recv(buf: memoryview, n: int) -> None:
            if not n:
                raise EOFError("peer closed the connection")

        self.recv_into = recv_into  # type: ignore[method-assign]
        # Hot loops: the raw recv_into of a non-empty record, and EOF (0) raised by the completion.
        self.raw_io = (sock.send, recv_into if empty else readinto, _whole, finish_recv)


def _empty_record_receiver(sock: socket.socket) -> Callable[[], int]:
    """Receive one empty record, telling it from EOF by its credentials (SO_PASSCRED: see the module docstring)."""
    recvmsg_into = sock.recvmsg_into
    scratch = [memoryview(bytearray(1))]
    trunc = socket.MSG_TRUNC

    def recv_empty() -> int:
        n, ancillary, _, _ = recvmsg_into(scratch, CRED_SPACE, trunc)
        if not ancillary:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED):
                raise OSError("an empty record needs SO_PASSCRED on the receiving socket (address['empty'])")
            raise EOFError("peer closed the connection")
        if n:
            raise ValueError(f"a {n}-byte message arrived where an empty message was due")
        return 0

    return recv_empty
