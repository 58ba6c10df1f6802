"""pipe: two anonymous pipes (os.pipe), one per direction, inherited by the workers."""

from __future__ import annotations

from typing import Any

from .base import Channel, Transport
from .channels import FdStreamChannel


class PipeTransport(Transport):
    name = "pipe"
    summary = "anonymous pipes (os.pipe), one per direction"
    order = 10

    def setup(self) -> dict[str, Any]:
        c2s_r, c2s_w = self.ledger.pipe()
        s2c_r, s2c_w = self.ledger.pipe()
        self.pass_fds("server", c2s_r, s2c_w)
        self.pass_fds("client", c2s_w, s2c_r)
        return {"server": [c2s_r.fileno(), s2c_w.fileno()], "client": [s2c_r.fileno(), c2s_w.fileno()]}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        read_fd, write_fd = address[role]
        return FdStreamChannel(read_fd, write_fd)
