"""The Launcher seam: how a worker comes to life, and the handle the supervisor holds on it.

A launcher starts one worker per role and hands back a :class:`WorkerHandle`: the control channel (bytes both ways,
carrying length-prefixed JSON, see ipclab.control), and poll/wait/kill plus the tail of the worker's stderr. The
supervisor (ipclab.engine.supervise) speaks the same protocol whatever the launcher:

- :class:`LocalProcess`: a fresh interpreter per worker (``python -m ipclab.worker``) inheriting the transport's
  file descriptors; the control channel is a socketpair (default) or the child's stdin/stdout (``stdio=True``,
  exactly what a launcher that runs the worker on another host through a command sees). A worker starts with a
  clean import path: ``python -m`` would put the current directory first on sys.path (a ``socket.py`` there
  would run in every worker), so it runs in the run's private directory, with ``-P`` where Python has it, and
  relative PYTHONPATH entries made absolute (plug-ins named by IPCLAB_EXTRA_TRANSPORTS still load);
- :class:`Remote`: ``COMMAND PYTHON -m ipclab.worker --stdio`` on another host (ssh, ip netns exec), control
  over the command's stdin/stdout, no fds passed (ipclab.engine.remote splits a run between the hosts);
- ``Inline`` (ipclab.engine.inline): workers as threads of this process, for tests without processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from ..control import ControlChannel


@dataclass(frozen=True)
class WorkerSpec:
    """One worker to start: its result key, role, index, human label, inherited fds and the run directory."""

    key: str
    role: str
    index: int
    label: str
    fds: tuple[int, ...] = ()  # descriptors the worker inherits (launchers that cannot pass them ignore them)
    workdir: str = ""  # the run's private directory (stderr files live there)


class WorkerHandle(Protocol):
    """A started worker as the supervisor sees it."""

    spec: WorkerSpec
    channel: ControlChannel

    @property
    def pid(self) -> int | None:
        """Its process id where it has one of its own (peers signal it), else None."""

    def poll(self) -> int | None:
        """Exit status once it has ended (negative: killed by that signal), else None."""

    def wait(self, timeout: float | None) -> int | None:
        """Exit status after at most ``timeout`` s (None: still running)."""

    def kill(self) -> None:
        """End it now (it may be reaped by a later ``wait``)."""

    def stderr_tail(self) -> str:
        """The last non-empty line it wrote to stderr (its own last word on a death), or ""."""

    def close(self) -> None:
        """Release the control channel (after the worker ended or was killed)."""


class Launcher(Protocol):
    """Starts workers. ``close()`` is called once the sweep is over (join threads, end sessions)."""

    name: str

    def start(self, spec: WorkerSpec) -> WorkerHandle: ...

    def close(self) -> None: ...


class _Process:
    """A WorkerHandle over a subprocess.Popen."""

    def __init__(self, spec: WorkerSpec, proc: subprocess.Popen[bytes], channel: ControlChannel,
                 stderr_path: str) -> None:
        self.spec = spec
        self.proc = proc
        self.channel = channel
        self.stderr_path = stderr_path

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        self.proc.kill()

    def stderr_tail(self) -> str:
        return last_line(self.stderr_path)

    def close(self) -> None:
        self.channel.close()


class LocalProcess:
    """Fresh interpreters on this host, with the transport's fds passed; die with the runner (PDEATHSIG)."""

    name = "local"

    def __init__(self, *, stdio: bool = False) -> None:
        self.stdio = stdio  # control over the child's stdin/stdout instead of an inherited socketpair
        self._started = 0

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        self._started += 1
        stderr_path = os.path.join(spec.workdir, f"worker-{self._started}.stderr")
        with open(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as err:
            if self.stdio:
                return self._start_stdio(spec, err, stderr_path)
            return self._start_socket(spec, err, stderr_path)

    def _start_socket(self, spec: WorkerSpec, err: IO[bytes], stderr_path: str) -> WorkerHandle:
        parent, child = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [*worker_argv(), str(child.fileno()), str(os.getpid())],
                pass_fds=(child.fileno(), *spec.fds), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, env=worker_env(), close_fds=True, cwd=worker_cwd(spec),
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        return _Process(spec, proc, ControlChannel(parent, parent), stderr_path)

    def _start_stdio(self, spec: WorkerSpec, err: IO[bytes], stderr_path: str) -> WorkerHandle:
        proc = subprocess.Popen(
            [*worker_argv(), "--stdio", str(os.getpid())],
            pass_fds=spec.fds, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            env=worker_env(), close_fds=True, bufsize=0, cwd=worker_cwd(spec),
        )
        assert proc.stdin is not None and proc.stdout is not None
        return _Process(spec, proc, ControlChannel(proc.stdout, proc.stdin), stderr_path)

    def close(self) -> None:
        pass


class _Session(_Process):
    """A remote launcher's process, head of a session of its own: ``kill()`` ends the whole group (a wrapper
    shell's children too)."""

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # already gone (and reaped)
            pass


class Remote:
    """Workers on another host: ``COMMAND... PYTHON -m ipclab.worker --stdio``, control over its stdin/stdout.

    The command prefix (``ssh lab2``, ``ip netns exec peer``, ``docker exec -i box``) is run here in a session
    of its own (the terminal's Ctrl-C goes to the runner, which stops the workers in order); killing it, or the
    runner going away, closes the worker's stdin there, and stdin EOF ends the worker (ipclab.engine.worker).
    No fds are passed: the worker makes its own endpoint there (ipclab.engine.remote).
    """

    name = "remote"

    def __init__(self, prefix: Sequence[str], python: str = "python3") -> None:
        self.prefix = tuple(prefix)
        self.python = python
        self._started = 0

    def argv(self) -> list[str]:
        return [*self.prefix, self.python, "-m", "ipclab.worker", "--stdio"]

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        self._started += 1
        stderr_path = os.path.join(spec.workdir, f"remote-{self._started}.stderr")
        with open(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as err:
            proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                    env=worker_env(), cwd="/", close_fds=True, bufsize=0, start_new_session=True)
        assert proc.stdin is not None and proc.stdout is not None
        return _Session(spec, proc, ControlChannel(proc.stdout, proc.stdin), stderr_path)

    def close(self) -> None:
        pass


def describe_exit(label: str, code: int) -> str:
    if code < 0:
        return f"{label} killed by {signal.Signals(-code).name}"
    return f"{label} exited with status {code}"


def last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def worker_argv() -> list[str]:
    """``python -m ipclab.worker`` without the current directory on sys.path: ``-P`` (Python 3.11+) keeps
    ``-m`` from prepending it; older interpreters rely on worker_cwd, the run's private directory."""
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe, "-m", "ipclab.worker"]


def worker_cwd(spec: WorkerSpec) -> str | None:
    """The run's private 0700 directory: nothing but our own sockets and stderr files is ever there."""
    return spec.workdir or None


def worker_env() -> dict[str, str]:
    """The workers import this very ipclab, wherever it was imported from (installed or a source tree), and
    what PYTHONPATH names, each entry made absolute against the runner's directory (the workers run elsewhere);
    an empty entry, which would mean the workers' own directory, is dropped."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    extra = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root, *extra])
    return env
