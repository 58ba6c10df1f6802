"""The runner: for each cell (pattern x transport x size) and trial, set up, spawn, measure, clean up.

One straight line per trial: Transport.setup() in the parent -> spawn one fresh interpreter per role ->
CONFIG/READY/START(/STARTED)/RESULT over a private control socketpair -> kill leftovers and Transport.teardown() in a
``finally`` that runs with SIGINT/SIGTERM blocked, so an interrupt can never cut a cleanup short.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import control, results, stats
from .config import MiB, RunConfig, format_size
from .errors import Interrupted, IpclabError, WorkerError
from .patterns import get_pattern
from .patterns.common import Context
from .resources import explain
from .transports import get_transport, transport_ref
from .transports.base import RUN_FILE, CellSpec, Transport

SETUP_TIMEOUT = 30.0  # s for both workers to start and connect
EXIT_GRACE = 2.0  # s a worker gets to exit after EXIT before it is killed
PEER_GRACE = 0.2  # s to see whether a failing worker's peer was killed (its death reached the survivor first)
SPREAD_WARN = 0.10
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # blocked while OS objects are created or removed
HEADLINE = {"pingpong": "rtt_p50_us", "stream": "mb_s", "reqrep": "ttlb_p50_us", "fanin": "mb_s",
            "connect": "conn_p50_us"}
ROUND_TRIPS = ("pingpong", "reqrep", "connect")  # one exchange at a time: fewer messages per trial
_BLOBS = ("samples", "latency")  # raw sample arrays: summarised into quantiles, not stored per trial

ProgressFn = Callable[..., None]


def auto_count(pattern: str, size: int) -> int:
    """Messages per trial when --count/--duration are not given: ~64 MiB of traffic.

    Round trips: 200..5000 (each is a full wake-up cycle). Streams: 200..100000, so that a small-message stream
    lasts ~0.1-0.5 s rather than a few scheduler ticks.
    """
    budget = 64 * MiB // max(size, 1)
    if pattern in ROUND_TRIPS:
        return max(200, min(5000, budget))
    return max(200, min(100000, budget))


def auto_warmup(count: int) -> int:
    return min(100, count // 10)


def choose_placement(pin: str, transport: type[Transport], pattern: str,
                     keys: list[str]) -> tuple[dict[str, list[int] | None], str, list[str]]:
    """CPUs per worker, a description for table headers, and warnings.

    auto: workers of a blocking transport share one CPU, whatever the pattern. A wake-up that crosses vCPUs
    costs 60-180 us of CPU on a VM against 6-25 us on one CPU, and an unpinned run flips between the two from
    run to run; measured here, one CPU was faster, cheaper per message and steadier for streams too (pipe 64 KiB:
    3951 vs 319 MB/s; benchmarks/placement.py). Busy-polling transports get one CPU per side: two pollers on one
    CPU would cost a whole timeslice per message; so do streams over a transport without back-pressure (UDP),
    whose consumer must run in parallel to keep up. ``--pin cross`` shows what parallel sides buy.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    warnings: list[str] = []
    mode = pin
    if pin == "auto":
        # A producer that can outrun its consumer without ever blocking (no back-pressure: UDP) would, on the
        # consumer's CPU, overrun it before it is scheduled (44-58 % loss measured, against 0-2 % in parallel).
        overruns = not transport.reliable and pattern not in ROUND_TRIPS
        mode = "cross" if (transport.spins or overruns) else "same"
    if mode == "cross" and len(cpus) < 2:
        warnings.append(f"only {len(cpus)} CPU available: cross-CPU placement impossible, both workers share it")
        mode = "same"
    if mode == "none" or not cpus:
        return {k: None for k in keys}, "unpinned", warnings
    if mode == "same":
        cpu = cpus[-1]
        if transport.spins:
            warnings.append(f"{transport.name} busy-polls: two pollers on one CPU cost a scheduler timeslice "
                            "per message; use --pin cross")
        return {k: [cpu] for k in keys}, f"same CPU ({cpu})", warnings
    if mode == "cross":
        server, client = cpus[0], cpus[1]
    else:
        parts = [int(p) for p in mode.split(",")]
        server, client = parts[0], parts[-1]
    placed = {k: [server] if k.startswith("server") else [client] for k in keys}
    if server == client:
        return placed, f"same CPU ({server})", warnings
    return placed, f"cross CPUs (server {server}, client {client})", warnings


@dataclass
class _Worker:
    key: str
    role: str
    index: int
    label: str
    proc: subprocess.Popen[bytes]
    sock: socket.socket
    reader: control.Reader
    stderr_path: str
    message: dict[str, Any] | None = None
    done: bool = field(default=False)

    def fileno(self) -> int:
        return self.sock.fileno()


class Runner:
    """Runs a RunConfig; ``on_cell(result)`` is called after every cell (the CLI saves the file there)."""

    def __init__(self, config: RunConfig, *, on_cell: Callable[[dict[str, Any]], None] | None = None,
                 progress: ProgressFn | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.config = config
        self.on_cell = on_cell
        self.progress = progress or (lambda *a, **k: None)
        self.result = results.new_result(config, metadata)
        self.workdir: str | None = None
        self._current: dict[str, Any] | None = None  # the cell being measured (see _keep_partial_cell)
        self._spawned = 0

    # -- the sweep -----------------------------------------------------------------------------------
    def cells(self) -> list[tuple[str, str, int]]:
        c = self.config
        return [(p, t, s) for p in c.patterns for t in c.transports for s in c.sizes]

    def run(self) -> dict[str, Any]:
        cells = self.cells()
        self.progress("start", total=len(cells) * self.config.trials, cells=len(cells))
        # Signals wait while the private directory and its record come into being (and while they go away):
        # an interrupt in between would leave a directory that no finally block knows about.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self.workdir = tempfile.mkdtemp(prefix="ipclab-")  # 0700: sockets and FIFOs live here
            try:
                _write_run_record(self.workdir)
            except BaseException:
                shutil.rmtree(self.workdir, ignore_errors=True)
                raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        try:
            for pattern, transport, size in cells:
                cell = self._run_cell(pattern, transport, size)
                self.result["cells"].append(cell)
                if self.on_cell:
                    self.on_cell(self.result)
        except BaseException:
            self.result["interrupted"] = True
            self._keep_partial_cell()
            raise
        finally:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                shutil.rmtree(self.workdir, ignore_errors=True)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
            self.result["finished"] = results.now_iso()
        return self.result

    def _keep_partial_cell(self) -> None:
        """An interrupt mid-cell keeps the trials that cell had finished (saved with a warning)."""
        cell, self._current = self._current, None
        if cell is None or not cell["trials"] or any(c is cell for c in self.result["cells"]):
            return
        cell["summary"], cell["spread"] = summarize_trials([t["metrics"] for t in cell["trials"]])
        cell["warnings"].append(f"interrupted after {len(cell['trials'])} of {self.config.trials} trials")
        self.result["cells"].append(cell)

    def _run_cell(self, pattern: str, name: str, size: int) -> dict[str, Any]:
        c = self.config
        cls = get_transport(name)
        pat = get_pattern(pattern)
        count = c.count if c.count is not None or c.duration is not None else auto_count(pattern, size)
        # Duration runs have no count to take a tenth of: they get the full default warm-up.
        warmup = c.warmup if c.warmup is not None else (auto_warmup(count) if count else auto_warmup(1000))
        keys = _keys(pat.roles(c.clients))
        placement, where, warnings = choose_placement(c.pin, cls, pattern, keys)
        cell: dict[str, Any] = {
            "pattern": pattern, "transport": name, "size_bytes": size, "status": "ok", "reason": None,
            "count": count, "duration_s": c.duration, "warmup": warmup, "placement": where,
            "cpus": placement, "trials": [], "summary": {}, "spread": {}, "warnings": list(warnings),
        }
        self._current = cell
        label = f"{pattern} {name} {format_size(size)}"
        reason = cls.unavailable_reason()
        if reason:
            cell.update(status="n/a", reason=f"unavailable: {reason}")
        else:
            reason = cls.not_applicable(pat.SPEC.shape, size)
            if reason is None and hasattr(pat, "not_applicable"):  # pattern-level: fan-in needs multi_writer
                reason = pat.not_applicable(cls, size, c.clients)
            if reason is None and c.duration is not None and size == 0:
                reason = "a duration run needs an end marker, which an empty message cannot carry; use --count"
            if reason:
                cell.update(status="n/a", reason=reason)
        if cell["status"] != "ok":
            self.progress("skip", label=label, reason=cell["reason"], trials=c.trials)
            return cell
        ctx = Context(size=size, count=count, duration=c.duration, warmup=warmup, seed=c.seed, verify=c.verify,
                      reliable=cls.reliable, clients=c.clients)
        for trial in range(c.trials):
            self.progress("trial", label=label, trial=trial + 1, trials=c.trials)
            try:
                raw = self._run_trial(cls, pattern, pat, ctx, placement)
            except Interrupted:  # SIGTERM ends the sweep, it is not a failure of this cell
                raise
            except (IpclabError, OSError) as exc:
                why = explain(exc) if isinstance(exc, OSError) else str(exc)  # names the limit hit, if any
                cell.update(status="failed", reason=why)
                if isinstance(exc, WorkerError) and exc.traceback:
                    cell["traceback"] = exc.traceback
                self.progress("failed", label=label, reason=why, remaining=c.trials - trial - 1)
                break
            figures = pat.metrics(raw, ctx)
            if figures.get("corrupt"):
                cell["warnings"].append(f"trial {trial + 1}: {figures['corrupt']} corrupt message(s)")
            cell["trials"].append({"trial": trial + 1, "metrics": figures, "raw": _strip(raw)})
        if cell["trials"]:
            cell["summary"], cell["spread"] = summarize_trials([t["metrics"] for t in cell["trials"]])
            headline = HEADLINE.get(pattern)
            spread = cell["spread"].get(headline or "", 0.0)
            if spread > SPREAD_WARN:
                cell["warnings"].append(
                    f"{headline} differs by {spread:.0%} across trials: noisy machine; add --trials or pin CPUs")
        return cell

    # -- one trial -----------------------------------------------------------------------------------
    def _run_trial(self, cls: type[Transport], pattern: str, pat: Any, ctx: Context,
                   placement: dict[str, list[int] | None]) -> dict[str, dict[str, Any]]:
        c = self.config
        assert self.workdir is not None
        transport = cls(self.workdir, CellSpec(shape=pat.SPEC.shape, size=ctx.size,
                                                 clients=sum(r != "server" for r, _ in pat.roles(c.clients))))
        workers: list[_Worker] = []
        try:
            address = transport.setup()
            roles = pat.roles(c.clients)
            keys = _keys(roles)
            for (role, index), key in zip(roles, keys):
                workers.append(self._spawn(key, role, index, pat.LABELS.get(role, role),
                                           transport.fds_for(role, index)))
            transport.close_parent_fds()
            base = {"type": "CONFIG", "transport": cls.name, "transport_ref": transport_ref(cls.name),
                    "pattern": pattern, "address": address, "size": ctx.size, "count": ctx.count,
                    "duration": ctx.duration, "warmup": ctx.warmup, "seed": ctx.seed, "verify": ctx.verify,
                    "reliable": cls.reliable, "clients": c.clients}
            base["pids"] = {w.key: w.proc.pid for w in workers}  # peers' pids (signals need them)
            for w in workers:
                self._send(w, {**base, "role": w.role, "index": w.index, "cpus": placement.get(w.key)})
            self._collect(workers, "READY", SETUP_TIMEOUT, "start")
            # Servers first, and clients only once every server says it is entering its loop: a producer that
            # starts while its consumer is still being scheduled would overflow a datagram socket's buffer
            # before the first read (UDP would lose the whole warm-up, and measure the scheduler).
            servers = [w for w in workers if w.role == "server"]
            for w in servers:
                self._send(w, {"type": "START"})
            self._collect(servers, "STARTED", SETUP_TIMEOUT, "start its loop")
            for w in workers:
                if w.role != "server":
                    self._send(w, {"type": "START"})
            budget = c.timeout + (c.duration or 0.0)
            self._collect(workers, "RESULT", budget, "finish")
            return {w.key: w.message["raw"] for w in workers}  # type: ignore[index]
        finally:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                self._stop(workers)
                transport.teardown()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _spawn(self, key: str, role: str, index: int, label: str, fds: tuple[int, ...]) -> _Worker:
        assert self.workdir is not None
        parent, child = socket.socketpair()
        self._spawned += 1
        stderr_path = os.path.join(self.workdir, f"worker-{self._spawned}.stderr")
        try:
            with open(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "ipclab.worker", str(child.fileno()), str(os.getpid())],
                    pass_fds=(child.fileno(), *fds), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=err, env=_worker_env(), close_fds=True,
                )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        return _Worker(key, role, index, label, proc, parent, control.Reader(parent), stderr_path)

    def _collect(self, workers: list[_Worker], kind: str, timeout: float, verb: str) -> None:
        deadline = time.monotonic() + timeout
        pending = list(workers)
        for w in workers:
            w.message = None
        while pending:
            for w in list(pending):
                try:
                    message = w.reader.pop()
                except ValueError as exc:  # oversized or malformed: a broken worker, not a crash of the sweep
                    raise WorkerError(f"{w.label} sent an unusable control message: {exc}") from None
                if message is None:
                    if w.reader.closed:
                        raise WorkerError(self._death(w))
                    continue
                if message["type"] == "ERROR":
                    error = f"{w.label} failed: {message.get('message')}"
                    killed = self._killed_peer(workers, w)  # a dead peer is the cause, the EOF/EPIPE its effect
                    raise WorkerError(f"{killed} (then {error})" if killed else error, message.get("traceback"))
                if message["type"] == kind:
                    w.message = message
                    pending.remove(w)
            if not pending:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                who = " and ".join(w.label for w in pending)
                raise WorkerError(f"{who} did not {verb} within {timeout:g} s (timed out; raise --timeout if the "
                                  "cell is just slow)")
            ready, _, _ = select.select(pending, [], [], remaining)
            for w in ready:
                try:
                    w.reader.feed()
                except ConnectionResetError:  # it died with our START/CONFIG unread: a death like any other
                    w.reader.closed = True

    def _send(self, w: _Worker, message: dict[str, Any]) -> None:
        try:
            control.send(w.sock, message)
        except (BrokenPipeError, ConnectionResetError):  # it died before reading: report how it died
            raise WorkerError(self._death(w)) from None

    def _killed_peer(self, workers: list[_Worker], survivor: _Worker) -> str | None:
        """The death of a worker killed by a signal, if one is, so the reason names it and not its effect.

        One PEER_GRACE for all peers together (not per peer: a 64-client fan-in would wait 13 s).
        """
        deadline = time.monotonic() + PEER_GRACE
        while True:
            for w in workers:
                code = w.proc.poll() if w is not survivor else None
                if code is not None and code < 0:
                    return self._death(w)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def _death(self, w: _Worker) -> str:
        try:
            code = w.proc.wait(timeout=EXIT_GRACE)
        except subprocess.TimeoutExpired:
            return f"{w.label} closed its control channel but is still running"
        if code < 0:
            what = f"{w.label} killed by {signal.Signals(-code).name}"
        else:
            what = f"{w.label} exited with status {code}"
        tail = _last_line(w.stderr_path)
        return f"{what}: {tail}" if tail else what

    def _stop(self, workers: list[_Worker]) -> None:
        for w in workers:
            try:
                control.send(w.sock, {"type": "EXIT"})
            except OSError:
                pass
        deadline = time.monotonic() + EXIT_GRACE
        for w in workers:
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            w.sock.close()


def _write_run_record(workdir: str) -> None:
    """Who owns this directory: ``ipclab clean`` leaves the objects of a live runner alone."""
    import json

    fd = os.open(os.path.join(workdir, RUN_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "started": results.now_iso()}, f)


def _keys(roles: list[tuple[str, int]]) -> list[str]:
    """Raw-result keys: the role name, or role+index when a pattern has several workers of one role."""
    counts: dict[str, int] = {}
    for role, _ in roles:
        counts[role] = counts.get(role, 0) + 1
    return [role if counts[role] == 1 else f"{role}{index}" for role, index in roles]


def _strip(raw: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {kk: vv for kk, vv in v.items() if kk not in _BLOBS} for k, v in raw.items()}


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def _worker_env() -> dict[str, str]:
    """The workers import this very ipclab, wherever it was imported from (installed or a source tree)."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def summarize_trials(trials: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Median across trials of every numeric figure, and each figure's relative spread (max-min)/median."""
    summary: dict[str, float] = {}
    spread: dict[str, float] = {}
    # Every figure any trial recorded (a first trial that lost every datagram has no latency figures).
    keys = list(dict.fromkeys(k for t in trials for k, v in t.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)))
    for key in keys:
        values = [t[key] for t in trials if isinstance(t.get(key), (int, float))]
        if values:
            summary[key] = stats.median(values)
            spread[key] = stats.relative_spread(values)
    return summary, spread


def run(config: RunConfig, **kwargs: Any) -> dict[str, Any]:
    """Run a sweep and return the result dict (see ipclab.results for the schema)."""
    return Runner(config, **kwargs).run()
