"""udp: two connected loopback UDP sockets; loss, reordering and duplicates are counted, not fatal.

A connected socket takes datagrams from its peer only; the unconnected reader of several writers keeps only
those from our clients' addresses and reports any other (sockets.PeerFilteredChannel).
"""

from __future__ import annotations

import socket

from .sockets import DatagramTransport, loopback_socket

UDP_MAX = 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header)


class UdpTransport(DatagramTransport):
    name = "udp"
    summary = "UDP over loopback (127.0.0.1), one datagram per message"
    order = 40
    reliable = False
    ordered = False
    max_message = UDP_MAX
    shared_kernel = False  # UDP reaches other hosts

    @classmethod
    def limit_reason(cls, size: int) -> str:
        return f"a UDP datagram carries at most {UDP_MAX} bytes (IPv4 limit); {size} is larger"

    def _bound(self, tag: str) -> socket.socket:
        return loopback_socket(self.ledger, socket.SOCK_DGRAM)
