"""shm and shm-spin: POSIX shared memory (a 0600 file in /dev/shm) carrying messages through the ring.

``shm`` sleeps on eventfds when a side has nothing to do (an idle worker costs no CPU); ``shm-spin`` busy-polls
the ring instead: the lowest latency Python can reach, paid for with a whole CPU per waiting side, which the
CPU-us/msg column shows. The ring itself, its memory-ordering argument and the wake-up protocol are in
ring.py.

The segment is what shm_open(3) makes on Linux: glibc's shm_open is open("/dev/shm/NAME", O_CREAT|...), so an
os.open there creates the same object with no dependency and no multiprocessing resource_tracker (which would
warn about, or unlink, a segment a child opened). The workers inherit its file descriptor; the name is unlinked
as soon as both are spawned, so even a SIGKILLed runner leaves no segment behind, and again (idempotently) in
teardown() for the case where spawning failed.
"""

from __future__ import annotations

import os

from .ledger import OwnedFd, unlink_quietly
from .segment import RingTransport, create_file, random_name

SHM_DIR = "/dev/shm"


class ShmTransport(RingTransport):
    name = "shm"
    summary = "POSIX shared memory ring (/dev/shm), eventfd wake-ups: an idle side sleeps"
    order = 50

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not os.path.isdir(SHM_DIR):
            return f"no {SHM_DIR}"
        if not os.access(SHM_DIR, os.W_OK | os.X_OK):
            return f"{SHM_DIR} is not writable by this user"
        return super().unavailable_reason()

    def _create_segment(self, size: int) -> OwnedFd:
        name = random_name()
        path = self.path = os.path.join(SHM_DIR, name)
        # Recorded before it exists (`ipclab clean` must know it even if we die right here); the name is removed
        # as soon as the workers hold the segment by fd (until_spawned), and again by teardown if spawning failed.
        def remove(segment: OwnedFd) -> None:
            segment.close()
            unlink_quietly(path)

        return self.ledger.os_object("shm", "/" + name, lambda: OwnedFd(create_file(path, size)), remove,
                                     until_spawned=True)


class ShmSpinTransport(ShmTransport):
    name = "shm-spin"
    summary = "the shm ring with busy-polling instead of wake-ups: lowest latency, a CPU per waiting side"
    order = 60
    spins = True  # the runner gives each worker its own CPU
