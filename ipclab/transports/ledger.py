"""The resource ledger: everything a transport creates for one trial, owned in one place and undone in one call.

A Transport gets a :class:`Ledger` at construction (``self.ledger``). Setup registers each thing the moment it
exists (an fd, a socket object, a file path, an OS object outside the private directory) and the ledger then
owns it:

- ``undo()`` removes everything in reverse order of registration. It is idempotent (an entry is taken off the
  ledger before it is undone, so a second call, or a call after an interrupted first one, only does what is left)
  and it works after a failed setup: whatever was registered up to the failure is undone, nothing else. One
  step that fails does not stop the others; the first error is raised at the end.
- ``handed_over()`` is called once the workers hold their inherited copies: it closes the parent's fds and socket
  objects (so EOF reaches a survivor when its peer dies) and undoes the entries registered ``until_spawned``
  (a shared-memory name whose segment the workers now hold by fd).
- OS objects outside the private directory (shared-memory segments, semaphores, POSIX and SysV queues) are
  recorded in ``objects.jsonl`` in the run's private directory *before* they are created, one JSON line
  ``{"kind": ..., "id": ...}`` each: ``ipclab clean`` (ipclab/cleanup.py) reads these records to remove what a
  SIGKILLed runner left behind. Kinds: "shm" and "sem" (a "/ipclab..." name), "posix-mq" ("/ipclab..."),
  "sysv-mq" (an int key), "path" (an absolute path whose file name contains "ipclab").

Names of objects outside the private directory say who owns them (:func:`owned_name`: "ipclab-PID-START-RANDOM",
START being the process's start time in clock ticks): ``ipclab clean`` leaves an object alone while that process
lives, wherever the run keeps its directory (another TMPDIR, another mount namespace's /tmp).

File descriptors are never held as bare numbers: :class:`OwnedFd` wraps one and closes it once, so a number
closed after a failed setup can never close a file that has since reused it. ``fileno()`` gives the number to
pass to a child.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from typing import Protocol, TypeVar

OBJECTS_FILE = "objects.jsonl"  # in the run's private directory: one JSON line per OS object created
RUN_FILE = "run.json"  # in the run's private directory: {"pid": runner pid, "started": ...}

T = TypeVar("T")


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (/proc/PID/stat field 22); None if it is gone.

    A pid and its start time name a process for good: a reused pid has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return int(data[data.rindex(b")") + 2:].split()[19])  # fields after "(comm)": state is field 3
    except (ValueError, IndexError):
        return None


_OWNER = f"{os.getpid()}-{start_ticks(os.getpid()) or 0}"
_OWNER_PID = os.getpid()


def owned_name(suffix: str = "") -> str:
    """A fresh name for an OS object outside the private directory: "ipclab-PID-START-RANDOM<suffix>"."""
    global _OWNER, _OWNER_PID
    if os.getpid() != _OWNER_PID:  # a forked child names its own objects
        _OWNER, _OWNER_PID = f"{os.getpid()}-{start_ticks(os.getpid()) or 0}", os.getpid()
    return f"ipclab-{_OWNER}-{secrets.token_hex(6)}{suffix}"


class HasFileno(Protocol):
    def fileno(self) -> int: ...


class Closable(Protocol):
    def fileno(self) -> int: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=Closable)


class OwnedFd:
    """One open file descriptor and the duty to close it, exactly once."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("I/O operation on a closed file descriptor")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:  # EBADF: nothing of ours is left to close
                pass

    def __enter__(self) -> OwnedFd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OwnedFd({self._fd})" if self._fd >= 0 else "OwnedFd(closed)"


class _Entry:
    __slots__ = ("undo", "what", "early")

    def __init__(self, undo: Callable[[], object], what: str, early: bool) -> None:
        self.undo, self.what, self.early = undo, what, early


class Ledger:
    """The fds, sockets, paths and OS objects of one transport for one trial (see the module docstring)."""

    def __init__(self, workdir: str | None) -> None:
        self.workdir = workdir  # the run's private 0700 directory (records go there); None: nothing is recorded
        self._entries: list[_Entry] = []

    # -- registration --------------------------------------------------------------------------------------------
    def add(self, undo: Callable[[], object], what: str = "", *, until_spawned: bool = False) -> None:
        """Register one undo step. ``until_spawned``: also run it in ``handed_over()``, not only in ``undo()``."""
        self._entries.append(_Entry(undo, what, until_spawned))

    def fd(self, fd: int) -> OwnedFd:
        """Own a file descriptor just returned by the OS (os.pipe, os.eventfd, os.open): closed on hand-over."""
        owned = OwnedFd(fd)
        self.add(owned.close, f"fd {fd}", until_spawned=True)
        return owned

    def pipe(self) -> tuple[OwnedFd, OwnedFd]:
        """os.pipe(), both ends owned: (read end, write end)."""
        r, w = os.pipe()
        ends = OwnedFd(r), OwnedFd(w)

        def close() -> None:
            for end in ends:
                end.close()

        self.add(close, f"pipe {r}, {w}", until_spawned=True)  # one entry: both ends are owned at once
        return ends

    def socket(self, sock: S) -> S:
        """Own a socket object (closed on hand-over). The object, not its number: see the module docstring."""
        self.add(sock.close, f"socket fd {sock.fileno()}", until_spawned=True)
        return sock

    def path(self, path: str) -> str:
        """A file about to be created in the private directory (socket, FIFO, mapped file): unlinked on undo,
        whether or not it was made. Paths live in the private directory, which the runner removes as a whole,
        so they need no record for ``ipclab clean``."""
        self.add(lambda: unlink_quietly(path), f"path {path}")
        return path

    def record(self, kind: str, ident: str | int) -> None:
        """Write the ``ipclab clean`` record of an OS object outside the private directory, before creating it."""
        if self.workdir is None:
            return
        fd = os.open(os.path.join(self.workdir, OBJECTS_FILE), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "id": ident}) + "\n")

    def os_object(self, kind: str, ident: str | int, create: Callable[[], T], remove: Callable[[T], object], *,
                  until_spawned: bool = False) -> T:
        """Record, then create, then own an OS object: ``remove(obj)`` undoes it.

        The record comes first (a runner killed inside ``create`` still leaves one for ``ipclab clean``); the undo
        step only once ``create`` succeeded, so a name that turned out to be taken (EEXIST) is never removed.
        """
        self.record(kind, ident)
        made = create()
        self.add(lambda: remove(made), f"{kind} {ident}", until_spawned=until_spawned)
        return made

    # -- undoing -------------------------------------------------------------------------------------------------
    def handed_over(self) -> None:
        """The workers hold their copies: close the parent's fds and sockets, undo the ``until_spawned`` entries."""
        self._undo(early_only=True)

    def undo(self) -> None:
        """Undo everything still registered, newest first. Idempotent; safe after a failed or interrupted setup."""
        self._undo(early_only=False)

    def _undo(self, early_only: bool) -> None:
        first: Exception | None = None
        for entry in reversed(list(self._entries)):
            if early_only and not entry.early:
                continue
            self._entries.remove(entry)  # off the ledger before it runs: never undone twice
            try:
                entry.undo()
            except Exception as exc:  # noqa: BLE001 - the rest must still be undone; the first error is raised
                first = first or exc
        if first is not None:
            raise first

    def __len__(self) -> int:
        return len(self._entries)

    def describe(self) -> list[str]:
        """What is registered, oldest first (for tests and error messages)."""
        return [e.what for e in self._entries]


def unlink_quietly(path: str) -> None:
    """os.unlink, where a file already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
