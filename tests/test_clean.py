"""``ipclab clean``: after a runner is SIGKILLed, its leftovers (found by its records and by the ``ipclab``
prefix) are removed, and nothing else: not a live run's directory or objects, not other files in /dev/shm,
not files a record names that are not ours. ``--dry-run`` lists without removing."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
from conftest import posix_mq_exists
from test_faults import fault_env, run_dir_of, start, wait_for

from ipclab import cleanup
from ipclab.declarations import TrafficShape
from ipclab.transports import get_transport
from ipclab.transports.base import CellSpec

posix_ipc = pytest.importorskip("posix_ipc")
sysv_ipc = pytest.importorskip("sysv_ipc")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _impossible_pid() -> int:
    """A pid no process can have (above kernel.pid_max): a dead runner without starting a process."""
    with open("/proc/sys/kernel/pid_max", encoding="ascii") as f:
        return int(f.read()) + 1


def _run_dir(pid: int, objects: list[dict], root: str | None = None) -> str:
    d = tempfile.mkdtemp(prefix="ipclab-", dir=root)
    with open(os.path.join(d, "run.json"), "w", encoding="utf-8") as f:
        json.dump({"pid": pid, "started": "2024-01-01T00:00:00+00:00"}, f)
    with open(os.path.join(d, "objects.jsonl"), "w", encoding="utf-8") as f:
        for rec in objects:
            f.write(json.dumps(rec) + "\n")
        f.write("not json\n{\"kind\": \"shm\", \"id\": \"/etc/passwd\"}\n")  # ignored, never trusted
    return d


def _sysv_exists(key: int) -> bool:
    try:
        sysv_ipc.MessageQueue(key)
    except sysv_ipc.ExistentialError:
        return False
    return True


@pytest.mark.process
def test_clean_after_runner_sigkill(cli, tmp_path) -> None:
    """SIGKILL the runner mid-cell: the workers die with it, the private dir stays; clean removes it."""
    gate = str(tmp_path / "gate")
    proc = start("run", "-t", "gated-unix", "-p", "pingpong", "-s", "64", "-n", "50", "-q",
                 "-o", str(tmp_path / "r.json"), env=fault_env(gate))
    try:
        server = int(wait_for(gate + ".waiting", proc))
        workdir = run_dir_of(proc.pid)
        workers = [p.pid for p in psutil.Process(proc.pid).children()]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert server in workers
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in workers):
        assert time.monotonic() < deadline, "workers outlived their runner (PR_SET_PDEATHSIG)"
        time.sleep(0.05)
    leftovers = os.listdir(workdir)
    assert "run.json" in leftovers and any(e.endswith(".sock") for e in leftovers), leftovers

    dry = cli("clean", "--dry-run", check=True)
    assert f"would remove run dir        {workdir}" in dry.stdout
    assert os.path.isdir(workdir)
    done = cli("clean", check=True)
    assert f"removed run dir        {workdir}" in done.stdout
    assert not os.path.exists(workdir)


@pytest.mark.process
def test_clean_removes_recorded_objects_and_nothing_else(cli, tmp_path) -> None:
    tag = secrets.token_hex(4)
    shm_path = f"/dev/shm/ipclab-test-{tag}"
    orphan = f"/dev/shm/ipclab-orphan-{tag}"  # no record: found by the prefix
    foreign = f"/dev/shm/notours-{tag}"  # not ours: must survive
    live_shm = f"/dev/shm/ipclab-live-{tag}"  # claimed by a live run: must survive
    sem_name, mq_name = f"/ipclab-sem-{tag}", f"/ipclab-mq-{tag}"
    fifo, sock_path = str(tmp_path / f"ipclab-{tag}.fifo"), str(tmp_path / f"ipclab-{tag}.sock")
    precious = str(tmp_path / "precious.txt")  # a record names it, but it is not ours
    keep_dir = str(tmp_path / f"ipclab-dir-{tag}")  # a record names a directory: never removed
    created: list[str] = []
    dirs: list[str] = []
    sysv_key = foreign_key = None
    try:
        for path in (shm_path, orphan, foreign, live_shm, precious):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            created.append(path)
        posix_ipc.Semaphore(sem_name, posix_ipc.O_CREX, mode=0o600).close()
        posix_ipc.MessageQueue(mq_name, posix_ipc.O_CREX, mode=0o600, max_messages=1,
                               max_message_size=64).close()
        from ipclab.transports.sysvmq import KEY_BITS, KEY_PREFIX

        queue = sysv_ipc.MessageQueue(KEY_PREFIX | secrets.randbits(KEY_BITS), sysv_ipc.IPC_CREX, mode=0o600)
        sysv_key = queue.key
        foreign_queue = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, mode=0o600)  # recorded, but not an ipclab key
        foreign_key = foreign_queue.key
        os.mkfifo(fifo, 0o600)
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(sock_path)
        os.mkdir(keep_dir)
        stale = _run_dir(_dead_pid(), [
            {"kind": "shm", "id": shm_path}, {"kind": "sem", "id": sem_name}, {"kind": "posix-mq", "id": mq_name},
            {"kind": "sysv-mq", "id": sysv_key}, {"kind": "sysv-mq", "id": foreign_key},
            {"kind": "path", "id": fifo}, {"kind": "path", "id": sock_path},
            {"kind": "path", "id": precious}, {"kind": "path", "id": keep_dir},
        ])
        live = _run_dir(os.getpid(), [{"kind": "shm", "id": live_shm}])
        dirs += [stale, live]

        dry = cli("clean", "--dry-run", check=True)
        listed = "\n".join(ln for ln in dry.stdout.splitlines() if ln.startswith("would remove "))
        for text in (shm_path, orphan, f"/dev/shm/sem.ipclab-sem-{tag}", mq_name, f"key {sysv_key}", fifo,
                     sock_path, stale):
            assert text in listed, (text, dry.stdout)
        for text in (foreign, live_shm, precious, live, keep_dir, f"key {foreign_key}"):
            assert text not in listed
        assert live in dry.stdout.splitlines()[-1]  # "left alone: N live run(s): ..."
        assert all(os.path.exists(p) for p in (shm_path, orphan, fifo, sock_path, stale))
        assert posix_mq_exists(mq_name) and _sysv_exists(sysv_key)

        done = cli("clean", check=True)
        assert "removed" in done.stdout and "left alone: " in done.stdout
        for path in (shm_path, orphan, f"/dev/shm/sem.ipclab-sem-{tag}", fifo, sock_path, stale):
            assert not os.path.lexists(path), path
        assert not posix_mq_exists(mq_name)
        assert not _sysv_exists(sysv_key)
        assert _sysv_exists(foreign_key), "a recorded key without ipclab's prefix must survive"
        for path in (foreign, live_shm, precious, keep_dir, live, os.path.join(live, "run.json")):
            assert os.path.exists(path), f"{path} must survive"
    finally:
        for path in created + [fifo, sock_path, f"/dev/shm/sem.ipclab-sem-{tag}"]:
            if os.path.lexists(path):
                os.unlink(path)
        for d in dirs + [keep_dir]:
            shutil.rmtree(d, ignore_errors=True)
        if posix_mq_exists(mq_name):
            posix_ipc.unlink_message_queue(mq_name)
        for key in (sysv_key, foreign_key):
            if key is not None and _sysv_exists(key):
                sysv_ipc.MessageQueue(key).remove()


@pytest.mark.process
def test_a_live_run_under_another_temp_root_keeps_its_objects(cli) -> None:
    """The prefix sweep must not take a segment from a live run whose private dir is not under our TMPDIR."""
    tag = secrets.token_hex(4)
    segment = f"/dev/shm/ipclab-elsewhere-{tag}"
    os.close(os.open(segment, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    live = _run_dir(os.getpid(), [{"kind": "shm", "id": segment}], root="/tmp")
    try:
        assert not live.startswith(tempfile.gettempdir())  # the session TMPDIR is elsewhere
        proc = cli("clean", check=True)
        assert segment not in proc.stdout
        assert os.path.exists(segment) and os.path.isdir(live)
    finally:
        shutil.rmtree(live, ignore_errors=True)
        if os.path.exists(segment):
            os.unlink(segment)


def test_liveness_rules(tmp_path) -> None:
    """Live = the recorded runner still exists and is not a newer process that reused its pid."""
    live = _run_dir(os.getpid(), [])
    dead = _run_dir(_impossible_pid(), [])
    reused = _run_dir(os.getpid(), [])
    past = time.time() - 10 * 24 * 3600  # the record predates this process: the pid was reused
    os.utime(os.path.join(reused, "run.json"), (past, past))
    garbage = _run_dir(os.getpid(), [])
    with open(os.path.join(garbage, "run.json"), "w", encoding="utf-8") as f:
        f.write("[1, 2")
    try:
        assert cleanup.is_live(live)
        assert not cleanup.is_live(dead)
        assert not cleanup.is_live(reused)
        assert not cleanup.is_live(garbage)
        assert {live, dead, reused, garbage} <= set(cleanup.run_dirs())
        os.chmod(dead, 0o755)  # not private: not made by ipclab, not ours to judge
        assert dead not in cleanup.run_dirs()
    finally:
        for d in (live, dead, reused, garbage):
            shutil.rmtree(d)


@pytest.mark.parametrize("name", ["shm", "posix-mq", "sysv-mq"])
def test_what_a_killed_runner_leaves_is_found_by_its_ledger_records(name: str) -> None:
    """A transport set up in a run directory whose runner then "dies" (no teardown): ``clean``'s plan finds every
    OS object through the records the ledger wrote, and removing them works (in this process: no runner is
    started). Only this test's own objects are removed: a whole ``clean`` here could take the objects of
    another test session on this machine."""
    cls = get_transport(name)
    if cls.unavailable_reason():
        pytest.skip(f"{name}: {cls.unavailable_reason()}")
    workdir = _run_dir(_impossible_pid(), [])
    os.unlink(os.path.join(workdir, "objects.jsonl"))  # only what the ledger writes
    t = cls(workdir, CellSpec(shape=TrafficShape(duplex=True), size=64))
    t.setup()  # and no teardown: the runner is gone (its fds stay open here until the end of the test)
    try:
        recorded = cleanup.records(workdir)
        assert recorded and {kind for kind, _ in recorded} == {name}
        plan = cleanup.plan()
        assert workdir in plan.dirs and set(recorded) <= set(plan.objects)
        for kind, ident in recorded:
            assert cleanup._remove(kind, ident), (kind, ident)
            assert not cleanup._remove(kind, ident, dry_run=True), (kind, ident)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        t.teardown()  # after the removal: every step finds its object gone, quietly


@pytest.mark.process
def test_an_object_whose_owner_lives_is_left_alone_wherever_its_run_dir_is(tmp_path) -> None:
    """A live run under another TMPDIR (or a private /tmp) is invisible to clean's directory scan: the names of
    its objects say who owns them, and clean leaves them while that process runs."""
    from ipclab import cleanup
    from ipclab.transports.ledger import owned_name

    mine = owned_name()  # owned by this (live) test process
    assert cleanup.owner_alive(mine) and cleanup.owner_alive("/" + mine + ".c2s")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone_pid = int(dead.stdout)
    assert not cleanup.owner_alive(f"ipclab-{gone_pid}-1-abcdef")  # that process has ended
    assert not cleanup.owner_alive("ipclab-0123abcd")  # an old-style name says no owner
    path = os.path.join(cleanup.SHM_DIR, mine)
    stale = os.path.join(cleanup.SHM_DIR, f"ipclab-{gone_pid}-1-abcdef")
    for p in (path, stale):
        with open(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w"):
            pass
    try:
        todo = cleanup.plan(str(tmp_path), result_dirs=())
        assert ("shm", "/" + mine) not in todo.objects and todo.live_objects >= 1
        assert ("shm", "/" + os.path.basename(stale)) in todo.objects
    finally:
        for p in (path, stale):
            if os.path.exists(p):
                os.unlink(p)
