"""Both endpoints of a transport in this process (threads, no workers): the helpers the fast-tier tests share."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ipclab.transports.base import Channel, Transport


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def connect(t: Transport, address: dict, role: str, index: int = 0) -> Channel:
    """Open an endpoint the way a worker does, on its own copies of the fds passed to its role (a worker inherits
    copies; the parent's originals are closed by close_parent_fds)."""
    passed = set(t.fds_for(role, index))
    dups: dict[int, int] = {}

    def copy(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if k == "pids" else copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and value in passed:
            return dups.setdefault(value, os.dup(value))
        return value

    return t.connect(copy(address), role, index)


def native_threads() -> int:
    """Threads of this process, Python's and native ones (libraries' worker threads) alike."""
    return len(os.listdir("/proc/self/task"))


def join_other_threads(timeout: float = 5.0) -> None:
    """Wait for helper threads (a Queue's feeder closes its fds as it ends); none may be left."""
    for other in threading.enumerate():
        if other is not threading.current_thread():
            other.join(timeout)
    assert threading.active_count() == 1, threading.enumerate()


@contextmanager
def rt_signals_blocked(cls: type[Transport]) -> Iterator[None]:
    """Real-time signals blocked here and in every thread started meanwhile: a transport that signals this very
    process (``peer_pids``: signal) can then reach no thread that has not blocked it (the default action of a
    real-time signal ends the process). A native thread some library started earlier cannot be made to block
    them: such a transport is then skipped (the process tier runs it between real processes)."""
    join_other_threads()
    if cls.peer_pids and native_threads() > 1:
        pytest.skip(f"{cls.name} signals this process by pid, and a library left {native_threads() - 1} native "
                    "thread(s) that do not block its signals")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)))
    try:
        yield
    finally:
        join_other_threads()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def pair(t: Transport, clients: int = 1) -> tuple[dict, Channel, list[Channel]]:
    """Set ``t`` up and open the server and ``clients`` clients in this process: (address, server, clients).

    Blocking opens (FIFOs, accept) pair up only when both sides open: the clients open in threads. The parent's
    copies are closed afterwards, as the runner does once the workers hold theirs.
    """
    address = {**t.setup(), "pids": {"server": os.getpid(), "client": os.getpid()}}
    box: dict[int, Channel] = {}

    def open_client(i: int) -> None:
        box[i] = connect(t, address, "client", i)

    threads = [threading.Thread(target=open_client, args=(i,), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    server = connect(t, address, "server")
    for th in threads:
        th.join(10)
    t.close_parent_fds()
    assert sorted(box) == list(range(clients)), f"{t.name}: a client never connected"
    return address, server, [box[i] for i in range(clients)]
