"""Latency distributions: ``cdf`` (one panel per size, a curve per transport) and ``hist`` (one panel per chosen
cell, log-scaled bins).

Both read the stored distribution of the first pattern that keeps one (plotdata.cdf_source). A histogram is
drawn from the trials' pooled sample histograms (ipclab.histogram, exact to 0.4 %) where the result has them,
else from the stored quantiles (a file written before histograms were kept): the share of samples between two
neighbouring quantiles is spread evenly over that stretch of the log axis, which the panel says.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from .. import stats
from ..errors import ConfigError
from ..histogram import Histogram, bucket_bounds
from ..units import format_size
from .plotdata import cdf_source, distribution_specs, merged_quantiles, names, need, ok_cells, subtitle
from .plotstyle import P50_STYLE, P99_STYLE, log_axis, ordered, outside_legend, style_handles, transport_style

MAX_CDF_PANELS = 9
MAX_HIST_CELLS = 8
P50_INDEX = stats.QUANTILE_POINTS.index(50.0)
TAIL_INDEX = stats.QUANTILE_POINTS.index(99.9)


def _source(result: dict[str, Any]) -> tuple[str, str, str]:
    source = cdf_source(result)
    need(source, "stored latency distributions",
         f"run a pattern that stores them ({names(distribution_specs())}) with sizes >= 16 B")
    assert source is not None
    return source


def _pooled_key(key: str) -> str:
    """The summary key whose basis (pooled or median) the title names: the distribution's p50."""
    return f"{key.removesuffix('_quantiles_ns')}_p50_us"


def _positive(values: list[float]) -> list[float]:
    floor = min((v for v in values if v > 0), default=1.0)
    return [max(v, floor) for v in values]


def draw_cdf(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    pattern, key, what = _source(result)
    cells = ok_cells(result, pattern)
    curves = {(c["transport"], c["size_bytes"]): curve for c in cells if (curve := merged_quantiles(c, key))}
    every = sorted({size for _, size in curves})
    sizes = every[:MAX_CDF_PANELS]
    cols = min(3, len(sizes))
    rows = math.ceil(len(sizes) / cols)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).flatten()
    for ax, size in zip(axes, sizes):
        drawn = [name for name in ordered(t for t, s in curves if s == size)]
        lo, hi = math.inf, 0.0
        for name in drawn:
            us = _positive([v / 1000.0 for v in curves[(name, size)]])
            colour, marker = transport_style(name)
            ax.plot(us, stats.QUANTILE_POINTS, color=colour, drawstyle="steps-post", linewidth=1.3, marker=marker,
                    markevery=[P50_INDEX], markersize=5, label=name)
            lo, hi = min(lo, us[0]), max(hi, us[-1])
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.15, hi * 1.15)
        log_axis(ax.xaxis, lo / 1.15, hi * 1.15)
        ax.set_ylim(0, 100)
        ax.set_title(format_size(size), fontsize=9)
        ax.set_xlabel(f"{what} (µs)", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in axes[::cols]:
        ax.set_ylabel("percentile", fontsize=8)
    for ax in axes[len(sizes):]:
        ax.set_visible(False)
    left_out = f"{len(every) - len(sizes)} more sizes not shown: choose them with --size" \
        if len(every) > len(sizes) else ""
    fig.suptitle("\n".join(filter(None, [
        f"Distribution of {what} ({pattern}); marker at p50; x from the fastest to the slowest sample",
        subtitle(result, cells, _pooled_key(key)), left_out])), fontsize=10)
    outside_legend(fig, list(dict.fromkeys(name for name, _ in curves)))


# -- histograms ------------------------------------------------------------------------------------------------
Distribution = tuple[str, list[tuple[float, float]], int | None]  # how, (value ns, weight) or quantiles, samples


def distribution(cell: dict[str, Any], key: str) -> Distribution | None:
    """("samples", [(bucket midpoint ns, count)], n) from the trials' histograms, or ("quantiles",
    [(value ns, percentile)], None) from the stored quantiles; None if the cell stores neither."""
    prefix = key.removesuffix("_quantiles_ns")
    parts = [t.get("histograms", {}).get(prefix) for t in cell.get("trials", [])]
    if parts and all(parts):
        merged = Histogram.merged(Histogram.from_json(p) for p in parts)
        if merged.count and merged.min is not None and merged.max is not None:
            low, high = merged.min, merged.max
            pairs = [(min(max(sum(bucket_bounds(b)) / 2.0, low), high), float(n)) for b, n in merged.counts.items()]
            return "samples", sorted(pairs), merged.count
    curve = merged_quantiles(cell, key)
    if curve is None:
        return None
    return "quantiles", list(zip(_positive(curve), stats.QUANTILE_POINTS)), None


def shares(dist: Distribution, edges: list[float]) -> list[float]:
    """The percentage of samples in each bin between neighbouring ``edges`` (ns, increasing); samples outside
    the edges are in no bin (100 minus the sum is the share beyond the axis)."""
    from bisect import bisect_right

    out = [0.0] * (len(edges) - 1)

    def put(value: float, weight: float) -> None:
        if edges[0] <= value <= edges[-1]:
            out[min(bisect_right(edges, value) - 1, len(out) - 1)] += weight

    how, pairs, _n = dist
    if how == "samples":
        total = sum(w for _, w in pairs)
        for value, weight in pairs:
            put(value, 100.0 * weight / total)
        return out
    for (v0, p0), (v1, p1) in zip(pairs, pairs[1:]):
        mass = p1 - p0
        if mass <= 0:
            continue
        if v1 <= v0:
            put(v0, mass)
            continue
        a, b = math.log(v0), math.log(v1)  # spread evenly over [v0, v1] on the log axis
        for i in range(len(out)):
            lo, hi = max(a, math.log(edges[i])), min(b, math.log(edges[i + 1]))
            if hi > lo:
                out[i] += mass * (hi - lo) / (b - a)
    return out


def _select(result: dict[str, Any]) -> tuple[str, str, str, list[tuple[dict[str, Any], Distribution]]]:
    pattern, key, what = _source(result)
    chosen = [(c, d) for c in ok_cells(result, pattern) if (d := distribution(c, key))]
    if len(chosen) > MAX_HIST_CELLS:
        transports = ordered(c["transport"] for c, _ in chosen)
        sizes = sorted({c["size_bytes"] for c, _ in chosen})
        example = f"--transport {','.join(transports[:2])} --size {sizes[min(1, len(sizes) - 1)]}"
        raise ConfigError(f"--kind hist: {len(chosen)} {pattern} cells selected ({len(transports)} transports x "
                          f"{len(sizes)} sizes), at most {MAX_HIST_CELLS} fit one plot; choose fewer with "
                          f"--transport and --size, e.g. {example}")
    return pattern, key, what, chosen


def draw_hist(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    pattern, key, what, chosen = _select(result)
    rank = {name: i for i, name in enumerate(ordered(c["transport"] for c, _ in chosen))}
    chosen.sort(key=lambda cd: (cd[0]["size_bytes"], rank[cd[0]["transport"]]))
    # x from the fastest sample to the slowest p99.9 (with room): a few stalls would otherwise squeeze every
    # distribution into a sliver; each title gives the max and the share of samples beyond the axis.
    lo = min(d[1][0][0] for _, d in chosen)
    tails = [curve[TAIL_INDEX] for c, _ in chosen if (curve := merged_quantiles(c, key))]
    hi = min(max(d[1][-1][0] for _, d in chosen), max(tails) * 1.5) if tails else max(d[1][-1][0] for _, d in chosen)
    hi = max(hi, lo * 1.5)
    decades = math.log10(hi / lo)
    count = min(160, max(24, round(decades * 40)))  # 40 bins a decade: a bin is 6 % wide
    edges = [lo * (hi * 1.0001 / lo) ** (i / count) for i in range(count + 1)]
    cols = 1 if len(chosen) <= 4 else 2
    rows = math.ceil(len(chosen) / cols)
    fig.set_size_inches(9.5 if cols == 2 else 8.0, 1.2 + 1.7 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).flatten()
    edges_us = [e / 1000.0 for e in edges]
    for ax, (cell, dist) in zip(axes, chosen):
        colour, _marker = transport_style(cell["transport"])
        heights = shares(dist, edges)
        ax.stairs(heights, edges_us, fill=True, color=colour, alpha=0.55, label=cell["transport"])
        curve = merged_quantiles(cell, key) or []
        marks = []
        for p, style in ((50.0, P50_STYLE), (99.0, P99_STYLE)):
            if curve:
                value = curve[stats.QUANTILE_POINTS.index(p)] / 1000.0
                ax.axvline(value, color=colour, linestyle=style, linewidth=1.2)
                marks.append(f"p{p:g} {value:.3g}")
        if dist[1]:
            marks.append(f"max {dist[1][-1][0] / 1000.0:.3g}")
        beyond = 100.0 - sum(heights)
        parts = [f"{cell['transport']} {format_size(cell['size_bytes'])}: {', '.join(marks)} µs"]
        parts += [f"{beyond:.2g} % off the axis"] if beyond >= 0.005 else []
        parts += [f"n = {dist[2]}"] if dist[2] else []
        ax.set_title(textwrap.fill("; ".join(parts), 62 if cols == 2 else 110), fontsize=8)
        ax.set_ylabel("% of samples", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_xscale("log")
    axes[0].set_xlim(edges_us[0], edges_us[-1])
    log_axis(axes[0].xaxis, edges_us[0], edges_us[-1])
    for ax in axes[len(chosen):]:
        ax.set_visible(False)
    for ax in axes[-cols:]:
        ax.set_xlabel(f"{what} (µs), log-scaled bins", fontsize=8)
    approximate = "bins spread from the stored quantiles (the file has no histograms): approximate" \
        if any(d[0] == "quantiles" for _, d in chosen) else ""
    fig.suptitle("\n".join(filter(None, [f"Histogram of {what} ({pattern}); solid line p50, dashed p99",
                                          subtitle(result, [c for c, _ in chosen], _pooled_key(key)),
                                          approximate])), fontsize=10)
    outside_legend(fig, list(dict.fromkeys(c["transport"] for c, _ in chosen)), style_handles(True, False))
