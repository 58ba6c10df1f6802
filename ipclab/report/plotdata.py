"""What the plots draw, read from a result: which pattern each kind plots, the points with their ranges across
trials, the stored latency distributions, and the title lines. Pure data, no matplotlib.

What is plotted comes from the patterns' declarations, never their names: ``latency`` draws the headline (p50,
and its p99) of the first round-trip pattern (``count_class``) in the result, ``throughput`` the MB/s of the
first pattern whose headline it is, ``cdf`` and ``hist`` the stored distribution (``quantiles_key``) of the
first pattern that stores one, round-trip patterns first.
"""

from __future__ import annotations

from typing import Any

from .. import stats
from ..declarations import PatternSpec
from ..errors import ConfigError
from ..patterns import specs
from .cells import figure_range
from .metrics import METRICS, summary_basis
from .plotstyle import ordered, placement_note

Point = tuple[int, float, float, float]  # size, figure, lowest and highest per-trial figure (the figure if none)


def ok_cells(result: dict[str, Any], pattern: str) -> list[dict[str, Any]]:
    return [c for c in result["cells"] if c["pattern"] == pattern and c["status"] == "ok"]


def _recorded(result: dict[str, Any], spec: PatternSpec, key: str | None) -> bool:
    return bool(key) and any(t.get("metrics", {}).get(key) for c in ok_cells(result, spec.name)
                             for t in c.get("trials", []))


def latency_specs() -> list[PatternSpec]:
    return [s for s in specs() if s.count_class == "round_trip"]


def throughput_specs() -> list[PatternSpec]:
    return [s for s in specs() if s.headline == "mb_s"]


def latency_source(result: dict[str, Any]) -> PatternSpec | None:
    """The round-trip pattern whose headline the latency plot draws: the first one the result recorded."""
    return next((s for s in latency_specs() if _recorded(result, s, s.headline)), None)


def throughput_source(result: dict[str, Any]) -> PatternSpec | None:
    return next((s for s in throughput_specs() if _recorded(result, s, s.headline)), None)


def distribution_specs() -> list[PatternSpec]:
    """Patterns that store a latency distribution, round-trip patterns first (their latency is the point)."""
    stored = [s for s in specs() if s.quantiles_key]
    return [s for s in stored if s.count_class == "round_trip"] + [s for s in stored if s.count_class != "round_trip"]


def cdf_source(result: dict[str, Any]) -> tuple[str, str, str] | None:
    """(pattern, quantile key, description) of the latency distributions a result stores."""
    for spec in distribution_specs():
        if _recorded(result, spec, spec.quantiles_key):
            return spec.name, str(spec.quantiles_key), spec.distribution
    return None


def merged_quantiles(cell: dict[str, Any], key: str) -> list[float] | None:
    """The quantiles of the pooled samples of all trials (cell["pooled"]), or in a file written before pooling
    the pointwise median over trials of the stored quantiles (a trial's distribution is one curve)."""
    pooled = (cell.get("pooled") or {}).get(key.removesuffix("_quantiles_ns"), {}).get("quantiles_ns")
    if pooled and len(pooled) == len(stats.QUANTILE_POINTS):
        return [float(v) for v in pooled]
    curves = [t["metrics"][key] for t in cell.get("trials", [])
              if len(t.get("metrics", {}).get(key) or []) == len(stats.QUANTILE_POINTS)]
    if not curves:
        return None
    return [stats.median(values) for values in zip(*curves)]


def series(result: dict[str, Any], pattern: str, key: str) -> dict[str, list[tuple[int, float]]]:
    """transport -> [(size, summary figure)] for the cells with a figure above 0 (log axes), 0 B included."""
    return {name: [(p[0], p[1]) for p in pts] for name, pts in points(ok_cells(result, pattern), key).items()}


def points(cells: list[dict[str, Any]], key: str) -> dict[str, list[Point]]:
    """transport -> [(size, figure, low, high)] in registry order: low-high is the range across trials."""
    out: dict[str, list[Point]] = {}
    for cell in cells:
        value = cell.get("summary", {}).get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            continue
        spread = figure_range(cell, key) or (value, value)
        low, high = min(spread[0], value), max(spread[1], value)  # a pooled figure may sit outside the trials'
        out.setdefault(cell["transport"], []).append((cell["size_bytes"], float(value), float(low), float(high)))
    return {name: sorted(out[name]) for name in ordered(out)}


def zero_note(result: dict[str, Any], pattern: str, key: str, plotted: dict[str, list[Point]]) -> str:
    """Why a transport the result ran at 0 B has no 0 B point, in a few words ("" when nothing is missing)."""
    zero = [c for c in result["cells"] if c["pattern"] == pattern and c["size_bytes"] == 0]
    missing = [c for c in zero if not any(p[0] == 0 for p in plotted.get(c["transport"], []))]
    if not missing:
        return ""
    groups: dict[str, list[str]] = {}
    for c in missing:
        why = str(c.get("reason") or c["status"]) if c["status"] != "ok" else \
            f"{METRICS[key].unit if key in METRICS else key} is not defined at 0 B"
        groups.setdefault(why, []).append(c["transport"])
    parts = []
    for why, transports in groups.items():
        listed = ordered(transports)
        who = "any transport" if len(missing) == len(zero) and len(groups) == 1 else \
            ", ".join(listed[:3]) + (f" (+{len(listed) - 3})" if len(listed) > 3 else "")
        parts.append(f"{who}: {why}")
    return "no 0 B point for " + "; ".join(parts)


def need(data: object, what: str, hint: str) -> None:
    if not data:
        raise ConfigError(f"--kind: the result has no {what} to plot; {hint}")


def names(declared: list[PatternSpec]) -> str:
    listed = [s.name for s in declared]
    return listed[0] + (f" (or {', '.join(listed[1:])})" if len(listed) > 1 else "")


def trials_note(result: dict[str, Any], cells: list[dict[str, Any]], key: str | None = None) -> str:
    """How the drawn figures were made: pooled percentiles or medians, over how many trials."""
    trials = result.get("config", {}).get("trials", 1)
    many = f"{trials} trial{'s' if trials != 1 else ''}"
    if key and cells and all(summary_basis(c, key) == "pooled" for c in cells):
        return f"all samples of {many} pooled"
    return f"median of {many}"


def subtitle(result: dict[str, Any], cells: list[dict[str, Any]], key: str | None = None) -> str:
    return f"{trials_note(result, cells, key)}; {placement_note(cells)}"
