"""``ipclab clean [--dry-run]``: remove what a run left behind when the runner itself was killed (SIGKILL, a
power cut of the terminal), and nothing else.

A run owns a private directory ``$TMPDIR/ipclab-XXXX`` (0700) that holds ``run.json`` (the runner's pid and
start time) and ``objects.jsonl`` (one record per OS object created outside the directory, written *before*
the object is created; see transports/ledger.py). A directory whose runner is no longer alive is stale: the objects
its records name (shared-memory segments, POSIX and SysV message queues, FIFOs, socket files) are removed,
then the directory itself. Entries of /dev/shm and /dev/mqueue whose name starts with ``ipclab`` and that no
live run claims are removed too (SysV queues have no name, so only records know them), except those whose name
says their owner (``ipclab-PID-START-...``, see transports/ledger.owned_name) and whose owner still runs: a live
run is recognised wherever it keeps its directory (another TMPDIR, a private /tmp). Temp files of a save that
was killed (``results/.ipclab-PID-*.json.tmp`` whose writer is gone) are removed as well.

Race-free against a run starting meanwhile: /dev/shm and /dev/mqueue are listed *before* the run directories
are read, and a run records an object before creating it, so every listed object of a live run is claimed.
Only our own directories (owner uid, not symlinks) are read: a record file planted by another user is ignored,
and records only ever name objects whose name carries ``ipclab``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from .transports.ledger import OBJECTS_FILE, RUN_FILE, start_ticks

SHM_DIR = "/dev/shm"
MQUEUE_DIR = "/dev/mqueue"
PREFIX = "ipclab"
YOUNG_DIR = 60.0  # s: a directory without run.json this young may be a run being born; leave it alone
_NAME_RE = re.compile(r"^/?(ipclab[\w.-]*)$")  # shm / sem / POSIX mq names we may remove: one component, our prefix
_DIR_RE = re.compile(r"^ipclab-[a-z0-9_]{8}$")  # tempfile.mkdtemp(prefix="ipclab-")
_OWNER_RE = re.compile(r"^(?:sem\.)?ipclab-(\d+)-(\d+)-")  # ledger.owned_name: the owner's pid and start time
RESULT_DIRS = ("results",)  # where interrupted saves leave temp files (relative to the working directory)


@dataclass
class Plan:
    """What ``clean`` found: (kind, ident) pairs to remove, and the stale directories."""

    objects: list[tuple[str, str | int]] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)  # run directories of live runners (left alone)
    live_objects: int = 0  # objects whose name says their owner still runs (left alone)

    def add(self, kind: str, ident: str | int) -> None:
        if (kind, ident) not in self.objects:
            self.objects.append((kind, ident))


def run_dirs(tmp: str | None = None) -> list[str]:
    """Our private run directories: real directories (not symlinks) named like mkdtemp's, 0700, owned by us."""
    out = []
    for path in sorted(glob.glob(os.path.join(tmp or tempfile.gettempdir(), f"{PREFIX}-*"))):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077
                and _DIR_RE.match(os.path.basename(path))):
            out.append(path)
    return out


def pid_exists(pid: int) -> bool:
    """Some process has this pid (another user's included)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_alive(pid: int, started: float | None) -> bool:
    """The runner is alive: the pid exists and (psutil) the process is not a newer one that reused the pid."""
    if not pid_exists(pid):
        return False
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - psutil is a dependency; without it, trust the pid
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is not None and proc.create_time() > started + 2.0:
            return False  # pid reused by a process born after the run started
    except psutil.Error:
        return False
    return True


def is_live(path: str) -> bool:
    """Does a runner still own this directory? Unreadable or absent records count as stale (unless young)."""
    try:
        with open(os.path.join(path, RUN_FILE), encoding="utf-8") as f:
            record = json.load(f)
        pid = record["pid"]
        if not isinstance(pid, int) or isinstance(pid, bool):
            return False
    except FileNotFoundError:
        try:
            return time.time() - os.lstat(path).st_mtime < YOUNG_DIR  # mkdtemp happened, run.json not yet
        except OSError:
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        started = os.lstat(os.path.join(path, RUN_FILE)).st_mtime
    except OSError:
        started = None
    return _pid_alive(pid, started)


def records(path: str) -> list[tuple[str, str | int]]:
    """The (kind, ident) records of a run directory; malformed lines are skipped, never trusted."""
    out: list[tuple[str, str | int]] = []
    try:
        with open(os.path.join(path, OBJECTS_FILE), encoding="utf-8", errors="replace") as f:
            lines = f.read(1 << 20).splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        kind, ident = rec.get("kind"), rec.get("id")
        if isinstance(kind, str) and isinstance(ident, (str, int)) and _valid(kind, ident):
            out.append((kind, ident))
    return out


def _valid(kind: Any, ident: Any) -> bool:
    """Only records naming one of our objects count; anything else in a record file is ignored."""
    if kind in ("shm", "sem", "posix-mq"):
        return isinstance(ident, str) and bool(_NAME_RE.match(_short(ident)))
    if kind == "sysv-mq":  # only keys with ipclab's prefix (transports/sysvmq.py: 0x1bc00000..0x1bcfffff)
        return isinstance(ident, int) and not isinstance(ident, bool) and ident >> 20 == 0x1BC
    if kind == "path":
        return isinstance(ident, str) and os.path.isabs(ident) and PREFIX in os.path.basename(ident)
    return False


def _listing(directory: str) -> list[str]:
    """Our ``ipclab*`` entries of /dev/shm or /dev/mqueue (POSIX semaphores appear as ``sem.ipclab*``)."""
    from .outputs import owned_entries

    return [name for name, _ in owned_entries(directory, lambda n: n.startswith((PREFIX, "sem." + PREFIX)))]


def _short(ident: str) -> str:
    """"/dev/shm/ipclab-x", "/ipclab-x" and "ipclab-x" all name the object "ipclab-x"."""
    for directory in (SHM_DIR, MQUEUE_DIR):
        if ident.startswith(directory + "/"):
            return ident[len(directory) + 1:]
    return ident.lstrip("/")


def _entry(kind: str, ident: str | int) -> tuple[str, str]:
    """A record as (listing, name): a POSIX semaphore "/x" lives in /dev/shm as "sem.x"."""
    name = _short(str(ident))
    if kind == "sem":
        return "shm", "sem." + name
    return kind, name


def owner_alive(name: str) -> bool:
    """An object named by ledger.owned_name whose owner process still runs (same pid, same start time)."""
    match = _OWNER_RE.match(_short(name))
    return match is not None and start_ticks(int(match.group(1))) == int(match.group(2))


def plan(tmp: str | None = None, result_dirs: tuple[str, ...] = RESULT_DIRS) -> Plan:
    """Everything a stale run left behind (nothing is removed here)."""
    shm = _listing(SHM_DIR)  # listed before the run directories are read: see the module docstring
    mq = _listing(MQUEUE_DIR)
    result = Plan()
    claimed: set[tuple[str, str]] = set()
    stale_dirs: list[str] = []
    # Live runs claim their objects wherever their private directory is: a run started with another TMPDIR
    # must not lose its queue to a sweep of the prefix. Stale directories are removed under ``tmp`` only.
    here = os.path.realpath(tmp or tempfile.gettempdir())
    roots = dict.fromkeys(os.path.realpath(r) for r in (here, "/tmp", "/var/tmp", os.environ.get("TMPDIR") or here))
    for root in roots:
        for path in run_dirs(root):
            if is_live(path):
                result.live.append(path)
                claimed.update(_entry(k, i) for k, i in records(path))
            elif root == here:
                stale_dirs.append(path)
    for path in stale_dirs:
        for kind, ident in records(path):
            if _entry(kind, ident) not in claimed:  # a stale record never outranks a live run's claim
                result.add(kind, ident)
        result.dirs.append(path)
    stale = {_entry(k, i) for k, i in result.objects}
    for kind, names in (("shm", shm), ("posix-mq", mq)):
        for name in names:
            if (kind, name) in claimed or (kind, name) in stale:
                continue
            if owner_alive(name):  # a live run whose directory is somewhere we did not look
                result.live_objects += 1
                continue
            result.add(kind, "/" + name)
    from .outputs import stale_temp_files

    for directory in result_dirs:
        for path in stale_temp_files(directory):
            result.add("path", os.path.abspath(path))
    return result


def _remove(kind: str, ident: str | int, dry_run: bool = False) -> bool:
    """Remove one object (with dry_run: only check that it exists and is ours); False if it is not there."""
    try:
        if kind in ("shm", "sem"):
            path = os.path.join(SHM_DIR, _entry(kind, ident)[1])
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                return False
            if not dry_run:
                os.unlink(path)
        elif kind == "posix-mq":
            import posix_ipc  # type: ignore[import-not-found,unused-ignore]

            name = "/" + _short(str(ident))
            try:
                posix_ipc.MessageQueue(name).close() if dry_run else posix_ipc.unlink_message_queue(name)
            except posix_ipc.ExistentialError:
                return False
        elif kind == "sysv-mq":
            import sysv_ipc  # type: ignore[import-not-found,unused-ignore]

            try:
                queue = sysv_ipc.MessageQueue(int(ident))
            except sysv_ipc.ExistentialError:
                return False
            if queue.uid != os.geteuid():
                return False  # same key, someone else's queue: not ours to remove
            if not dry_run:
                queue.remove()
        elif kind == "path":
            st = os.lstat(str(ident))
            if stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                return False
            if not dry_run:
                os.unlink(str(ident))
    except FileNotFoundError:
        return False
    return True


def describe(kind: str, ident: str | int) -> str:
    if kind in ("shm", "sem"):
        return f"shared memory  {SHM_DIR}/{_entry(kind, ident)[1]}"
    if kind == "posix-mq":
        return f"POSIX queue    /{_short(str(ident))}"
    if kind == "sysv-mq":
        return f"SysV queue     key {ident}"
    return f"file           {ident}"


def clean(dry_run: bool = False, tmp: str | None = None, out: Any = None,
          result_dirs: tuple[str, ...] = RESULT_DIRS) -> Plan:
    """Remove (or with dry_run list) what stale runs left behind; returns the plan."""
    out = out or sys.stdout
    todo = plan(tmp, result_dirs)
    verb = "would remove" if dry_run else "removed"
    removed = 0
    for kind, ident in todo.objects:
        try:
            gone = _remove(kind, ident, dry_run)
        except (OSError, ImportError) as exc:  # report and go on: one stubborn object must not block the rest
            print(f"ipclab: warning: cannot remove {describe(kind, ident)}: {exc}", file=sys.stderr)
            continue
        if gone:
            removed += 1
            print(f"{verb} {describe(kind, ident)}", file=out)
    for path in todo.dirs:
        if not dry_run:
            shutil.rmtree(path, ignore_errors=True)
        print(f"{verb} run dir        {path}", file=out)
    if not removed and not todo.dirs:
        print("nothing to clean", file=out)
    else:
        print(f"{verb} {removed} object(s) and {len(todo.dirs)} run dir(s)", file=out)
    if todo.live:
        print(f"left alone: {len(todo.live)} live run(s): {', '.join(todo.live)}", file=out)
    if todo.live_objects:
        print(f"left alone: {todo.live_objects} object(s) of live runs elsewhere", file=out)
    return todo


def cmd_clean(args: argparse.Namespace) -> int:
    clean(dry_run=args.dry_run)
    return 0


