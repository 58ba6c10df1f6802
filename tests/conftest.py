"""Shared fixtures. Every test is checked for leaks: no worker process or inline worker thread, private
directory, shared-memory segment, POSIX or System V message queue, or loopback of ours may survive it.

Tiers: a test that starts child processes is marked ``process``; ``pytest -m "not process"`` is the fast tier."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pytest

# numpy (pandas, in the notebook tests) starts a pool of native BLAS threads at import, which cannot be made to
# block signals: the in-process tests of the signal transport would then skip. One thread: no pool.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

pytest_plugins = ["tiering"]  # the fast tier is enforced: an unmarked test may not start a process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A private TMPDIR for the whole session (inherited by every ipclab process the tests start): the leak check
# then sees only this session's private directories, not those of another run on the machine. Kept short:
# AF_UNIX socket paths are limited to 107 bytes.
_SESSION_TMP = tempfile.mkdtemp(prefix="ipt-", dir="/tmp")
os.environ["TMPDIR"] = _SESSION_TMP
tempfile.tempdir = None  # re-read TMPDIR


def pytest_configure(config) -> None:
    if not config.option.basetemp:  # tmp_path under the short session dir, not .../pytest-of-USER/pytest-N/
        config.option.basetemp = os.path.join(_SESSION_TMP, "t")


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


def ipclab_objects() -> dict[str, set]:
    """Everything of ours that exists right now (processes, temp dirs, shm, queues)."""
    me = psutil.Process()
    procs = set()
    for child in me.children(recursive=True):
        try:
            if "ipclab" in " ".join(child.cmdline()):
                procs.add((child.pid, " ".join(child.cmdline())[:120]))
        except psutil.Error:
            pass
    tmp = os.environ.get("TMPDIR", "/tmp")
    sysv = set()
    try:
        with open("/proc/sysvipc/msg", encoding="ascii") as f:
            next(f)
            for line in f:
                sysv.add(int(line.split()[1]))  # msqid
    except (OSError, StopIteration):
        pass
    loopback = sys.modules.get("ipclab.transports.loopback")
    return {
        "processes": procs,
        "threads": {t.name for t in threading.enumerate() if t.name.startswith("ipclab-")},
        "loopbacks": loopback.live_hubs() if loopback else set(),
        "tempdirs": set(glob.glob(os.path.join(tmp, "ipclab-*"))),
        "shm": {p for p in glob.glob("/dev/shm/*") if "ipclab" in os.path.basename(p)},
        "posix_mq": {p for p in glob.glob("/dev/mqueue/*") if "ipclab" in os.path.basename(p)},
        "sysv_mq": sysv,
    }


def leaked(before: dict[str, set], timeout: float = 5.0) -> dict[str, set]:
    """What appeared since ``before`` and is still there after up to ``timeout`` s (processes need a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        now = ipclab_objects()
        extra = {k: now[k] - before[k] for k in now if now[k] - before[k]}
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail any test that leaves an ipclab process or IPC object behind."""
    before = ipclab_objects()
    yield
    extra = leaked(before)
    assert not extra, f"leaked: {extra}"


def run_cli(*args: str, timeout: float = 120, cwd: str | None = None, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m ipclab ARGS`` end to end, as a user would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "ipclab", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"ipclab {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


def posix_mq_exists(name: str) -> bool:
    """Whether the POSIX message queue ``name`` exists (posix_ipc imported here: only its tests need it)."""
    import posix_ipc

    try:
        posix_ipc.MessageQueue(name).close()
    except posix_ipc.ExistentialError:
        return False
    return True


@pytest.fixture
def workdir():
    """A private directory standing in for a run's (short: AF_UNIX paths are limited to 107 bytes); it must be
    empty again when the test ends, or removing it fails the test."""
    d = tempfile.mkdtemp(prefix="wd-")
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def stdin_eof_ends_it(handle) -> None:
    """A ``--stdio`` worker blocked where it waits (in its loop, in accept()) ends, status 1, when its stdin closes."""
    time.sleep(0.2)
    assert handle.poll() is None  # still waiting: nothing but the EOF can end it
    handle.channel.write_end.close()
    assert handle.wait(5.0) == 1


def reap(handle) -> None:
    """Kill a worker handle's process if it is still there, and close the handle."""
    if handle.poll() is None:
        handle.kill()
        handle.wait(None)
    handle.close()
