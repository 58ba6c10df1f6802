"""pipe: two anonymous pipes (os.pipe), one per direction, inherited by the workers."""

from __future__ import annotations

import os
from typing import Any

from .base import Channel, Transport
from .channels import FdStreamChannel


class PipeTransport(Transport):
    name = "pipe"
    summary = "anonymous pipes (os.pipe), one per direction"

    def setup(self) -> dict[str, Any]:
        c2s_r, c2s_w = os.pipe()
        self._parent_fds += [c2s_r, c2s_w]
        s2c_r, s2c_w = os.pipe()
        self._parent_fds += [s2c_r, s2c_w]
        self._fds = {"server": (c2s_r, s2c_w), "client": (c2s_w, s2c_r)}
        return {"server": [c2s_r, s2c_w], "client": [s2c_r, c2s_w]}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        read_fd, write_fd = address[role]
        return FdStreamChannel(read_fd, write_fd)
