"""Warnings a report shows next to its tables, each saying what is wrong and what to do about it.

Pure functions of a result dict (and the tables shown), so every report format prints the same advice:
too few samples for the percentile shown, trials that disagree, a single trial, a virtual machine, fewer CPUs
than worker processes, an interrupted run, and the per-cell warnings the runner recorded.
"""

from __future__ import annotations

from typing import Any

from .. import stats
from ..config import format_size
from .metrics import PERCENTILES
from .tables import SPREAD_MARK, Table

# Per-trial figures that count the samples a percentile was computed from, by pattern.
SAMPLE_KEYS = ("round_trips", "received", "requests", "connections")


def samples_per_trial(cell: dict[str, Any]) -> int | None:
    """The fewest samples any trial of the cell had (round trips, messages, requests, connections); None if unknown."""
    counts = []
    for trial in cell.get("trials", []):
        figures = trial.get("metrics", {})
        for key in SAMPLE_KEYS:
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


def machine_warnings(result: dict[str, Any]) -> list[str]:
    """Warnings about the run as a whole: VM, CPUs vs processes, one trial, interrupted."""
    meta = result.get("metadata", {})
    out = []
    if result.get("interrupted"):
        out.append("the run was interrupted: cells after the last one shown were never measured; rerun the "
                   "sweep to complete it")
    if meta.get("virtualization"):
        out.append(f"measured on a virtual machine ({meta['virtualization']}): wake-up latencies depend on the "
                   "hypervisor and its other guests; compare only with runs from the same machine, or rerun on "
                   "bare metal for absolute figures")
    usable = meta.get("cpu_affinity") or []
    procs = processes_per_cell(result)
    if usable and procs > len(usable):
        out.append(f"only {len(usable)} CPU(s) usable but cells ran {procs} worker processes: they took turns on "
                   "the CPUs, so figures include scheduler waits; run on a machine with at least "
                   f"{procs} cores or read the figures as 'CPUs shared'")
    trials = result.get("config", {}).get("trials")
    if trials == 1 and any(c.get("status") == "ok" for c in result.get("cells", [])):
        out.append("one trial per cell: how much the figures vary from run to run is unknown; rerun with "
                   "--trials 3 or more (5 or more to use 'ipclab compare')")
    return out


def pattern_warnings(result: dict[str, Any], tables: list[Table]) -> list[str]:
    """Per pattern, one line for percentiles resting on too few samples and one for trials that disagree."""
    out = []
    for pattern in dict.fromkeys(t.pattern for t in tables):
        cells = [c for c in result.get("cells", []) if c.get("pattern") == pattern and c.get("status") == "ok"]
        keys = [t.metric.key for t in tables if t.pattern == pattern]
        # Thin percentiles: the most demanding percentile shown decides the advice.
        thin: list[tuple[int, float, str, int, int]] = []
        for key in keys:
            if (p := PERCENTILES.get(key)) is None:
                continue
            need = stats.min_samples_for(p)
            counts = [n for c in cells if (n := samples_per_trial(c)) is not None and n < need]
            if counts:
                thin.append((need, p, key, len(counts), min(counts)))
        if thin:
            need, p, key, n_cells, fewest = max(thin)
            out.append(f"{pattern}: {key} is a p{p:g}, which needs at least {need} samples per trial, but "
                       f"{n_cells} cell(s) have fewer (fewest: {fewest}); rerun with --count {need} or more")
        # Trials that disagree: which metrics, how many cells, and the worst cell.
        noisy, worst = [], (0.0, "", "")
        for key in keys:
            spreads = [(c.get("spread", {}).get(key, 0.0), c) for c in cells if len(c.get("trials", [])) > 1]
            bad = [(s, c) for s, c in spreads if s > SPREAD_MARK]
            if bad:
                noisy.append(f"{key} ({len(bad)} of {len(spreads)} cells)")
                s, c = max(bad, key=lambda item: item[0])
                if s > worst[0]:
                    worst = (s, key, _label(c))
        if noisy:
            out.append(f"{pattern}: trials disagree by more than {SPREAD_MARK:.0%} of the median in "
                       f"{', '.join(noisy)}; worst: {worst[1]} {worst[2]}, {worst[0]:.0%}; rerun with more --trials, "
                       "pin the workers (--pin same or --pin cross) and close other programs")
    return out


def cell_warnings(result: dict[str, Any], patterns: set[str]) -> list[str]:
    """What the runner recorded per cell (corrupt messages, placement problems), minus its spread warnings,
    which pattern_warnings reports per metric."""
    out = []
    for cell in result.get("cells", []):
        if cell.get("pattern") not in patterns:
            continue
        for text in cell.get("warnings", []):
            if "across trials" in text:
                continue
            out.append(f"{cell['pattern']} {_label(cell)}: {text}")
    return list(dict.fromkeys(out))


def report_warnings(result: dict[str, Any], tables: list[Table]) -> list[str]:
    """Everything a report should warn about, machine first, then per table, then per cell; no duplicates."""
    out = machine_warnings(result)
    out.extend(pattern_warnings(result, tables))
    out.extend(cell_warnings(result, {t.pattern for t in tables}))
    return list(dict.fromkeys(out))
