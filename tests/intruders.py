"""Transports with another local user in the room, loaded through IPCLAB_EXTRA_TRANSPORTS by tests/test_peers.py.

Each is the real transport; its parent-side ``setup`` (in the runner's process) also plays a stranger who knows
the server's address, before any worker starts and while the trial runs:

    intruded-tcp   connects to the tcp server's port INTRUDERS times before the workers exist (so those
                   connections wait in the backlog ahead of the real client), each sending garbage and closing,
                   then keeps polling the port every POLL_S until teardown
    intruded-udp   sends CRAFTED well-formed fan-in datagrams (producer 0, measured sequence numbers, the run's
                   payload) from a socket of its own to the udp server, before any worker starts
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

from ipclab.patterns.common import make_payload
from ipclab.transports.tcp import TcpTransport
from ipclab.transports.udp import UdpTransport

INTRUDERS = 3
POLL_S = 0.002
POLL_LIMIT = 5000  # connections at most: the poller is bounded even if teardown never came
CRAFTED = 20
SEED = 1  # the runner's default --seed: the crafted datagrams carry the very payload the producers send


def _knock(target: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(target, timeout=1.0) as sock:
            sock.sendall(b"\xff" * 64)
    except OSError:
        return False  # refused once the server has its clients: that is the point
    return True


class IntrudedTcp(TcpTransport):
    name = "intruded-tcp"
    summary = "tcp, with a stranger connecting to the server's port"

    def setup(self) -> dict[str, Any]:
        address = super().setup()
        target = (address["host"], address["port"])
        for _ in range(INTRUDERS):
            assert _knock(target)
        self._stop = threading.Event()

        def poll() -> None:
            for _ in range(POLL_LIMIT):
                if self._stop.wait(POLL_S):
                    return
                _knock(target)

        self._poller = threading.Thread(target=poll, daemon=True)
        self._poller.start()
        return address

    def teardown(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._poller.join()
        super().teardown()


class IntrudedUdp(UdpTransport):
    name = "intruded-udp"
    summary = "udp, with a stranger sending crafted datagrams to the server"

    def setup(self) -> dict[str, Any]:
        address = super().setup()
        server = socket.socket(fileno=socket.dup(address["server_fd"]))
        try:
            target = server.getsockname()
        finally:
            server.close()
        msg = bytearray(make_payload(SEED, self.spec.size))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            for i in range(CRAFTED):
                struct.pack_into("<QQ", msg, 0, 1000 + i, 0)  # producer 0, message 1000+i: a measured one
                stranger.sendto(msg, target)
        return address
