"""fifo: named pipes (os.mkfifo) in the run's private 0700 directory, mode 0600.

A duplex workload needs two FIFOs (client->server "c2s", server->client "s2c"); a one-way one uses c2s only.
The parent only creates the files: it never opens them, so its setup cannot block. The workers open them by
path, and opening a FIFO blocks until the other end is opened too. Both workers open in the same order (c2s
first, then s2c), so each open pairs with the peer's open of the same FIFO and no cycle of waits can form; a
worker whose peer never comes stays blocked in open() until the runner's setup timeout kills it.

Several writers may open c2s: the kernel keeps a write of at most PIPE_BUF (4096) bytes in one piece, larger
writes from different writers may interleave, so several writers above PIPE_BUF are n/a. The reader sees EOF
once every writer has closed.
"""

from __future__ import annotations

import os
import secrets
import select
from typing import Any

from ..declarations import TrafficShape
from .base import Channel, Transport
from .channels import FdStreamChannel

PIPE_BUF = getattr(select, "PIPE_BUF", 4096)  # POSIX: writes up to this size are atomic


class FifoTransport(Transport):
    name = "fifo"
    summary = "named pipes (os.mkfifo) in a private 0700 directory, one per direction"
    order = 80
    multi_writer = True

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if hasattr(os, "mkfifo") else "os.mkfifo is not available on this platform"

    @classmethod
    def not_applicable(cls, shape: TrafficShape, size: int) -> str | None:
        reason = super().not_applicable(shape, size)
        if reason is None and shape.many_writers and size > PIPE_BUF:
            return (f"several writers on one FIFO: writes above PIPE_BUF ({PIPE_BUF} B) may interleave; "
                    f"use {PIPE_BUF} B or less")
        return reason

    def setup(self) -> dict[str, Any]:
        tag = secrets.token_hex(4)
        address: dict[str, Any] = {}
        for direction in ("c2s", "s2c") if self.spec.shape.duplex else ("c2s",):
            path = self.ledger.path(os.path.join(self.workdir, f"ipclab-{tag}.{direction}.fifo"))
            os.mkfifo(path, 0o600)
            os.chmod(path, 0o600)  # mkfifo's mode passes through the umask; say it exactly
            address[direction] = path
        return address

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        c2s, s2c = address["c2s"], address.get("s2c")
        # Same order on both sides (c2s, then s2c): see the module docstring.
        read_fd: int | None
        write_fd: int | None
        if role == "server":
            read_fd = os.open(c2s, os.O_RDONLY)
            write_fd = os.open(s2c, os.O_WRONLY) if s2c else None
        else:
            write_fd = os.open(c2s, os.O_WRONLY)
            read_fd = os.open(s2c, os.O_RDONLY) if s2c else None
        return FdStreamChannel(read_fd, write_fd)
