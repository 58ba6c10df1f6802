"""unix-dgram: AF_UNIX SOCK_DGRAM sockets bound in the run's private 0700 directory (socket files 0600).

One datagram per message: boundaries are kept and an empty datagram is a valid (empty) message. Unlike UDP,
the kernel never drops a local datagram: a sender whose peer's receive queue is full (net.unix.max_dgram_qlen)
blocks until there is room, so the transport is reliable and ordered.

Size limit: the kernel refuses (EMSGSIZE) a datagram larger than the sender's send buffer minus a small
overhead, measured once per process on this kernel (limits.py, shared with unix-seqpacket).

Sockets and their connections: sockets.py (every end bound to its own file, since a reply needs an address).
"""

from __future__ import annotations

import socket

from .limits import SndbufLimited
from .sockets import DatagramTransport, unix_socket


class UnixDgramTransport(SndbufLimited, DatagramTransport):
    name = "unix-dgram"
    summary = "AF_UNIX SOCK_DGRAM sockets in a private 0700 directory, one datagram per message"
    order = 90
    sock_type = socket.SOCK_DGRAM

    def _bound(self, tag: str) -> socket.socket:
        return unix_socket(self.ledger, self.workdir, f".{tag}.dsock", socket.SOCK_DGRAM)
