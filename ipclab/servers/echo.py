"""echo: every byte a stream client sends comes back unchanged; over UDP, every datagram comes back to its sender.

The stream echo never holds more than the loop's per-client buffer for a client: one that sends without reading
stops being read (backpressure) and is dropped after --idle-timeout without progress. When the client shuts its
sending side (``nc -N``, ``shutdown(SHUT_WR)``), what is still queued is sent and the connection closed. A client
over --max-clients reads one line, "ipclab: server busy (N connections), try again later", and the connection
closes.
"""

from __future__ import annotations

from .loop import Conn


def busy_line(limit: int) -> bytes:
    """What a stream client over --max-clients reads before the server closes (echo, time)."""
    return f"ipclab: server busy ({limit} connection{'' if limit == 1 else 's'}), try again later\n".encode()


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

    def busy(self, limit: int) -> bytes:
        # Sent at once, before the client has said anything, then the connection closes: nothing it could take
        # for an echo of its own bytes, and a person at nc reads why instead of a silent end of stream.
        return busy_line(limit)
