"""The teacher's check: does a handed-in result really follow an experiment?

``check(result, experiment)`` returns the problems, one line each (an empty list: the result follows it):

- the file is a valid ipclab result (a hand edit that breaks its structure fails here);
- the same transports, patterns and sizes as the experiment, at least its trials (and its count or duration,
  when it sets one), its clients, --verify when it asks for it, and the placement it asks for;
- every cell of the sweep is there: measured, or n/a with a reason; no failed cell, no interrupted run;
- every measured cell holds all the trials its run recorded, and its summary is what those trials give (a
  removed trial or a changed figure shows), and the metrics the experiment asks to read were recorded;
- the machine was not flagged busy (load average above the usable CPUs when the run started).

Pure functions of the result dict and the experiment's keys: no process is started, nothing is measured.
"""

from __future__ import annotations

from typing import Any

from .catalog import Experiment
from .config import RunConfig, format_rate, format_size
from .errors import ConfigError
from .patterns import get_spec

# Keys compared by the check; the others (seed, warmup, timeout, output) do not change what a result shows.
_VALIDATED = ("transports", "patterns", "sizes", "rates", "count", "duration", "trials", "clients")
_REL_TOL = 1e-9  # a median recomputed from JSON floats may differ in the last bits


def expected_config(experiment: Experiment) -> RunConfig:
    """The sweep an experiment asks for, validated like `ipclab run -e` would (pin is compared as text: its
    CPU numbers belong to the student's machine, not the teacher's)."""
    from .experiment import key_labels
    from .options import resolve

    keys = {k: v for k, v in experiment.keys.items() if k in _VALIDATED}
    if "transports" not in keys:
        keys["transports"] = "all"  # "every available one" depends on the machine: any known transport passes
    keys["verify"] = bool(experiment.keys.get("verify", False))
    return resolve({}, keys, key_labels(experiment.path, keys))


def _names(items: Any) -> list[str]:
    return [str(i) for i in items] if isinstance(items, list) else []


def _set_problems(what: str, asked: list[Any], got: list[Any], fmt: Any = str) -> list[str]:
    missing = [fmt(x) for x in asked if x not in got]
    extra = [fmt(x) for x in got if x not in asked]
    if not missing and not extra:
        return []
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"not asked for {', '.join(extra)}"]
                                                                      if extra else [])
    return [f"{what}: {'; '.join(parts)} (the experiment asks for {', '.join(fmt(x) for x in asked)})"]


def _config_problems(cfg: dict[str, Any], want: RunConfig, experiment: Experiment) -> list[str]:
    keys = experiment.keys
    out: list[str] = []
    if "transports" in keys:
        out += _set_problems("transports", list(want.transports), _names(cfg.get("transports")))
    out += _set_problems("patterns", list(want.patterns), _names(cfg.get("patterns")))
    sizes: list[Any] = cfg["sizes"] if isinstance(cfg.get("sizes"), list) else []
    out += _set_problems("sizes", list(want.sizes), sizes, lambda s: format_size(s) if isinstance(s, int) else s)
    if "rates" in keys:
        rates: list[Any] = cfg["rates"] if isinstance(cfg.get("rates"), list) else [None]
        out += _set_problems("rates", list(want.rates), rates, lambda r: "max" if r is None else format_rate(r))
    trials = cfg.get("trials")
    if not isinstance(trials, int) or trials < want.trials:
        out.append(f"trials: {trials!r} per cell, the experiment asks for at least {want.trials}")
    if want.count is not None and (not isinstance(cfg.get("count"), int) or cfg["count"] < want.count):
        out.append(f"count: {cfg.get('count')!r} messages per trial, the experiment asks for at least {want.count}")
    if want.duration is not None and (not isinstance(cfg.get("duration"), (int, float))
                                      or cfg["duration"] < want.duration):
        out.append(f"duration: {cfg.get('duration')!r} s per trial, the experiment asks for at least {want.duration}")
    if "clients" in keys and cfg.get("clients") != want.clients:
        out.append(f"clients: {cfg.get('clients')!r}, the experiment asks for {want.clients}")
    if want.verify and cfg.get("verify") is not True:
        out.append("verify: the run did not check every byte; the experiment asks for verify = true")
    if "pin" in keys:
        asked = str(keys["pin"]).replace(" ", "").lower()
        if str(cfg.get("pin")).replace(" ", "").lower() != asked:
            out.append(f"placement: the run used pin = {cfg.get('pin')!r}, the experiment asks for {asked!r}")
    return out


def _placement_problem(cell: dict[str, Any], pin: str) -> str | None:
    """Where the workers of a measured cell really ran, against the pin asked for (auto: ipclab's own choice)."""
    cpus = cell.get("cpus")
    if pin == "auto" or not isinstance(cpus, dict) or not cpus:
        return None
    server = [tuple(v) if isinstance(v, list) else v for k, v in cpus.items() if str(k).startswith("server")]
    others = [tuple(v) if isinstance(v, list) else v for k, v in cpus.items() if not str(k).startswith("server")]
    placed = set(server) | set(others)
    if pin == "none":
        ok = placed == {None}
    elif pin == "same":
        ok = len(placed) == 1 and None not in placed
    elif pin == "cross":
        ok = None not in placed and not set(server) & set(others)
    else:  # explicit "S,C" (or one CPU for both)
        parts = tuple(int(p) for p in pin.split(",") if p.strip().isdigit())
        s_cpu, c_cpu = (parts[0],), (parts[-1],)
        ok = bool(parts) and set(server) <= {s_cpu} and set(others) <= {c_cpu}
    return None if ok else f"ran at {cell.get('placement')!r}, the experiment asks for pin = {pin!r}"


def _cell_problems(cell: dict[str, Any], run_trials: Any, want: RunConfig, pin: str | None,
                   metrics: list[str], pattern_metrics: set[str]) -> list[str]:
    status = cell.get("status")
    if status == "n/a":
        return [] if str(cell.get("reason") or "").strip() else ["n/a without a reason"]
    if status == "failed":
        return [f"failed: {cell.get('reason') or 'no reason recorded'}"]
    if status != "ok":
        return [f"status {status!r} is neither ok, n/a nor failed"]
    out = []
    trials = cell.get("trials", [])
    if len(trials) < want.trials:
        out.append(f"{len(trials)} trial(s), the experiment asks for at least {want.trials}")
    if isinstance(run_trials, int) and len(trials) != run_trials:
        out.append(f"{len(trials)} trial(s) but the run recorded trials = {run_trials}: a trial was removed or "
                   "the run was cut short")
    numbers = [t.get("trial") for t in trials]
    if numbers != list(range(1, len(trials) + 1)):
        out.append(f"trials numbered {numbers}, not 1..{len(trials)}: trials were removed or reordered")
    # The summary must be what the trials give, recomputed by the runner's own function: a trial removed or a
    # figure changed by hand shows here even when the trial counts were edited to match.
    from .stats import summarize_cell

    again = summarize_cell(trials)["summary"]  # pooled latency figures from the trials' histograms, as the runner
    for key, value in cell.get("summary", {}).items():
        given = again.get(key)
        if value is None or given is None:
            continue
        if abs(value - given) > _REL_TOL * max(abs(value), abs(given), 1e-300):
            out.append(f"{key} = {value:g} is not what its {len(trials)} trial(s) give ({given:g}): the file was "
                       "edited")
            break  # one such line says it; the rest would repeat it
    for key in metrics:
        if key in pattern_metrics and cell.get("summary", {}).get(key) is None:
            out.append(f"no {key}, a metric the experiment asks to read")
    if pin is not None and (problem := _placement_problem(cell, pin)):
        out.append(problem)
    return out


def _busy(result: dict[str, Any]) -> str | None:
    """The machine flagged busy, by the advice engine ``run`` and ``report`` use (load at the start and end of the
    sweep, steal time); for an older result without those records, an explicit flag or the start's load average."""
    from .report.advice import busy_advice

    verdicts = busy_advice(result)
    if verdicts:
        return "; ".join(f"{a.message}; {a.fix}" for a in verdicts)
    meta = result.get("metadata", {})
    if meta.get("busy"):
        return f"the machine was flagged busy ({meta['busy']}); rerun on a quiet machine"
    load = meta.get("load_average")
    cpus = meta.get("cpu_affinity") or []
    usable = len(cpus) if isinstance(cpus, list) and cpus else meta.get("cpu_count")
    if isinstance(load, list) and load and isinstance(load[0], (int, float)) and isinstance(usable, int) \
            and usable > 0 and load[0] > usable:
        return (f"the machine was busy when the run started (load average {load[0]:.1f} on {usable} usable "
                "CPU(s)): other work shared the CPUs; rerun on a quiet machine")
    return None


def _label(pattern: str, transport: str, size: int, rate: float | None) -> str:
    return f"{pattern} {transport} {format_size(size)}" + ("" if rate is None else f" at {format_rate(rate)}")


def check(result: Any, experiment: Experiment, source: str = "<result>") -> list[str]:
    """Every way ``result`` does not follow ``experiment``, one line each; [] when it does."""
    from .results import validate as validate_result

    try:
        validate_result(result, source)
    except ConfigError as exc:
        return [str(exc)]
    want = expected_config(experiment)
    cfg = result.get("config", {})
    out = _config_problems(cfg, want, experiment)
    if result.get("interrupted"):
        out.append("the run was interrupted: cells after the interruption were never measured")
    asked = experiment.keys.get("metrics", [])
    metrics = [m.strip() for m in asked.split(",")] if isinstance(asked, str) else [str(m) for m in asked]
    pin = str(experiment.keys["pin"]).replace(" ", "").lower() if "pin" in experiment.keys else None
    transports = list(want.transports) if "transports" in experiment.keys else _names(cfg.get("transports"))
    cells = {(c["pattern"], c["transport"], c["size_bytes"], c.get("rate")): c for c in result["cells"]}
    recorded: dict[str, set[str]] = {}  # per pattern, every figure some measured cell recorded
    for c in result["cells"]:
        if c.get("status") == "ok":
            recorded.setdefault(c["pattern"], set()).update(c.get("summary", {}))
    for pattern in want.patterns:
        rates = want.rates if get_spec(pattern).paced else (None,)  # one cell per rate; max = closed loop
        for transport in transports:
            for size in want.sizes:
                for rate in rates:
                    label = _label(pattern, transport, size, rate)
                    cell = cells.pop((pattern, transport, size, rate), None)
                    if cell is None:
                        out.append(f"{label}: not measured (no cell in the result)")
                        continue
                    out += [f"{label}: {p}" for p in _cell_problems(cell, cfg.get("trials"), want, pin, metrics,
                                                                    recorded.get(pattern, set()))]
    for pattern, transport, size, rate in cells:
        out.append(f"{_label(pattern, transport, size, rate)}: a cell the experiment does not ask for")
    for key in metrics:
        if not any(key in figures for figures in recorded.values()):
            out.append(f"{key}: no measured cell recorded it, and the experiment asks to read it")
    if (busy := _busy(result)) is not None:
        out.append(busy)
    return out
