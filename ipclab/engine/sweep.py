"""The sweep: for each cell (pattern x transport x size x rate) decide n/a or run its trials, then summarise.

Cells run in the order pattern, transport, size, rate; trials of a cell one after another. ``on_cell(result)`` is called
after every cell (the CLI saves the file there). An interrupt mid-cell keeps the trials that cell had finished.
What a cell costs and where its workers run comes from ipclab.engine.policy; how a trial is driven from
ipclab.engine.supervise; how workers start from the launcher (a fresh process per worker by default). With
``--remote`` one side of every cell runs on another host (ipclab.engine.remote: n/a, placement, figures).

Rates (--rate): a pattern that declares ``paced`` gets one cell per rate (None = max = closed loop, the cell as
it always was; an open-loop cell carries "rate"). A pattern that declares nothing to pace gets its closed-loop
cell only, once, whatever the rates: its figures do not depend on a rate, and refusing a mixed selection (a
request pattern and one without requests, with --rate 1000,max) would make the user run it twice (options.py
refuses --rate only when no selected pattern can be paced). An open-loop cell whose achieved rate falls more
than SATURATED below the
offered one, or whose median send left more than one interval late, is marked with a "saturated" warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import patterns, results
from ..config import RunConfig, format_rate, format_size
from ..declarations import PatternSpec, TrafficShape
from ..errors import Interrupted, IpclabError, WorkerError
from ..patterns import openloop
from ..patterns.common import Context
from ..patterns.loops import HISTOGRAMS
from ..probes import machine_load
from ..resources import explain
from ..stats import summarize_cell, summarize_trials  # noqa: F401 - summarize_trials: runner re-exports it
from ..transports import get_transport, load_transport, ref_of
from ..transports.base import CellSpec
from .launch import Launcher, LocalProcess, WorkerSpec
from .policy import auto_count, auto_warmup, choose_placement, paced_count, warning, worker_keys
from .remote import RemoteSupervisor, Session
from .rundir import RunDir
from .supervise import Supervisor, Timing

SPREAD_WARN = 0.10
SATURATED = 0.05  # achieved more than 5 % below offered: the mechanism (or the harness) could not keep up
_BLOBS = ("samples", "latency", "service", "lag")  # raw sample arrays: summarised, not stored per trial

ProgressFn = Callable[..., None]


class Runner:
    """Runs a RunConfig; ``on_cell(result)`` is called after every cell (the CLI saves the file there).

    ``launcher`` starts the workers (default LocalProcess); ``timing`` sets the supervisor's waits;
    ``transports`` resolves a transport name to its class (default: the registry); ``load`` reads how busy the
    machine is (default probes.machine_load), recorded in the metadata at the start and end of the sweep.
    """

    def __init__(self, config: RunConfig, *, on_cell: Callable[[dict[str, Any]], None] | None = None,
                 progress: ProgressFn | None = None, metadata: dict[str, Any] | None = None,
                 launcher: Launcher | None = None, timing: Timing | None = None,
                 transports: Callable[[str], Any] | None = None,
                 load: Callable[[], dict[str, Any]] | None = None) -> None:
        self.config = config
        self.on_cell = on_cell
        self.progress = progress or (lambda *a, **k: None)
        self.result = results.new_result(config, metadata)
        self.launcher: Launcher = launcher or LocalProcess()
        self.supervisor = Supervisor(self.launcher, timing)
        self.remote = Session.from_config(config)  # --remote: the server side on another host
        if self.remote is not None:
            self.launcher = self.remote.launcher(self.launcher)
            self.supervisor = RemoteSupervisor(self.launcher, self.remote, timing)
        self.resolve = transports or get_transport
        self.rundir = RunDir()
        self.load = load or machine_load  # how busy the machine is, at the start and end (busy-machine advice)
        self._current: dict[str, Any] | None = None  # the cell being measured (see _keep_partial_cell)

    @property
    def workdir(self) -> str | None:
        return self.rundir.path

    # -- the sweep -----------------------------------------------------------------------------------
    def cells(self) -> list[tuple[str, str, int, float | None]]:
        c = self.config
        return [(p, t, s, r) for p in c.patterns for t in c.transports for s in c.sizes
                for r in (c.rates if patterns.get_pattern(p).SPEC.paced else (None,))]

    def run(self) -> dict[str, Any]:
        cells = self.cells()
        if self.remote is not None:  # before anything is measured: the other host, its version, the link
            self.result["metadata"]["remote"] = self.remote.open(self.supervisor.timing.setup)
        self.progress("start", total=len(cells) * self.config.trials, cells=len(cells))
        self.result["metadata"]["load_start"] = self.load()
        try:
            # Inside the try: a SIGINT held back while the directory is made lands the moment create() unblocks
            # it, and the finally below must still remove what create() made.
            self.rundir.create()
            for pattern, transport, size, rate in cells:
                cell = self._run_cell(pattern, transport, size, rate)
                self._append(cell)
                if self.on_cell:
                    self.on_cell(self.result)
        except BaseException:
            self.result["interrupted"] = True
            self._keep_partial_cell()
            raise
        finally:
            try:
                self.rundir.remove()
            finally:
                self.launcher.close()
                self.result["finished"] = results.now_iso()
                self.result["metadata"]["load_end"] = self.load()
        return self.result

    def _append(self, cell: dict[str, Any]) -> None:
        self._current = None
        self.result["cells"].append(cell)

    def _keep_partial_cell(self) -> None:
        """An interrupt mid-cell keeps the trials that cell had finished (saved with a warning)."""
        cell = self._current
        if cell is None or not cell["trials"]:
            return
        _summarize(cell)
        cell["warnings"].append(warning("interrupted", f"interrupted after {len(cell['trials'])} of "
                                                       f"{self.config.trials} trials"))
        self._append(cell)

    def _run_cell(self, pattern: str, name: str, size: int, rate: float | None = None) -> dict[str, Any]:
        c = self.config
        cls = self.resolve(name)
        pat = patterns.get_pattern(pattern)
        spec: PatternSpec = pat.SPEC
        options = {o.name: c.option(o.name) for o in spec.options}  # the pattern's own options, sent whole
        timed = c.count is not None or c.duration is not None
        if timed:
            count = c.count
        else:
            count = paced_count(rate) if rate is not None else auto_count(spec.count_class, size)
        # Duration runs have no count to take a tenth of: they get the full default warm-up.
        warmup = c.warmup if c.warmup is not None else (auto_warmup(count) if count else auto_warmup(1000))
        roles = pat.roles(options)
        keys = worker_keys(roles)
        # What the transport must carry: an open-loop client keeps several requests outstanding, whatever the
        # pattern's closed loop declares (a one-slot channel would make it wait instead of queueing).
        shape = spec.shape if rate is None else openloop.carried_shape(spec.shape)
        placement, where, warnings = choose_placement(c.pin, cls, shape, keys)
        if self.remote is not None:  # --pin applies on each host separately, over that host's CPUs
            cpus = self.remote.remote_cpus
            there = choose_placement(c.pin, cls, shape, keys, cpus)[0] if cpus else None
            where, placement = self.remote.placement(placement, there)
        cell: dict[str, Any] = {
            "pattern": pattern, "transport": name, "size_bytes": size, "status": "ok", "reason": None,
            "count": count, "duration_s": c.duration, "warmup": warmup, "placement": where,
            "cpus": placement, "trials": [], "summary": {}, "spread": {}, "range": {}, "warnings": list(warnings),
        }
        if rate is not None:
            cell["rate"] = rate
        self._current = cell
        label = f"{pattern} {name} {format_size(size)}" + ("" if rate is None else f" {format_rate(rate)}")
        reason = self._not_applicable(cls, pat, shape, size, options)
        if reason is None and rate is not None:  # requests are matched to answers by the header...
            reason = openloop.not_applicable(size, rate, cls.reliable, answers=spec.paced != "message")
        if reason:
            cell.update(status="n/a", reason=reason)
            self.progress("skip", label=label, reason=reason, trials=c.trials)
            return cell
        ctx = Context(size=size, count=count, duration=c.duration, warmup=warmup, seed=c.seed, verify=c.verify,
                      reliable=cls.reliable, clients=options.get("clients", 1), rate=rate)
        specs = [WorkerSpec(key, role, index, spec.labels.get(role, role), workdir=self.workdir or "")
                 for (role, index), key in zip(roles, keys)]
        writers = sum(role != "server" for role, _ in roles)
        config = {"transport": cls.name, "transport_ref": _worker_ref(cls), "pattern": pattern,
                  "size": size, "count": count, "duration": c.duration, "warmup": warmup, "seed": c.seed,
                  "verify": c.verify, "reliable": cls.reliable, "clients": options.get("clients", 1),
                  "options": options, "rate": rate}
        limit = c.timeout + (c.duration or 0.0) + (count / rate if rate is not None and count else 0.0)
        for trial in range(c.trials):
            self.progress("trial", label=label, trial=trial + 1, trials=c.trials)
            try:
                assert self.workdir is not None
                transport = cls(self.workdir, CellSpec(shape=shape, size=size, clients=writers))
                if self.remote is not None:
                    transport = self.remote.wrap(transport)
                raw = self.supervisor.run_trial(transport, specs, config, placement, limit)
            except Interrupted:  # SIGTERM ends the sweep, it is not a failure of this cell
                raise
            except (IpclabError, OSError) as exc:
                why = explain(exc) if isinstance(exc, OSError) else str(exc)  # names the limit hit, if any
                cell.update(status="failed", reason=why)
                if isinstance(exc, WorkerError) and exc.traceback:
                    cell["traceback"] = exc.traceback
                self.progress("failed", label=label, reason=why, remaining=c.trials - trial - 1)
                break
            unfit = next((r["not_applicable"] for r in raw.values() if r.get("not_applicable")), None)
            if unfit:  # what only the worker's channel could tell (openloop: no readiness wait)
                cell.update(status="n/a", reason=unfit)
                self.progress("skip", label=label, reason=unfit, trials=c.trials - trial)
                return cell
            figures = pat.metrics(raw, ctx)
            if rate is not None:  # lag, offered and achieved rate, in flight: the same for every paced pattern
                schedule = openloop.schedule_figures(raw)
                figures.setdefault(HISTOGRAMS, {}).update(schedule.pop(HISTOGRAMS, {}))
                figures.update(schedule)
            if self.remote is not None:
                figures = self.remote.figures(figures)
            for caveat in {r["caveat"] for r in raw.values() if r.get("caveat")}:  # what the protocol cannot know
                if not any(w["message"] == caveat for w in cell["warnings"]):
                    cell["warnings"].append(warning("accounting", caveat))
            foreign = sum(r.get("foreign", 0) for r in raw.values())  # refused, never counted (worker.py)
            if foreign:
                figures["foreign"] = foreign
                cell["warnings"].append(warning("foreign", f"trial {trial + 1}: {foreign} peer(s) from outside "
                                                           "the run knocked and were refused (not counted)"))
            if figures.get("window_capped"):
                cell["warnings"].append(warning("capped", f"trial {trial + 1}: the paced window ended after "
                                                          f"{openloop.MAX_REQUESTS:,} requests (the memory bound)"))
            if figures.get("corrupt"):
                cell["warnings"].append(warning("corrupt", f"trial {trial + 1}: {figures['corrupt']} corrupt "
                                                           "message(s)"))
            histograms = figures.pop(HISTOGRAMS, None)  # kept beside the figures: the summary pools them
            record = {"trial": trial + 1, "metrics": figures, "raw": _strip(raw)}
            if histograms:
                record["histograms"] = histograms
            cell["trials"].append(record)
        if cell["trials"]:
            _summarize(cell)
            spread = cell["spread"].get(spec.headline, 0.0)
            if spread > SPREAD_WARN:
                cell["warnings"].append(warning(
                    "spread", f"{spec.headline} differs by {spread:.0%} across trials: noisy machine; add --trials "
                              "or pin CPUs"))
            if rate is not None:
                _check_saturated(cell, rate)
        return cell

    def _not_applicable(self, cls: Any, pat: Any, shape: TrafficShape, size: int,
                        options: dict[str, Any]) -> str | None:
        """Why the cell cannot run (checked in this order: machine, transport, pattern, run mode), or None."""
        reason = cls.unavailable_reason()
        if reason:
            return f"unavailable: {reason}"
        if self.remote is not None:
            reason = self.remote.not_applicable(cls)
            if reason:
                return reason
        reason = cls.not_applicable(shape, size)
        check = getattr(pat, "not_applicable", None)  # optional: the pattern's own limits (a header it needs...)
        if reason is None and check is not None:
            reason = check(cls, size, options)
        if reason is None and self.config.duration is not None and size == 0:
            reason = "a duration run needs an end marker, which an empty message cannot carry; use --count"
        return reason


def _check_saturated(cell: dict[str, Any], rate: float) -> None:
    """The "saturated" warning: the cell's achieved rate (median over trials) more than SATURATED below offered,
    or its median send more than one interval (1/rate) behind the schedule: a sender that fell behind and caught
    up in spurts reaches the offered rate on average while its requests queued (the latency counts the queue)."""
    summary = cell["summary"]
    achieved, lag, lag50 = (summary.get(k) for k in ("achieved_msg_s", "lag_p99_us", "lag_p50_us"))
    interval_us = 1e6 / rate
    short = achieved is not None and achieved < rate * (1 - SATURATED)
    behind = lag50 is not None and lag50 > interval_us
    if not (short or behind):
        return
    late = f"; sends were late by up to {lag:,.0f} µs (p99 schedule lag)" if lag is not None else ""
    why = (f"achieved {achieved:,.0f}/s ({achieved / rate:.0%})" if short else
           f"the median send left {lag50:,.0f} µs late, more than one interval ({interval_us:,.0f} µs)")
    cell["warnings"].append(warning(
        "saturated", f"offered {rate:,.0f}/s, {why}: the {cell['transport']} cell could not keep up{late}; its "
                     "latency is that of a queue"))


def _summarize(cell: dict[str, Any]) -> None:
    """summary (per-trial figures' medians; latency figures from the pooled samples of all trials), spread,
    range ([min, max] across trials) and pooled (what came from the pooled samples): see stats.summarize_cell."""
    s = summarize_cell(cell["trials"])
    cell["summary"], cell["spread"], cell["range"] = s["summary"], s["spread"], s["range"]
    if s["pooled"]:
        cell["pooled"] = s["pooled"]


def _worker_ref(cls: type) -> str | None:
    """"module:Class" the worker imports (that module only); None for a class made on the fly (a test's), which
    the worker then asks the registry for by name."""
    ref = ref_of(cls)
    try:
        return ref if load_transport(ref) is cls else None
    except (ImportError, AttributeError, ValueError):
        return None


def _strip(raw: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {kk: vv for kk, vv in v.items() if kk not in _BLOBS} for k, v in raw.items()}


def run(config: RunConfig, **kwargs: Any) -> dict[str, Any]:
    """Run a sweep and return the result dict (see ipclab.results for the schema)."""
    return Runner(config, **kwargs).run()
