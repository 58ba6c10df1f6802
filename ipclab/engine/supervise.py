"""Supervision of one trial: set up the transport, start the workers, drive the control protocol, clean up.

CONFIG -> READY (every worker) -> START to the servers -> STARTED -> START to the clients -> RESULT | ERROR, then
EXIT; leftovers are killed and the transport torn down in a ``finally`` that runs with SIGINT/SIGTERM blocked, so
an interrupt can never cut a cleanup short. Every way a worker can fail becomes one WorkerError line: an ERROR it
reported (naming a peer killed by a signal, when that is the cause), a death (its exit status and the last line of
its stderr), a malformed message, or a timeout naming who did not answer and the budget. Launcher-agnostic: it
sees WorkerHandles and their control channels (select()able descriptors).
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import WorkerError
from .launch import Launcher, WorkerHandle, WorkerSpec, describe_exit
from .rundir import blocked_signals

SETUP_TIMEOUT = 30.0  # s at most for every worker to start and open its endpoint (and never more than --timeout)
EXIT_GRACE = 2.0  # s a worker gets to exit after EXIT before it is killed
PEER_GRACE = 0.2  # s to see whether a failing worker's peer was killed (its death reached the survivor first)
FAILED_GRACE = 0.25  # s a worker of a failed trial gets to exit: it is usually blocked on a dead peer's channel


@dataclass(frozen=True)
class Timing:
    """The supervisor's waits (injectable: fast tests shorten the graces) and its clock."""

    setup: float = SETUP_TIMEOUT
    exit_grace: float = EXIT_GRACE
    peer_grace: float = PEER_GRACE
    failed_grace: float = FAILED_GRACE
    clock: Callable[[], float] = time.monotonic


class Supervisor:
    """Runs trials through a launcher."""

    def __init__(self, launcher: Launcher, timing: Timing | None = None) -> None:
        self.launcher = launcher
        self.timing = timing or Timing()

    def run_trial(self, transport: Any, specs: list[WorkerSpec], config: dict[str, Any],
                  placement: dict[str, list[int] | None], budget: float) -> dict[str, Any]:
        """One trial: the raw results by worker key. ``config`` is the CONFIG common to every worker.

        ``budget`` (--timeout, plus --duration) bounds every phase: each set-up wait is the smaller of it and
        the set-up limit, so ``--timeout 1`` fails a worker stuck in set-up after 1 s.
        """
        setup = min(self.timing.setup, budget)
        workers: list[WorkerHandle] = []
        finished = False
        try:
            address = transport.setup()
            for spec in specs:
                workers.append(self.launcher.start(replace(spec, fds=transport.fds_for(spec.role, spec.index))))
            transport.close_parent_fds()
            base = {**config, "type": "CONFIG", "address": address,
                    "pids": {w.spec.key: w.pid for w in workers}}  # peers' pids (signals need them)
            self.configure(workers, base, placement, setup)
            self.collect(workers, "READY", setup, "start")
            # Servers first, and clients only once every server says it is entering its loop: a writer that
            # starts while its reader is still being scheduled would overflow a datagram socket's buffer
            # before the first read (UDP would lose the whole warm-up, and measure the scheduler).
            servers = [w for w in workers if w.spec.role == "server"]
            for w in servers:
                self._send(w, {"type": "START"})
            self.collect(servers, "STARTED", setup, "start its loop")
            for w in workers:
                if w.spec.role != "server":
                    self._send(w, {"type": "START"})
            results = self.collect(workers, "RESULT", budget, "finish")
            finished = True
            return {key: message["raw"] for key, message in results.items()}
        finally:
            with blocked_signals():
                # A finished trial's workers are waiting for EXIT and leave at once; a failed trial's survivors
                # are usually blocked on the dead peer's channel, where no EXIT reaches them: a short grace.
                self.stop(workers, self.timing.exit_grace if finished else min(self.timing.exit_grace,
                                                                                self.timing.failed_grace))
                transport.teardown()

    def configure(self, workers: list[WorkerHandle], base: dict[str, Any],
                  placement: dict[str, list[int] | None], setup: float) -> None:
        """CONFIG to each worker (a remote launcher's supervisor first configures the other host's workers and
        waits up to ``setup`` seconds for their endpoints)."""
        for w in workers:
            self._send(w, {**base, "role": w.spec.role, "index": w.spec.index, "cpus": placement.get(w.spec.key)})

    def collect(self, workers: list[WorkerHandle], kind: str, timeout: float, verb: str) -> dict[str, Any]:
        """One ``kind`` message from each worker, by key; WorkerError on an ERROR, a death or the timeout."""
        clock = self.timing.clock
        deadline = clock() + timeout
        pending = list(workers)
        got: dict[str, Any] = {}
        while pending:
            for w in list(pending):
                message = self._next(w, kind)
                if message is None:
                    if w.channel.reader.closed:
                        raise WorkerError(self.death(w))
                    continue
                if message["type"] == "ERROR":
                    error = f"{w.spec.label} failed: {message.get('message')}"
                    killed = self.killed_peer(workers, w)  # a dead peer is the cause, the EOF/EPIPE its effect
                    raise WorkerError(f"{killed} (then {error})" if killed else error, message.get("traceback"))
                got[w.spec.key] = message
                pending.remove(w)
            if not pending:
                return got
            remaining = deadline - clock()
            if remaining <= 0:
                who = " and ".join(w.spec.label for w in pending)
                raise WorkerError(f"{who} did not {verb} within {timeout:g} s ({self._why_late(pending, kind)})")
            ready, _, _ = select.select([w.channel for w in pending], [], [], remaining)
            for ch in ready:
                try:
                    ch.reader.feed()
                except ConnectionResetError:  # it died with our START/CONFIG unread: a death like any other
                    ch.reader.closed = True
        return got

    def _why_late(self, pending: list[WorkerHandle], kind: str) -> str:
        """The timeout's advice: a slow measurement can be given more time; a worker that never got through its
        set-up is stuck (more time rarely helps), and its own last words say where."""
        if kind == "RESULT":
            return "timed out; raise --timeout if the cell is just slow"
        tail = next((t for t in (w.stderr_tail() for w in pending) if t), "")
        last = f"; its last words: {tail}" if tail else ""
        return (f"timed out in set-up: stuck opening the transport, not slow{last}; set-up waits the smaller of "
                f"--timeout and {self.timing.setup:g} s")

    def _next(self, w: WorkerHandle, kind: str) -> dict[str, Any] | None:
        """The first buffered ``kind`` or ERROR message of a worker (others are skipped), or None for now."""
        while True:
            try:
                message = w.channel.reader.pop()
            except ValueError as exc:  # oversized or malformed: a broken worker, not a crash of the sweep
                raise WorkerError(f"{w.spec.label} sent an unusable control message: {exc}") from None
            if message is None or message["type"] in (kind, "ERROR"):
                return message

    def _send(self, w: WorkerHandle, message: dict[str, Any]) -> None:
        try:
            w.channel.send(message)
        except (BrokenPipeError, ConnectionResetError):  # it died before reading: report how it died
            raise WorkerError(self.death(w)) from None

    def killed_peer(self, workers: list[WorkerHandle], survivor: WorkerHandle) -> str | None:
        """The death of a worker killed by a signal, if one is, so the reason names it and not its effect.

        One peer grace for all peers together (not per peer: a 64-client fan-in would wait 13 s).
        """
        clock = self.timing.clock
        deadline = clock() + self.timing.peer_grace
        while True:
            for w in workers:
                code = w.poll() if w is not survivor else None
                if code is not None and code < 0:
                    return self.death(w)
            if clock() >= deadline:
                return None
            time.sleep(0.005)

    def death(self, w: WorkerHandle) -> str:
        """How a worker whose control channel closed ended: exit status or signal, and its last stderr line."""
        code = w.wait(self.timing.exit_grace)
        if code is None:
            return f"{w.spec.label} closed its control channel but is still running"
        what = describe_exit(w.spec.label, code)
        tail = w.stderr_tail()
        return f"{what}: {tail}" if tail else what

    def stop(self, workers: list[WorkerHandle], grace: float | None = None) -> None:
        """EXIT to every worker, one shared grace period (default: exit_grace), then kill whoever is left; close
        the channels."""
        for w in workers:
            try:
                w.channel.send({"type": "EXIT"})
            except OSError:
                pass
        clock = self.timing.clock
        deadline = clock() + (self.timing.exit_grace if grace is None else grace)
        for w in workers:
            if w.wait(max(0.0, deadline - clock())) is None:
                w.kill()
                w.wait(None)
            w.close()
