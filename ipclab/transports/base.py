"""The two central interfaces: Transport (parent side, owns the OS objects) and Channel (child side).

A Transport is instantiated in the runner for one trial. ``setup()`` creates the OS objects (listening
socket, pipes, segment, queue) and returns a JSON-able address; the runner spawns the workers, passing the
file descriptors ``fds_for(role)`` names, and calls ``teardown()`` in a ``finally``. Each worker calls
``Transport.connect(address, role, index)`` and gets a Channel.

Roles: ``server`` is the passive side (echoes in pingpong, consumes in stream), ``client`` the active side.
Every message of a run has exactly the payload size; ``recv_into`` returns one whole message.
"""

from __future__ import annotations

import os
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import format_size

OBJECTS_FILE = "objects.jsonl"  # in the run's private directory: one JSON line per OS object created
RUN_FILE = "run.json"  # in the run's private directory: {"pid": runner pid, "started": ...}


@dataclass(frozen=True)
class CellSpec:
    """What a transport needs to know about the cell it is set up for."""

    pattern: str
    size: int
    clients: int = 1


class Channel(ABC):
    """One endpoint of a measured channel, used by exactly one worker. A context manager.

    Implementations may bind fast closures to ``self.send`` / ``self.recv_into`` in ``__init__`` (instance
    attributes shadow the methods): the hot loops call them once per message.
    """

    def set_timeout(self, seconds: float | None) -> None:  # noqa: B027 - optional for reliable transports
        """Make ``recv_into`` raise TimeoutError after ``seconds`` without a message (None: block)."""

    @abstractmethod
    def send(self, msg: memoryview) -> None:
        """Send one whole message of exactly len(msg) bytes."""

    @abstractmethod
    def recv_into(self, buf: memoryview) -> int:
        """Receive one whole message into buf; return its length. EOFError when the peer has gone."""

    @abstractmethod
    def close(self) -> None:
        """Release this endpoint (idempotent)."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport(ABC):
    """A mechanism: declared properties, parent-side setup/teardown and the child-side ``connect``."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    reliable: ClassVar[bool] = True  # False: loss/reorder are counted, not fatal
    ordered: ClassVar[bool] = True
    boundaries: ClassVar[bool] = False  # keeps message boundaries (datagrams, queues)
    empty_ok: ClassVar[bool] = False  # can carry an empty (0-byte) message
    max_message: ClassVar[int | None] = None
    spins: ClassVar[bool] = False  # busy-polls: never put two of its workers on one CPU
    multi_writer: ClassVar[bool] = False  # several clients may write to one server (fan-in)

    def __init__(self, workdir: str, spec: CellSpec) -> None:
        self.workdir = workdir  # private 0700 directory of this run
        self.spec = spec
        self._parent_fds: list[int] = []
        self._fds: dict[str, tuple[int, ...]] = {}
        self._paths: list[str] = []  # files in the private dir (sockets, FIFOs) that teardown removes
        self._socks: list[Any] = []  # the parent's socket objects, closed once the workers hold their copies

    # -- declared properties -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the mechanism cannot run here ("pyzmq not installed"), or None."""
        return None

    @classmethod
    def limit(cls) -> int | None:
        """Largest message this machine lets the mechanism carry (may read kernel limits)."""
        return cls.max_message

    @classmethod
    def limit_reason(cls, size: int) -> str:
        """The n/a text for a size above ``limit()``; transports name the sysctl that raises it."""
        return f"{format_size(size)} exceeds the {cls.name} message limit of {cls.limit()} bytes"

    @classmethod
    def not_applicable(cls, pattern: str, size: int) -> str | None:
        """None if the cell can run, else the reason shown in its n/a cell."""
        if size == 0 and not cls.empty_ok:
            return "a byte stream cannot carry an empty message"
        limit = cls.limit()
        if limit is not None and size > limit:
            return cls.limit_reason(size)
        return None

    @classmethod
    def properties(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "summary": cls.summary,
            "reliable": cls.reliable,
            "ordered": cls.ordered,
            "boundaries": cls.boundaries,
            "empty_ok": cls.empty_ok,
            "max_message": cls.limit(),
            "spins": cls.spins,
            "multi_writer": cls.multi_writer,
        }

    # -- parent side ---------------------------------------------------------------------------------
    @abstractmethod
    def setup(self) -> dict[str, Any]:
        """Create the OS objects; return a JSON-able address for ``connect``."""

    def track(self, kind: str, ident: str | int) -> None:
        """Record an OS object outside the private directory (shm segment, queue) before creating it.

        ``ipclab clean`` reads these records to remove what a SIGKILLed runner left behind. kinds: "shm"
        (name "/ipclab..."), "sem" (POSIX semaphore "/ipclab..."), "posix-mq" ("/ipclab..."), "sysv-mq" (int key),
        "path" (absolute path whose file name contains "ipclab"). Other records are ignored by clean.
        """
        import json

        fd = os.open(os.path.join(self.workdir, OBJECTS_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "id": ident}) + "\n")

    def fds_for(self, role: str, index: int = 0) -> tuple[int, ...]:
        """File descriptors the worker of ``role`` must inherit (pipes, listening sockets)."""
        return self._fds.get(role, ())

    def own_socket(self, sock: Any) -> Any:
        """Keep a socket object the workers inherit; close_parent_fds closes it. The object, not its fd number:
        a bare number closed after a failed setup could by then name another file."""
        self._socks.append(sock)
        return sock

    def close_parent_fds(self) -> None:
        """Close the parent's copies once the workers hold theirs, so EOF reaches a survivor."""
        socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()
        fds, self._parent_fds = self._parent_fds, []
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def own_path(self, path: str) -> str:
        """Record a file setup is about to create (socket, FIFO): teardown removes it, whatever was made."""
        self._paths.append(path)
        return path

    def teardown(self) -> None:
        """Remove everything setup created. Always called, possibly twice, possibly after a failed setup."""
        self.close_parent_fds()
        paths, self._paths = self._paths, []
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    # -- child side ----------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        """Open the worker's endpoint."""


def set_recv_timeout(sock: Any, seconds: float | None) -> None:
    """SO_RCVTIMEO on a blocking socket: recv fails with EAGAIN after ``seconds``.

    Unlike ``sock.settimeout`` it adds no poll() before every recv, so timed loops stay as cheap as blocking ones.
    """
    import socket

    secs = 0.0 if seconds is None else seconds
    value = struct.pack("ll", int(secs), int((secs - int(secs)) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
