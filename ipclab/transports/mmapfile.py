"""mmap: files as IPC. A regular file in the run's private directory, mapped MAP_SHARED by both workers.

The same ring and eventfd wake-ups as ``shm`` (ring.py); only the backing differs: here the pages belong to a
file on the private directory's filesystem (ext4 or tmpfs, whatever $TMPDIR is), so the kernel may write dirty
pages back to disk while the run goes on, which a tmpfs segment never does. The file lives inside the 0700
private directory, so it needs no tracking: teardown() unlinks it and the runner removes the directory.
"""

from __future__ import annotations

import os

from .ledger import OwnedFd
from .segment import RingTransport, create_file, random_name


class MmapTransport(RingTransport):
    name = "mmap"
    summary = "a regular file in the private dir, mmap'ed by both workers; ring + eventfd wake-ups"
    order = 70

    def _create_segment(self, size: int) -> OwnedFd:
        self.path = self.ledger.path(os.path.join(self.workdir, random_name(".ring")))
        return self.ledger.fd(create_file(self.path, size))
