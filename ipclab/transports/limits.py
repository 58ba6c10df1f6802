"""This kernel's message-size limits, read or measured once, and the n/a texts that name the knob raising them.

- ``read_int(path)``: one integer from /proc (a sysctl), None when unreadable.
- ``sndbuf_limit(sock_type)``: the largest message an AF_UNIX socket of that type (SOCK_DGRAM, SOCK_SEQPACKET)
  accepts with the default send buffer, and that buffer. Both types share the kernel's datagram send path, which
  refuses (EMSGSIZE) a message larger than the sender's SO_SNDBUF minus a small overhead (``len > sk_sndbuf - 32``
  in unix_dgram_sendmsg); the default buffer is net.core.wmem_default. The limit is measured, not computed: a
  binary search over datagram sizes on a fresh socketpair, so no guess at the kernel's formula is needed.
- :class:`SndbufLimited`: ``limit()`` and ``limit_reason()`` for a transport whose messages must fit that buffer.
"""

from __future__ import annotations

import functools
import socket
from typing import ClassVar

from ..config import format_size

PROBE_CEILING = 1 << 26  # 64 MiB: no default send buffer is anywhere near this


def read_int(path: str) -> int | None:
    """The first integer in a /proc file, or None if it cannot be read."""
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def sndbuf_limit(sock_type: int = socket.SOCK_DGRAM) -> tuple[int, int]:
    """(largest message a default AF_UNIX socket of ``sock_type`` accepts, that socket's SO_SNDBUF)."""
    a, b = socket.socketpair(socket.AF_UNIX, sock_type)
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


def sysctl_reason(size: int, what: str, limit: int | None, sysctl: str) -> str:
    """"64 KiB exceeds the <what> of <limit> bytes (<sysctl>; raise it with sysctl -w <sysctl>=N)"."""
    return f"{format_size(size)} exceeds the {what} of {limit} bytes ({sysctl}; raise it with sysctl -w {sysctl}=N)"


class SndbufLimited:
    """Mixin for a Transport over AF_UNIX message sockets of ``sock_type``: the limit is the measured one."""

    name: ClassVar[str]
    sock_type: ClassVar[int] = socket.SOCK_DGRAM

    @classmethod
    def limit(cls) -> int | None:
        return sndbuf_limit(cls.sock_type)[0]

    @classmethod
    def limit_reason(cls, size: int) -> str:
        limit, sndbuf = sndbuf_limit(cls.sock_type)
        return (f"{format_size(size)} exceeds the {cls.name} limit of {limit} bytes (a message must fit in the "
                f"sender's SO_SNDBUF of {sndbuf} B; raise net.core.wmem_default)")
