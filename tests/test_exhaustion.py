"""An exhausted resource is named by what ran out (fast tier: the errors are raised the way the real calls raise
them, nothing is filled up on a shared machine).

posix_fallocate(2) and write(2) fail with ENOSPC and no file name: the message must still name /dev/shm (its
size, and 'ipclab clean') or the filesystem being written, never the free space of the current directory.
posix_ipc and sysv_ipc report a full queue table as an OSError with a text and no errno: the message names
fs.mqueue.queues_max / kernel.msgmni and the sysctl that raises them, and the CLI treats them as exhaustion.
"""

from __future__ import annotations

import errno
import os

import pytest

from ipclab.resources import explain, is_exhaustion


def _fallocate_failed(path: str) -> None:
    """Like a transport creating its segment: the path is known here, the kernel's error does not carry it."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _write_failed(path: str) -> None:
    tmp = path + ".tmp"  # noqa: F841 - what a save holds while it writes
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _caught(fn, *args) -> OSError:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value


def _mount_of(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def test_a_full_dev_shm_names_dev_shm_its_size_and_clean() -> None:
    exc = _caught(_fallocate_failed, "/dev/shm/ipclab-1234-ring")
    text = explain(exc)
    assert text.startswith("no space left in /dev/shm (")
    st = os.statvfs("/dev/shm")
    assert f"of {st.f_blocks * st.f_frsize // 1024 // 1024} MiB)" in text  # /dev/shm's size, not that of '.'
    assert "ipclab clean" in text and "/dev/shm/ipclab-1234-ring" in text
    assert is_exhaustion(exc)


def test_a_full_output_filesystem_is_named(tmp_path) -> None:
    target = str(tmp_path / "out" / "result.json")  # its directory does not even exist any more
    exc = _caught(_write_failed, target)
    text = explain(exc)
    assert text.startswith(f"no space left on {_mount_of(str(tmp_path))}")
    assert f"writing {target}" in text and "write elsewhere" in text


def test_no_file_at_all_is_not_blamed_on_the_current_directory() -> None:
    text = explain(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert "names no file" in text and "/dev/shm" in text
    st = os.statvfs(".")
    assert f"of {st.f_blocks * st.f_frsize // 1024 // 1024} MiB" not in text or _mount_of(".") == "/dev/shm"


@pytest.mark.parametrize(("error", "sysctl", "proc"), [
    ("Insufficient space for a new queue", "fs.mqueue.queues_max", "/proc/sys/fs/mqueue/queues_max"),  # posix_ipc
    ("The system limit for message queues has been reached", "kernel.msgmni", "/proc/sys/kernel/msgmni"),  # sysv_ipc
])
def test_queue_count_limits_name_their_sysctl(error: str, sysctl: str, proc: str) -> None:
    exc = OSError(error)  # what the C extensions raise: a text, no errno
    text = explain(exc)
    assert f"sysctl -w {sysctl}=N" in text and "ipclab clean" in text
    if os.path.exists(proc):
        with open(proc, encoding="ascii") as f:
            assert f"{sysctl} is {f.read().strip()};" in text
    assert is_exhaustion(exc)  # outside a cell the CLI prints it as one line, not a traceback
