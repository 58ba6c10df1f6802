"""Where a result goes: the path checked completely before the first cell, and what happens when a save fails.

``run`` writes its result after every cell by writing a temp file and renaming it over the target, so the
target is replaced, never written into: an existing device node, FIFO or socket (``-o /dev/null`` as root) is
refused, and an existing result is kept unless ``--force``. Everything that would fail the first save (a name
over NAME_MAX, a trailing slash, a parent that is a file, a directory we cannot or should not write) is found
before any measurement, as one line naming the path, the problem and the fix.

Temp files are named ``.ipclab-PID-XXXXXXXX.json.tmp``: a writer killed during a save (SIGKILL) leaves one
behind, and :func:`stale_temp_files` finds those whose writer is gone, for ``ipclab clean``.

When a save still fails during the sweep (a full disk), :func:`rescue` writes what was measured somewhere else
and says where.
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from .errors import ConfigError, IpclabError

TEMP_PREFIX = ".ipclab-"
TEMP_SUFFIX = ".json.tmp"
_TEMP_NAME = re.compile(r"^\.ipclab-(?:(\d+)-)?[A-Za-z0-9_]+\.json\.tmp$")
_ORPHAN_AGE_S = 3600.0  # a temp without a pid (older ipclab) is stale once nothing could still be writing it


class SaveFailed(IpclabError):
    """Saving the result failed mid-sweep; the message says where what was measured went instead (exit 1)."""


def temp_prefix() -> str:
    """The prefix of this process's temp files: the pid lets ``clean`` tell a live writer from a dead one."""
    return f"{TEMP_PREFIX}{os.getpid()}-"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _name_max(directory: str) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_target(path: Any, flag: str = "--output", *, force: bool | None = None) -> str:
    """``path`` if a result can be saved there; else a one-line ConfigError naming the path and the fix.

    ``force`` None leaves out the existing-file check (the option table checks the path before it knows
    --force); False refuses an existing file, True allows replacing a regular file. Never anything else.
    """
    if not isinstance(path, str) or path == "":
        raise ConfigError(f"{flag}: {path!r} is not a file path")
    if path == "-":
        return path
    if path.endswith(os.sep) or os.path.isdir(path):
        stem = path.rstrip(os.sep) or os.sep
        what = "is a directory" if os.path.isdir(path) else "ends in '/', which names a directory"
        raise ConfigError(f"{flag}: {path!r} {what}; give a file name such as {os.path.join(stem, 'run.json')}")
    parent = os.path.dirname(os.path.abspath(path)) or os.sep
    _check_parent(parent, flag)
    name = os.path.basename(path)
    limit = _name_max(parent)
    if len(os.fsencode(name)) > limit:
        raise ConfigError(f"{flag}: the file name {name[:40]!r}... is {len(os.fsencode(name))} bytes, above this "
                          f"file system's limit of {limit} (NAME_MAX); choose a shorter name")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot use {path!r}: {exc.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{flag}: {path!r} exists and is {_kind(st.st_mode)}; the result would replace it "
                          "with a regular file: give the path of a new file")
    if st is not None and force is False:
        raise ConfigError(f"{flag}: {path!r} already exists; add --force to overwrite it or choose another name")
    _probe(parent, flag)
    return path


def _check_parent(parent: str, flag: str) -> None:
    try:
        st = os.stat(parent)
    except FileNotFoundError:
        raise ConfigError(f"{flag}: directory {parent!r} does not exist; create it or choose another path") from None
    except NotADirectoryError:
        raise ConfigError(f"{flag}: {parent!r} is not a directory (a part of it is a file); choose another "
                          "path") from None
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot use directory {parent!r}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{flag}: {parent!r} is a file, not a directory; choose another path")


def _probe(parent: str, flag: str) -> None:
    """A real write, not os.access: root passes access() on read-only mounts. A directory without any write
    bit is read-only on purpose: root could write there, but is not asked to."""
    what = f"{flag}: directory {parent!r} is not writable"
    if not os.stat(parent).st_mode & 0o222:
        raise ConfigError(f"{what} (mode {stat.S_IMODE(os.stat(parent).st_mode):04o}); choose a directory you can "
                          "write to")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=temp_prefix(), suffix=TEMP_SUFFIX):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} ({exc.strerror}); choose a directory you can write to") from None


def check_default_dir(directory: str = "results") -> None:
    """The default results/: created if absent; refused if it is not a directory, is read-only, or belongs to
    someone else (a results/ another user planted in a shared working directory)."""
    try:
        os.mkdir(directory)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"--output: cannot create the default directory {directory}/ ({exc.strerror}); pass "
                          "--output PATH") from None
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise ConfigError(f"--output: the default directory {directory}/ is {what}; pass --output PATH")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"--output: the default directory {directory}/ belongs to another user (uid "
                          f"{st.st_uid}); pass --output PATH in a directory of yours")
    if not st.st_mode & 0o200:
        raise ConfigError(f"--output: the default directory {directory}/ is read-only (mode "
                          f"{stat.S_IMODE(st.st_mode):04o}); make it writable or pass --output PATH")
    _probe(os.path.abspath(directory), "--output")


def refuse_non_regular(path: str) -> None:
    """At every save: the target may have been replaced by a device or FIFO since the check; never rename over
    one. A symbolic link is replaced itself (what it points to is left alone)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise OSError(errno.EEXIST, f"{path!r} is now {_kind(st.st_mode)}, not the result file", path)


def rescue(text: str, failed: str, exc: OSError) -> str:
    """Write ``text`` (the result measured so far) where it fits: the temp directory, then home; the path."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"ipclab-rescued-{stamp}-{os.getpid()}.json"
    for directory in (tempfile.gettempdir(), os.path.expanduser("~")):
        path = os.path.join(directory, name)
        if os.path.dirname(os.path.abspath(failed)) == directory:
            continue  # the file system that just failed
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return path
        except OSError:
            try:
                os.unlink(path)
            except OSError:
                pass
    sys.stdout.write(text)  # last resort: the measurements on stdout rather than nowhere
    sys.stdout.flush()
    return "standard output"


def owned_entries(directory: str, wanted: Callable[[str], bool]) -> list[tuple[str, os.stat_result]]:
    """Entries of ``directory`` whose name is ``wanted`` and that belong to us (lstat: a symlink is itself), sorted;
    an unreadable directory has none. What clean may consider removing, and nothing of another user's."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if not wanted(name):
            continue
        try:
            st = os.lstat(os.path.join(directory, name))
        except OSError:
            continue
        if st.st_uid == os.geteuid():
            out.append((name, st))
    return out


def stale_temp_files(directory: str) -> list[str]:
    """Temp files of interrupted saves in ``directory`` that no live process is writing (for ``ipclab clean``).

    Only ours (our uid), only regular files, only names this module makes; a pid that is alive (even a reused
    one) keeps its file: clean never removes what a live process may own.
    """
    out = []
    for name, st in owned_entries(directory, lambda n: _TEMP_NAME.match(n) is not None):
        match = _TEMP_NAME.match(name)
        path = os.path.join(directory, name)
        if match is None or not stat.S_ISREG(st.st_mode):
            continue
        if match.group(1) is not None:
            if _alive(int(match.group(1))):
                continue
        elif _dt.datetime.now().timestamp() - st.st_mtime < _ORPHAN_AGE_S:
            continue
        out.append(path)
    return sorted(out)


def _alive(pid: int) -> bool:
    """A process with this pid exists (a reused pid counts: a temp file is kept rather than risked)."""
    from .cleanup import pid_exists

    return pid_exists(pid)
