"""The advice engine: every warning ``run`` and ``report`` show, as objects with a code, rendered one way.

``advise(result, tables)`` is a pure function of a result dict (and the tables shown) returning ``Advice``
objects: what is wrong, which cells, what to do. Machine first (interrupted run, virtual machine, fewer CPUs than
worker processes, a single trial), then per pattern (percentiles resting on too few samples, trials that
disagree), then what the engine recorded per cell. Cell warnings are objects ``{"code", "message"}`` (codes such
as "placement", "spread", "corrupt", "interrupted"); older result files carry plain strings, read as code "note".
Spread warnings of cells are not repeated: the per-metric advice says it with the worst cell. Nothing here
matches warning text: codes decide.

``lines(advice)`` renders them as the one-line texts every format prints (``- ...`` in text and Markdown,
``% WARNING:`` in LaTeX, ``ipclab: warning:`` on stderr).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import stats
from ..config import format_size
from ..patterns import PATTERNS, get_spec
from .metrics import PERCENTILES
from .tables import SPREAD_MARK, Table, build_tables

NOTE = "note"  # the code of a warning recorded as a plain string (result files before warning objects)
PER_METRIC = frozenset({"spread"})  # cell codes the per-metric advice already covers


@dataclass(frozen=True)
class Advice:
    """One warning: a code (stable, for machines), what is wrong, the cells concerned and what to do."""

    code: str
    message: str
    cells: tuple[str, ...] = ()
    fix: str = ""

    def text(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message


def cell_warning(item: Any) -> tuple[str, str]:
    """(code, message) of a recorded cell warning: an object, or a plain string from an older file."""
    if isinstance(item, dict):
        return str(item.get("code") or NOTE), str(item.get("message", ""))
    return NOTE, str(item)


def sample_keys(pattern: str) -> tuple[str, ...]:
    """The per-trial figure counting a pattern's samples; every declared one for a pattern not in the registry."""
    if pattern in PATTERNS:
        key = get_spec(pattern).sample_key
        return (key,) if key else ()
    return tuple(dict.fromkeys(k for name in PATTERNS if (k := get_spec(name).sample_key)))


def samples_per_trial(cell: dict[str, Any]) -> int | None:
    """The fewest samples any trial of the cell had (round trips, messages, requests...); None if unknown."""
    keys = sample_keys(str(cell.get("pattern")))
    counts = []
    for trial in cell.get("trials", []):
        figures = trial.get("metrics", {})
        for key in keys:
            if isinstance(figures.get(key), (int, float)):
                counts.append(int(figures[key]))
                break
    return min(counts) if counts else None


def _label(cell: dict[str, Any]) -> str:
    return f"{cell['transport']} {format_size(cell['size_bytes'])}"


def processes_per_cell(result: dict[str, Any]) -> int:
    """The most worker processes any cell ran at once (2 for a producer/consumer pair)."""
    most = 0
    for cell in result.get("cells", []):
        cpus = cell.get("cpus")
        if isinstance(cpus, dict):
            most = max(most, len(cpus))
    return most


def machine_advice(result: dict[str, Any]) -> list[Advice]:
    """About the run as a whole: interrupted, a VM, CPUs vs processes, one trial."""
    meta = result.get("metadata", {})
    out = []
    if result.get("interrupted"):
        out.append(Advice("interrupted", "the run was interrupted: cells after the last one shown were never "
                          "measured", fix="rerun the sweep to complete it"))
    if meta.get("virtualization"):
        out.append(Advice("vm", f"measured on a virtual machine ({meta['virtualization']}): wake-up latencies "
                          "depend on the hypervisor and its other guests",
                          fix="compare only with runs from the same machine, or rerun on bare metal for absolute "
                          "figures"))
    usable = meta.get("cpu_affinity") or []
    procs = processes_per_cell(result)
    if usable and procs > len(usable):
        out.append(Advice("cpus", f"only {len(usable)} CPU(s) usable but cells ran {procs} worker processes: they "
                          "took turns on the CPUs, so figures include scheduler waits",
                          fix=f"run on a machine with at least {procs} cores or read the figures as 'CPUs shared'"))
    trials = result.get("config", {}).get("trials")
    if trials == 1 and any(c.get("status") == "ok" for c in result.get("cells", [])):
        out.append(Advice("one_trial", "one trial per cell: how much the figures vary from run to run is unknown",
                          fix="rerun with --trials 3 or more (5 or more to use 'ipclab compare')"))
    return out


def pattern_advice(result: dict[str, Any], tables: list[Table]) -> list[Advice]:
    """Per pattern: percentiles resting on too few samples, and trials that disagree (worst cell named)."""
    out = []
    for pattern in dict.fromkeys(t.pattern for t in tables):
        cells = [c for c in result.get("cells", []) if c.get("pattern") == pattern and c.get("status") == "ok"]
        keys = [t.metric.key for t in tables if t.pattern == pattern]
        # Thin percentiles: the most demanding percentile shown decides the advice.
        thin: list[tuple[int, float, str, list[str], int]] = []
        for key in keys:
            if (p := PERCENTILES.get(key)) is None:
                continue
            need = stats.min_samples_for(p)
            short = [(n, _label(c)) for c in cells if (n := samples_per_trial(c)) is not None and n < need]
            if short:
                thin.append((need, p, key, [label for _, label in short], min(n for n, _ in short)))
        if thin:
            need, p, key, labels, fewest = max(thin)
            out.append(Advice("samples", f"{pattern}: {key} is a p{p:g}, which needs at least {need} samples per "
                              f"trial, but {len(labels)} cell(s) have fewer (fewest: {fewest})", tuple(labels),
                              f"rerun with --count {need} or more"))
        # Trials that disagree: which metrics, how many cells, and the worst cell.
        noisy, worst, labels = [], (0.0, "", ""), []
        for key in keys:
            spreads = [(c.get("spread", {}).get(key, 0.0), c) for c in cells if len(c.get("trials", [])) > 1]
            bad = [(s, c) for s, c in spreads if s > SPREAD_MARK]
            if bad:
                noisy.append(f"{key} ({len(bad)} of {len(spreads)} cells)")
                labels.extend(_label(c) for _, c in bad)
                s, c = max(bad, key=lambda item: item[0])
                if s > worst[0]:
                    worst = (s, key, _label(c))
        if noisy:
            out.append(Advice("spread", f"{pattern}: trials disagree by more than {SPREAD_MARK:.0%} of the median "
                              f"in {', '.join(noisy)}; worst: {worst[1]} {worst[2]}, {worst[0]:.0%}",
                              tuple(dict.fromkeys(labels)), "rerun with more --trials, pin the workers (--pin same "
                              "or --pin cross) and close other programs"))
    return out


def cell_advice(result: dict[str, Any], patterns: set[str] | None = None) -> list[Advice]:
    """What the engine recorded per cell (corrupt messages, placement, interruptions), spread excepted."""
    out = []
    for cell in result.get("cells", []):
        if patterns is not None and cell.get("pattern") not in patterns:
            continue
        label = f"{cell['pattern']} {_label(cell)}"
        for item in cell.get("warnings", []):
            code, message = cell_warning(item)
            if code not in PER_METRIC:
                out.append(Advice(code, f"{label}: {message}", (label,)))
    return out


def advise(result: dict[str, Any], tables: list[Table] | None = None) -> list[Advice]:
    """Every warning for a result shown with ``tables`` (default: the tables ``run`` prints); no duplicates."""
    tables = build_tables(result) if tables is None else tables
    out = machine_advice(result) + pattern_advice(result, tables) + cell_advice(result, {t.pattern for t in tables})
    seen: set[str] = set()
    unique = []
    for item in out:
        if item.text() not in seen:
            seen.add(item.text())
            unique.append(item)
    return unique


def lines(advice: list[Advice]) -> list[str]:
    """The one-line texts every format prints, in order."""
    return [a.text() for a in advice]


def report_warnings(result: dict[str, Any], tables: list[Table]) -> list[str]:
    """What ``ipclab report`` prints next to ``tables``."""
    return lines(advise(result, tables))


def run_warnings(result: dict[str, Any]) -> list[str]:
    """What ``ipclab run`` prints on stderr after its tables (the same engine, its own tables)."""
    return lines(advise(result))
