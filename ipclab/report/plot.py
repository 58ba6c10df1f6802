"""Plots of a result: latency and throughput vs message size, latency CDFs and histograms, CPU cost per message.

matplotlib is an optional extra, imported only when a plot is asked for, with the non-interactive Agg canvas
and no pyplot (no global figure state, no display needed). Output is PNG or SVG bytes; files are reproducible
(no timestamps, fixed SVG ids) so committed samples only change when the figures do.

A kind is a function drawing onto a Figure, registered in KINDS and _DRAW. What each kind reads from the result
is in plotdata.py; how it looks (a fixed colour and marker per transport, p50 solid / p99 dashed, legends
outside the axes, readable ticks) in plotstyle.py; the distributions (``cdf``, ``hist``) in distplot.py.
Every size plot draws the range across trials as error bars and places 0 B on the size axis (or says why a
transport has no 0 B point); every title says which lines ran on a different CPU placement.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from ..errors import ConfigError, IpclabError
from .distplot import MAX_HIST_CELLS, draw_cdf, draw_hist
from .loadplot import draw as draw_load  # --kind load: latency vs achieved rate of open-loop cells
from .metrics import METRICS
from .plotdata import (
    Point,
    cdf_source,
    latency_source,
    latency_specs,
    merged_quantiles,
    names,
    need,
    ok_cells,
    points,
    series,
    subtitle,
    throughput_source,
    throughput_specs,
    zero_note,
)
from .plotstyle import (
    P50_STYLE,
    P99_STYLE,
    colors_of,
    declutter,
    log_axis,
    outside_legend,
    size_axis,
    style_handles,
    transport_style,
)

__all__ = ["FORMATS", "INSTALL_HINT", "KINDS", "MAX_HIST_CELLS", "caption", "cdf_source", "default_kind",
           "figure", "latency_source", "merged_quantiles", "render", "require_matplotlib", "series",
           "throughput_source", "transport_style"]

KINDS = ("latency", "throughput", "cdf", "hist", "cpu", "load")
FORMATS = ("png", "svg")
INSTALL_HINT = "pip install 'ipclab[plot]'"
SPLIT_AT = 6  # more transports than this: p50 and p99 in two panels instead of one crowded one


def require_matplotlib() -> Any:
    """The matplotlib module, or a one-line error saying how to install it."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401 - fail here, not halfway through a plot
    except ImportError:
        raise IpclabError(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from None
    return matplotlib


def default_kind(result: dict[str, Any]) -> str:
    from .load import closed_loop, has_open_loop

    if has_open_loop(result) and not latency_source(closed := closed_loop(result)) and not throughput_source(closed):
        return "load"  # open-loop cells only
    return "throughput" if latency_source(result) is None and throughput_source(result) else "latency"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


CAPTIONS = {"latency": "Latency vs message size", "throughput": "Throughput vs message size",
            "cdf": "Latency distribution (CDF)", "hist": "Latency histogram", "cpu": "CPU time per message",
            "load": "Latency vs achieved rate (open loop, from the intended send time)"}


def caption(result: dict[str, Any], kind: str) -> str:
    """What a plot of ``kind`` shows, in a few words (HTML reports)."""
    if kind == "latency" and (spec := latency_source(result)):
        return f"{_capital(spec.distribution or spec.headline)} vs message size"
    if kind == "throughput" and (spec := throughput_source(result)):
        return f"{_capital(spec.name)} throughput vs message size"
    return CAPTIONS.get(kind, _capital(kind))


def _colors(result: dict[str, Any]) -> dict[str, Any]:
    """transport -> colour for the transports of ``result``: the fixed colour of each (plotstyle.STYLES), so the
    same in every plot of every result. Use ``transport_style(name)`` for the marker too."""
    return colors_of(list(dict.fromkeys(c["transport"] for c in result["cells"])))


# -- drawing helpers -------------------------------------------------------------------------------------------
def _draw(ax: Any, data: dict[str, list[Point]], style: str = P50_STYLE, alpha: float = 1.0) -> bool:
    """One line per transport with its marker and the range across trials as error bars; True if any bar
    has a length (trials differed somewhere)."""
    bars = False
    for name, pts in data.items():
        colour, marker = transport_style(name)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        below = [p[1] - p[2] for p in pts]
        above = [p[3] - p[1] for p in pts]
        bars = bars or any(below) or any(above)
        ax.errorbar(xs, ys, yerr=[below, above], linestyle=style, marker=marker, markersize=4, color=colour,
                    alpha=alpha, capsize=2, elinewidth=0.8, linewidth=1.4, label=name)
    return bars


def _value_axis(ax: Any, data: list[dict[str, list[Point]]]) -> None:
    """Log y with limits from the data (error bars included) and readable ticks."""
    lows = [p[2] for d in data for pts in d.values() for p in pts]
    highs = [p[3] for d in data for pts in d.values() for p in pts]
    lo, hi = min(lows), max(highs)
    ax.set_yscale("log")
    ax.set_ylim(lo / 1.25, hi * 1.25)
    log_axis(ax.yaxis, lo / 1.25, hi * 1.25)
    ax.grid(True, which="major", axis="y", alpha=0.3)


def _sizes(*data: dict[str, list[Point]]) -> list[int]:
    return sorted({p[0] for d in data for pts in d.values() for p in pts})


def _title(fig: Any, head: str, lines: list[str]) -> None:
    """The figure's title: a head line, then notes, each wrapped to the width left of the legend."""
    width = int(fig.get_figwidth() * 9)  # characters of 10 pt text per inch, with the legend's column taken off
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in [head, *lines] if line), fontsize=10)


# -- kinds -----------------------------------------------------------------------------------------------------
def _latency(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    spec = latency_source(result)
    need(spec, "round trips", f"run with --pattern {names(latency_specs())}, or use --kind throughput")
    assert spec is not None
    head = METRICS[spec.headline]
    cells = ok_cells(result, spec.name)
    p50 = points(cells, spec.headline)
    need(p50, "round trips", "every round-trip cell is n/a or failed; see the tables")
    companion = _companion(spec)
    p99 = points(cells, companion) if companion else {}
    what = head.title.rsplit(", p50", 1)[0] if companion else head.title
    ylabel = f"{what} ({head.unit}), {'higher' if head.higher_is_better else 'lower'} is better"
    split = bool(p99) and len(p50) > SPLIT_AT
    if split:
        axes = list(fig.subplots(1, 2, sharey=True))
        bars = _draw(axes[0], p50) | _draw(axes[1], p99, P99_STYLE)
        axes[0].set_title("p50 (solid)", fontsize=9)
        axes[1].set_title("p99 (dashed)", fontsize=9)
    else:
        axes = [fig.add_subplot()]
        bars = _draw(axes[0], p50) | (_draw(axes[0], p99, P99_STYLE, alpha=0.6) if p99 else False)
    mark_losses(axes[0], cells, p50)
    for ax in axes:
        size_axis(ax, _sizes(p50, p99))
        _value_axis(ax, [p50, p99])
    axes[0].set_ylabel(ylabel)
    both = " (p50 and p99)" if p99 else ""
    _title(fig, f"{_capital(spec.distribution or head.title)} vs message size{both}",
           [subtitle(result, cells, spec.headline), zero_note(result, spec.name, spec.headline, p50)])
    outside_legend(fig, list(p50), style_handles(bool(p99), bars))


def _companion(spec: Any) -> str | None:
    """The p99 drawn next to a p50 headline, if the pattern declares one."""
    declared = {m.key: m for m in spec.metrics}
    if declared.get(spec.headline) is None or declared[spec.headline].percentile != 50.0:
        return None
    return next((m.key for m in spec.metrics if m.percentile == 99.0), None)


def mark_losses(ax: Any, cells: list[dict[str, Any]], data: dict[str, list[Point]]) -> int:
    """Beside each plotted point of a cell that lost messages, "N% lost" in its transport's colour: a lossy cell
    shows its loss wherever its speed is shown, the same figure as the tables (the median of its trials, or the
    worst trial's where the median is 0). Returns how many points were marked."""
    from .cells import loss_pct  # what the tables print beside the same figure

    marked = 0
    for cell in cells:
        loss = loss_pct(cell)
        if loss is None:
            continue
        at = next((p for p in data.get(cell["transport"], []) if p[0] == cell["size_bytes"]), None)
        if at is None:
            continue
        ax.annotate(f"{loss:.2g}% lost", (at[0], at[1]), xytext=(4, -10), textcoords="offset points", fontsize=7,
                    color=transport_style(cell["transport"])[0])
        marked += 1
    return marked


def _throughput(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    spec = throughput_source(result)
    declared = throughput_specs()
    need(spec, f"{declared[0].name if declared else 'any'} throughput",
         f"run with --pattern {names(declared)}, or use --kind latency")
    assert spec is not None
    cells = ok_cells(result, spec.name)
    mb = points(cells, spec.headline)
    need(mb, f"{spec.name} throughput", "every cell is n/a or failed; see the tables")
    ax = fig.add_subplot()
    bars = _draw(ax, mb)
    mark_losses(ax, cells, mb)
    size_axis(ax, _sizes(mb))
    _value_axis(ax, [mb])
    ax.set_ylabel(METRICS[spec.headline].heading())
    _title(fig, f"{_capital(spec.name)} throughput vs message size (1 MB = 10^6 bytes)",
           [subtitle(result, cells), zero_note(result, spec.name, spec.headline, mb)])
    outside_legend(fig, list(mb), style_handles(False, bars)[1:] or None)


def _cpu(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    patterns = list(dict.fromkeys(c["pattern"] for c in result["cells"]))
    panels = [(p, points(ok_cells(result, p), "cpu_us_msg")) for p in patterns]
    panels = [(p, d) for p, d in panels if d]
    need(panels, "CPU figures", "the result holds no successful cell")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    bars = False
    for ax, (pattern, data) in zip(axes, panels):
        bars = _draw(ax, data) or bars
        size_axis(ax, _sizes(data))
        _value_axis(ax, [data])
        ax.set_ylabel("CPU time per message, all workers (µs)")
        cells = ok_cells(result, pattern)
        note = zero_note(result, pattern, "cpu_us_msg", data)
        lines = [f"{pattern}: {subtitle(result, cells)}", note]
        ax.set_title("\n".join(textwrap.fill(line, 70) for line in lines if line), fontsize=8)
    _title(fig, "CPU cost per message vs message size (user + system, lower is better)", [])
    outside_legend(fig, list(dict.fromkeys(n for _, d in panels for n in d)), style_handles(False, bars)[1:] or None)


_DRAW = {"latency": _latency, "throughput": _throughput, "cdf": draw_cdf, "hist": draw_hist, "cpu": _cpu,
         "load": draw_load}
_SIZES = {"latency": (9.5, 5.0), "throughput": (8.5, 5.0), "cdf": (11, 6.5), "cpu": (11.5, 5.5)}


def figure(result: dict[str, Any], kind: str) -> Any:
    """The matplotlib Figure of a plot of ``kind`` (drawn once, so tick labels are final)."""
    if kind not in KINDS:
        raise ConfigError(f"--kind: unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    require_matplotlib()
    from matplotlib.figure import Figure

    from .load import closed_loop  # the size plots: closed-loop cells; open-loop ones: --kind load

    fig = Figure(figsize=_SIZES.get(kind, (8.5, 5.0)), layout="constrained")
    _DRAW[kind](fig, result if kind == "load" else closed_loop(result), _colors(result))
    declutter(fig)
    return fig


def render(result: dict[str, Any], kind: str, fmt: str = "png") -> bytes:
    """One plot of ``kind`` as PNG or SVG bytes."""
    if kind not in KINDS:
        raise ConfigError(f"--kind: unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"plot format {fmt!r} is not supported; use .png or .svg")
    matplotlib = require_matplotlib()
    with matplotlib.rc_context({"svg.hashsalt": "ipclab", "svg.fonttype": "none"}):
        fig = figure(result, kind)
        buf = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=110, metadata=metadata)
    return buf.getvalue()
