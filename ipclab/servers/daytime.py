"""time: one line with the current time, then the connection closes (UDP: one reply datagram per datagram).

The line is ISO 8601 with the local UTC offset, a space, and the same instant in ctime(3) form, e.g.

    2024-05-01T14:03:07+02:00 Wed May  1 14:03:07 2024

like the daytime service of RFC 867 (which fixes no format), with a machine-readable first field. Anything a
stream client sends is ignored.
"""

from __future__ import annotations

import time
from datetime import datetime

from .echo import busy_line
from .loop import Conn


def time_line(now: float | None = None) -> bytes:
    """The reply: ISO 8601 (seconds, local offset) and ctime of the same instant, newline-terminated."""
    stamp = time.time() if now is None else now
    iso = datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")
    return f"{iso} {time.ctime(stamp)}\n".encode("ascii")


class TimeService:
    name = "time"
    request_deadline = False  # answers at once, asks nothing

    def on_connect(self, conn: Conn) -> None:
        conn.write(time_line())
        conn.finish()
        conn.done = True  # whatever the client sends is discarded

    def on_data(self, conn: Conn, data: bytes) -> None:
        pass

    def on_eof(self, conn: Conn) -> None:
        conn.finish()

    def on_datagram(self, data: bytes) -> bytes | None:
        return time_line()

    def busy(self, limit: int) -> bytes:
        return busy_line(limit)  # not a time line: a client parsing one fails loudly, not on an empty reply
