"""Waiting in the shared-memory ring (ring.py): a full memory fence in one C call, and the two ways a ring end
waits for its peer's counter: spinning (shm-spin) or sleeping on an eventfd behind a wait flag (shm, mmap).

The protocol these implement, and why it loses no wake-up, is argued in ring.py's module docstring.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Callable

SPIN_CHECK = 255  # a spinner checks the peer's closed flag and yields the CPU every 256 empty polls


def full_fence() -> Callable[[], object]:
    """A full memory barrier (store->load order included) in one C call.

    CPython 3.10-3.12's ``BufferedWriter.flush()`` with nothing buffered takes and releases the writer's
    internal lock (ENTER_BUFFERED / LEAVE_BUFFERED: ``sem_trywait`` + ``sem_post``, each a ``lock cmpxchg``)
    and does nothing else (seen with gdb on 3.11.7, Modules/_io/bufferedio.c buffered_flush; 3.10 and 3.12 have
    the same code). One call costs ~55 ns here against ~105 ns for ``Lock.acquire(); Lock.release()``, the
    fallback elsewhere. The object is private to its ring end, so its lock is never contended.
    """
    if sys.implementation.name == "cpython" and (3, 10) <= sys.version_info[:2] <= (3, 12):
        return io.BufferedWriter(io.BytesIO()).flush
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release

    def fence() -> None:
        acquire()
        release()

    return fence


def _peer_gone(hdr: memoryview, counter: int, threshold: int, gone: type[Exception], what: str) -> int:
    # Loads stay in order on TSO: the counter re-read after the closed flag is the peer's last one.
    value = hdr[counter]
    if value >= threshold:
        return value
    raise gone(f"peer closed the ring while this side waited for {what}")


def spinner(hdr: memoryview, counter: int, closed: int, gone: type[Exception],
             what: str) -> Callable[[int], int]:
    """wait(threshold): busy-poll until the peer's ``hdr[counter]`` >= threshold; return it."""
    yield_cpu = os.sched_yield

    def spin(threshold: int) -> int:
        polls = 0
        while True:
            value = hdr[counter]
            if value >= threshold:
                return value
            polls += 1
            if not polls & SPIN_CHECK:
                if hdr[closed]:
                    return _peer_gone(hdr, counter, threshold, gone, what)
                # Costs nothing when this CPU is ours alone; lets a peer forced onto it (--pin same) run.
                yield_cpu()

    return spin


def sleeper(hdr: memoryview, counter: int, flag: int, closed: int, efd: int, gone: type[Exception], what: str,
             fence: Callable[[], object], wake: tuple[int, int] | None = None) -> Callable[[int], int]:
    """wait(threshold): sleep on ``efd`` until the peer's ``hdr[counter]`` >= threshold; return it.

    ``wake`` = (flag, efd) of a peer that may sleep on us: checked after the fence (the consumer's side of
    the space protocol, see the module docstring). ``gone`` is raised when the peer closed its end first.
    """
    read, write = os.eventfd_read, os.eventfd_write
    wake_flag, wake_efd = wake if wake is not None else (None, -1)

    def sleep(threshold: int) -> int:
        while True:
            hdr[flag] = 1
            fence()  # the flag store is visible before the counter is re-read (Dekker)
            if wake_flag is not None and hdr[wake_flag]:
                hdr[wake_flag] = 0
                write(wake_efd, 1)
            value = hdr[counter]
            if value >= threshold:
                hdr[flag] = 0
                return value
            # Before every read: a close's eventfd count may already have been consumed by the read that
            # woke us for the peer's last message (eventfd counts add up).
            if hdr[closed]:
                hdr[flag] = 0
                return _peer_gone(hdr, counter, threshold, gone, what)
            read(efd)  # blocks; close_side() writes after setting its flag, so a closing peer ends it too
            value = hdr[counter]
            if value >= threshold:
                # The waker cleared the flag; if a left-over count woke us instead, the flag stays set and
                # costs one spurious wake-up later: cheaper than clearing it on every wake-up.
                return value

    return sleep
