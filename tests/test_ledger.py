"""The resource ledger, in this process only (fast tier): undo order, idempotence, the records ``ipclab clean``
reads, hand-over to the workers, and a failed setup undone."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from ipclab import cleanup
from ipclab.transports.ledger import OBJECTS_FILE, Ledger, OwnedFd


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def test_undo_runs_newest_first_and_only_once(tmp_path) -> None:
    ledger = Ledger(str(tmp_path))
    order: list[str] = []
    for name in ("a", "b", "c"):
        ledger.add(lambda name=name: order.append(name), name)
    assert ledger.describe() == ["a", "b", "c"]
    ledger.undo()
    assert order == ["c", "b", "a"]
    ledger.undo()  # idempotent: nothing is undone twice
    assert order == ["c", "b", "a"] and len(ledger) == 0


def test_one_failing_step_does_not_stop_the_others(tmp_path) -> None:
    ledger = Ledger(str(tmp_path))
    done: list[str] = []
    ledger.add(lambda: done.append("first"))
    ledger.add(lambda: (_ for _ in ()).throw(OSError("stubborn")))
    ledger.add(lambda: done.append("last"))
    with pytest.raises(OSError, match="stubborn"):
        ledger.undo()
    assert done == ["last", "first"]
    ledger.undo()  # the failed step is off the ledger too: a second teardown does not retry it
    assert done == ["last", "first"]


def test_fds_sockets_and_paths_are_owned_and_released(tmp_path) -> None:
    before = _open_fds()
    ledger = Ledger(str(tmp_path))
    r, w = ledger.pipe()
    sock = ledger.socket(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    path = ledger.path(str(tmp_path / "ipclab-x.sock"))
    sock.bind(path)
    efd = ledger.fd(os.eventfd(0))
    assert isinstance(r, OwnedFd) and r.fileno() >= 0 and efd.fileno() >= 0
    assert os.path.exists(path)
    ledger.handed_over()  # the parent's copies close; the path stays until teardown
    assert r.closed and w.closed and efd.closed and sock.fileno() == -1
    assert os.path.exists(path) and _open_fds() == before
    with pytest.raises(ValueError):
        r.fileno()  # a closed owned fd never hands out its old number
    ledger.undo()
    assert not os.path.exists(path)


def test_owned_fd_closes_once(tmp_path) -> None:
    fd = os.open(str(tmp_path), os.O_RDONLY)
    owned = OwnedFd(fd)
    owned.close()
    reused = os.open(str(tmp_path), os.O_RDONLY)  # likely the same number again
    try:
        owned.close()  # must not close the file that reused the number
        os.fstat(reused)
    finally:
        os.close(reused)


def test_os_objects_are_recorded_before_they_exist(tmp_path) -> None:
    """The record is written first (a runner killed during creation still leaves one for ``ipclab clean``), in the
    format cleanup.records reads; the undo step exists only once creation succeeded."""
    ledger = Ledger(str(tmp_path))
    seen: list[object] = []

    def create() -> str:
        records = [json.loads(line) for line in (tmp_path / OBJECTS_FILE).read_text().splitlines()]
        seen.append(records)
        return "made"

    removed: list[str] = []
    assert ledger.os_object("shm", "/ipclab-test", create, removed.append) == "made"
    assert seen == [[{"kind": "shm", "id": "/ipclab-test"}]]

    def taken() -> str:
        raise FileExistsError("someone else's")

    with pytest.raises(FileExistsError):
        ledger.os_object("posix-mq", "/ipclab-taken", taken, removed.append)
    ledger.undo()
    assert removed == ["made"]  # the name that was taken is never removed
    assert stat.S_IMODE(os.stat(tmp_path / OBJECTS_FILE).st_mode) == 0o600
    assert cleanup.records(str(tmp_path)) == [("shm", "/ipclab-test"), ("posix-mq", "/ipclab-taken")]


def test_until_spawned_objects_go_at_hand_over(tmp_path) -> None:
    ledger = Ledger(str(tmp_path))
    gone: list[str] = []
    ledger.os_object("shm", "/ipclab-early", lambda: 1, lambda _: gone.append("early"), until_spawned=True)
    ledger.os_object("sysv-mq", 0x1BC00001, lambda: 2, lambda _: gone.append("late"))
    ledger.handed_over()
    assert gone == ["early"]
    ledger.undo()
    assert gone == ["early", "late"]


def test_a_failed_setup_is_undone(tmp_path) -> None:
    """Whatever was registered before the failure is undone, in reverse; nothing after it exists."""
    before = _open_fds()
    ledger = Ledger(str(tmp_path))
    path = ledger.path(str(tmp_path / "ipclab-half.fifo"))
    os.mkfifo(path, 0o600)
    ledger.pipe()
    with pytest.raises(OSError):
        ledger.fd(os.open(str(tmp_path / "missing" / "x"), os.O_RDONLY))  # setup fails here
    ledger.undo()
    assert _open_fds() == before and not os.path.exists(path)


def test_no_workdir_records_nothing() -> None:
    ledger = Ledger(None)
    ledger.record("shm", "/ipclab-x")  # no private directory: nothing to write, no error
    ledger.undo()
