"""Exhausted resources as one line that names the limit and the way to raise it.

``[Errno 24] Too many open files`` tells a user what happened but not which limit, what it is set to, or what
to do; these messages say all three. Used by the runner (a failed cell's reason), the worker (its ERROR line)
and the CLI (an exhaustion outside any cell), so no resource error ever reaches the user as a traceback.
"""

from __future__ import annotations

import errno
import os

# errno values that mean "a limit was reached", not "a bug"
EXHAUSTION = {errno.EMFILE, errno.ENFILE, errno.ENOSPC, errno.ENOMEM, errno.EAGAIN, errno.EDQUOT}
# posix_ipc and sysv_ipc turn the ENOSPC of mq_open(3) / msgget(2) into an OSError with a text and no errno.
POSIX_MQ_FULL = "insufficient space for a new queue"  # mq_open: fs.mqueue.queues_max queues exist
SYSV_MQ_FULL = "system limit for message queues"  # msgget: kernel.msgmni queues exist
_PATH_LOCALS = ("path", "tmp", "filename")


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _rlimit(name: str) -> tuple[str, str]:
    try:
        import resource

        soft, hard = resource.getrlimit(getattr(resource, name))
    except (ImportError, AttributeError, OSError, ValueError):
        return "?", "?"

    def show(v: int) -> str:
        return "unlimited" if v == resource.RLIM_INFINITY else str(v)

    return show(soft), show(hard)


def _space(path: str) -> str:
    try:
        st = os.statvfs(path)
    except OSError:
        return ""
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    return f" ({free // 1024 // 1024} MiB free of {total // 1024 // 1024} MiB)"


def _path_of(exc: OSError) -> str:
    """The file an error is about. Calls on a descriptor (posix_fallocate, write) carry no filename; the
    function that raised it then holds the path it was working on (a segment in /dev/shm, a result's temp file)."""
    if exc.filename:
        return str(exc.filename)
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):  # innermost first: the function that was working on the file
        for key in _PATH_LOCALS:
            value = frame.f_locals.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def _filesystem(path: str) -> str:
    """'/mnt/data (ext4) (3 MiB free of 100 MiB)': the mount point holding ``path`` (or its nearest existing
    parent), its type and its space."""
    here = os.path.abspath(path)
    while not os.path.exists(here) and os.path.dirname(here) != here:
        here = os.path.dirname(here)
    while not os.path.ismount(here):
        here = os.path.dirname(here)
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            kinds = {fields[1]: fields[2] for fields in (line.split() for line in f) if len(fields) > 2}
    except OSError:
        kinds = {}
    return (f"{here} ({kinds[here]})" if here in kinds else here) + _space(here)


def _queue_limit(exc: OSError) -> str | None:
    text = str(exc).lower()
    if POSIX_MQ_FULL in text or (exc.errno == errno.ENOSPC and str(exc.filename or "").startswith("/dev/mqueue")):
        return (f"too many POSIX message queues: fs.mqueue.queues_max is {_read('/proc/sys/fs/mqueue/queues_max')}; "
                "remove leftovers with 'ipclab clean' or raise it with sysctl -w fs.mqueue.queues_max=N")
    if SYSV_MQ_FULL in text:
        return (f"too many System V message queues: kernel.msgmni is {_read('/proc/sys/kernel/msgmni')}; remove "
                "leftovers with 'ipclab clean' (ipcs -q lists them) or raise it with sysctl -w kernel.msgmni=N")
    return None


def is_exhaustion(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and (exc.errno in EXHAUSTION or _queue_limit(exc) is not None)


def explain(exc: OSError) -> str:
    """One line for ``exc``: the limit by name and value when it is a resource limit, else ``str(exc)``."""
    queues = _queue_limit(exc)
    if queues:
        return queues
    code = exc.errno
    where = f" ({exc.filename})" if exc.filename else ""
    if code == errno.EMFILE:
        soft, hard = _rlimit("RLIMIT_NOFILE")
        return (f"too many open files{where}: the per-process limit RLIMIT_NOFILE is {soft} (hard limit {hard}); "
                "raise it with 'ulimit -n 1024'")
    if code == errno.ENFILE:
        return (f"the system-wide table of open files is full{where}: fs.file-max is "
                f"{_read('/proc/sys/fs/file-max')}; close programs or raise it with sysctl fs.file-max")
    if code in (errno.ENOSPC, errno.EDQUOT):
        name = _path_of(exc)
        what = "quota exceeded" if code == errno.EDQUOT else "no space left"
        if name.startswith("/dev/shm") or (not name and "shm" in str(exc).lower()):
            return (f"{what} in /dev/shm{_space('/dev/shm')} ({name or 'shared memory'}): remove leftovers with "
                    "'ipclab clean', use smaller sizes, or enlarge the tmpfs (mount -o remount,size=... /dev/shm)")
        if not name:  # nothing says which filesystem: do not guess one (the free space of '.' misled)
            return f"{what} on a device ({exc.strerror or exc}); the error names no file: check /dev/shm and --output"
        return f"{what} on {_filesystem(name)}, writing {name}: free some space there or write elsewhere"
    if code == errno.ENOMEM:
        return (f"out of memory{where}: the kernel refused an allocation (RLIMIT_AS is {_rlimit('RLIMIT_AS')[0]}, "
                f"RLIMIT_MSGQUEUE {_rlimit('RLIMIT_MSGQUEUE')[0]} bytes); use smaller sizes or counts")
    if code == errno.EAGAIN:  # fork() under RLIMIT_NPROC; a stray non-blocking EAGAIN is rare here
        soft, _ = _rlimit("RLIMIT_NPROC")
        return (f"resource temporarily unavailable{where}: possibly the process limit RLIMIT_NPROC ({soft}) "
                f"or kernel.pid_max ({_read('/proc/sys/kernel/pid_max')}); {exc.strerror or exc}")
    return str(exc)
