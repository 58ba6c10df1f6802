"""The run's private directory (0700) and its run record, created and removed with stop signals blocked.

Sockets, FIFOs, the workers' stderr files and the object records of a run live in one ``ipclab-*`` directory.
``run.json`` says whose it is, so ``ipclab clean`` leaves the objects of a live runner alone. An interrupt while
the directory and its record come into being (or go away) would leave a directory that no finally block knows
about: SIGINT and SIGTERM wait until that is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

from .. import results
from ..transports.base import RUN_FILE

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # blocked while OS objects are created or removed


@contextlib.contextmanager
def blocked_signals() -> Iterator[None]:
    """SIGINT/SIGTERM wait (they are delivered when the block ends): cleanups run to the end."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class RunDir:
    """``create()`` the private directory with its record; ``remove()`` it and everything in it (idempotent)."""

    def __init__(self) -> None:
        self.path: str | None = None

    def create(self) -> str:
        with blocked_signals():
            path = tempfile.mkdtemp(prefix="ipclab-")  # 0700: sockets and FIFOs live here
            try:
                write_run_record(path)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            self.path = path
        return path

    def remove(self) -> None:
        with blocked_signals():
            path, self.path = self.path, None
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)


def write_run_record(workdir: str) -> None:
    """Who owns this directory (0600 from birth: os.open with a mode, never chmod afterwards)."""
    fd = os.open(os.path.join(workdir, RUN_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "started": results.now_iso()}, f)
