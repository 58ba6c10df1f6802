"""Inline launcher: workers as threads of this process, for tests of the engine without processes.

Each worker runs the real worker loop (ipclab.engine.worker.serve) in a thread, over a real control channel of bytes
(two pipes, the shape of a child's stdin/stdout), so the sweep, policy, supervision, patterns' run()/metrics()
and statistics are the ones a real run uses. The measured channel must be in-process too: run it with
``ipclab.transports.loopback`` (or a subclass), whose channels are queues in this process.

A thread cannot be killed: ``kill()`` abandons it (the supervisor sees it as killed by SIGKILL) and the thread
ends once the trial's transport is torn down (which wakes every blocked loopback read). ``close()`` joins every
thread the launcher started, so a test ends with no thread left.
"""

from __future__ import annotations

import signal
import threading
import traceback

from ..control import ControlChannel, pipe_pair
from .launch import WorkerSpec
from .worker import serve

JOIN_TIMEOUT = 10.0  # s close() waits for an abandoned thread (a loopback teardown wakes it at once)


class InlineWorker:
    """A WorkerHandle over a thread running the worker loop."""

    def __init__(self, spec: WorkerSpec, channel: ControlChannel, child: ControlChannel) -> None:
        self.spec = spec
        self.channel = channel
        self.thread = threading.Thread(target=self._body, args=(child,), name=f"ipclab-inline-{spec.key}",
                                       daemon=True)
        self.code: int | None = None  # serve()'s return once the thread ends
        self.killed = False
        self.last_error = ""  # an exception that escaped serve() (a bug), as a stderr tail would show it

    @property
    def pid(self) -> int | None:
        return None  # no process of its own; a transport that signals its peers cannot run inline

    def poll(self) -> int | None:
        if self.killed:
            return -signal.SIGKILL
        return None if self.thread.is_alive() else self.code

    def wait(self, timeout: float | None) -> int | None:
        if not self.killed:
            self.thread.join(timeout)
        return self.poll()

    def _body(self, child: ControlChannel) -> None:
        try:
            self.code = serve(child, pin=False)
        except BaseException as exc:  # noqa: BLE001 - a bug in the loop: report it like a dying process
            self.last_error = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.code = 1
        finally:
            child.close()

    def kill(self) -> None:
        self.killed = True

    def stderr_tail(self) -> str:
        return self.last_error

    def close(self) -> None:
        self.channel.close()


class Inline:
    """Starts each worker as a thread (no CPU pinning: the threads share this process)."""

    name = "inline"

    def __init__(self) -> None:
        self.workers: list[InlineWorker] = []

    def start(self, spec: WorkerSpec) -> InlineWorker:
        parent, child = pipe_pair()
        worker = InlineWorker(spec, parent, child)
        self.workers.append(worker)
        worker.thread.start()
        return worker

    def alive(self) -> list[str]:
        """Names of the threads still running."""
        return [w.thread.name for w in self.workers if w.thread.is_alive()]

    def close(self) -> None:
        """Join every thread this launcher started (``alive()`` then names any that would not end)."""
        for w in self.workers:
            w.thread.join(JOIN_TIMEOUT)
        self.workers = [w for w in self.workers if w.thread.is_alive()]
