"""echo: every byte a stream client sends comes back unchanged; over UDP, every datagram comes back to its sender.

The stream echo never holds more than the loop's per-client buffer for a client: one that sends without reading
stops being read (backpressure) and is dropped after --idle-timeout without progress. When the client shuts its
sending side (``nc -N``, ``shutdown(SHUT_WR)``), what is still queued is sent and the connection closed.
"""

from __future__ import annotations

from .loop import Conn


class EchoService:
    name = "echo"
    request_deadline = False  # a conversation: bounded by progress, not by a deadline

    def on_connect(self, conn: Conn) -> None:
        pass

    def on_data(self, conn: Conn, data: bytes) -> None:
        conn.write(data)

    def on_eof(self, conn: Conn) -> None:
        conn.finish()

    def on_datagram(self, data: bytes) -> bytes | None:
        return data

    def busy(self) -> bytes:
        return b""  # an echo server has no way to say "busy" that a client would not take for an echo
