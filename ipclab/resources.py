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


def is_exhaustion(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in EXHAUSTION


def explain(exc: OSError) -> str:
    """One line for ``exc``: the limit by name and value when it is a resource limit, else ``str(exc)``."""
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
        name = str(exc.filename or "")
        if name.startswith("/dev/shm") or "shm" in str(exc).lower():
            return (f"no space left in /dev/shm{_space('/dev/shm')}{where}: remove leftovers with 'ipclab clean', "
                    "use smaller sizes, or enlarge the tmpfs (mount -o remount,size=... /dev/shm)")
        if name.startswith("/dev/mqueue") or "queue" in str(exc).lower():
            return (f"message queue limit reached{where}: fs.mqueue.queues_max is "
                    f"{_read('/proc/sys/fs/mqueue/queues_max')}, RLIMIT_MSGQUEUE is {_rlimit('RLIMIT_MSGQUEUE')[0]} "
                    "bytes; remove leftovers with 'ipclab clean' or raise the limit")
        return f"no space left on device{where}{_space(name or '.')}: free some space or write elsewhere"
    if code == errno.ENOMEM:
        return (f"out of memory{where}: the kernel refused an allocation (RLIMIT_AS is {_rlimit('RLIMIT_AS')[0]}, "
                f"RLIMIT_MSGQUEUE {_rlimit('RLIMIT_MSGQUEUE')[0]} bytes); use smaller sizes or counts")
    if code == errno.EAGAIN:  # fork() under RLIMIT_NPROC; a stray non-blocking EAGAIN is rare here
        soft, _ = _rlimit("RLIMIT_NPROC")
        return (f"resource temporarily unavailable{where}: possibly the process limit RLIMIT_NPROC ({soft}) "
                f"or kernel.pid_max ({_read('/proc/sys/kernel/pid_max')}); {exc.strerror or exc}")
    return str(exc)
