"""Plots of a result: latency and throughput vs message size, latency CDFs, CPU cost per message.

matplotlib is an optional extra, imported only when a plot is asked for, with the non-interactive Agg canvas
and no pyplot (no global figure state, no display needed). Output is PNG or SVG bytes; files are reproducible
(no timestamps, fixed SVG ids) so committed samples only change when the figures do.

What is plotted comes from the patterns' declarations, never their names: ``latency`` draws the headline (p50,
and its p99 dashed) of the first round-trip pattern (``count_class``) in the result, ``throughput`` the MB/s of
the first pattern whose headline it is, ``cdf`` the stored distribution (``quantiles_key``) of the first
pattern that stores one, round-trip patterns first; titles and labels are the declared ones.
"""

from __future__ import annotations

import io
import math
from typing import Any

from .. import stats
from ..config import format_size
from ..declarations import PatternSpec
from ..errors import ConfigError, IpclabError
from ..patterns import specs
from .loadplot import draw as _load  # --kind load: latency vs achieved rate of open-loop cells
from .metrics import METRICS

KINDS = ("latency", "throughput", "cdf", "cpu", "load")
FORMATS = ("png", "svg")
INSTALL_HINT = "pip install 'ipclab[plot]'"
MAX_CDF_PANELS = 9


def require_matplotlib() -> Any:
    """The matplotlib module, or a one-line error saying how to install it."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401 - fail here, not halfway through a plot
    except ImportError:
        raise IpclabError(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from None
    return matplotlib


def _ok(result: dict[str, Any], pattern: str) -> list[dict[str, Any]]:
    return [c for c in result["cells"] if c["pattern"] == pattern and c["status"] == "ok"]


def _recorded(result: dict[str, Any], spec: PatternSpec, key: str | None) -> bool:
    return bool(key) and any(t.get("metrics", {}).get(key) for c in _ok(result, spec.name) for t in c.get("trials", []))


def _latency_specs() -> list[PatternSpec]:
    return [s for s in specs() if s.count_class == "round_trip"]


def _throughput_specs() -> list[PatternSpec]:
    return [s for s in specs() if s.headline == "mb_s"]


def latency_source(result: dict[str, Any]) -> PatternSpec | None:
    """The round-trip pattern whose headline the latency plot draws: the first one the result recorded."""
    return next((s for s in _latency_specs() if _recorded(result, s, s.headline)), None)


def throughput_source(result: dict[str, Any]) -> PatternSpec | None:
    return next((s for s in _throughput_specs() if _recorded(result, s, s.headline)), None)


def default_kind(result: dict[str, Any]) -> str:
    from .load import closed_loop, has_open_loop

    if has_open_loop(result) and not latency_source(closed := closed_loop(result)) and not throughput_source(closed):
        return "load"  # open-loop cells only
    return "throughput" if latency_source(result) is None and throughput_source(result) else "latency"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def caption(result: dict[str, Any], kind: str) -> str:
    """What a plot of ``kind`` shows, in a few words (HTML reports)."""
    if kind == "latency" and (spec := latency_source(result)):
        return f"{_capital(spec.distribution or spec.headline)} vs message size"
    if kind == "throughput" and (spec := throughput_source(result)):
        return f"{_capital(spec.name)} throughput vs message size"
    return {"latency": "Latency vs message size", "throughput": "Throughput vs message size",
            "cdf": "Latency distribution (CDF)", "cpu": "CPU time per message",
            "load": "Latency vs achieved rate (open loop, from the intended send time)"}[kind]


def _placement(cells: list[dict[str, Any]]) -> str:
    places = list(dict.fromkeys(c.get("placement") for c in cells if c.get("placement")))
    return str(places[0]) if len(places) == 1 else "placement varies"


def _subtitle(result: dict[str, Any], cells: list[dict[str, Any]]) -> str:
    trials = result.get("config", {}).get("trials", 1)
    return f"median of {trials} trial{'s' if trials != 1 else ''}; {_placement(cells)}"


def series(result: dict[str, Any], pattern: str, key: str) -> dict[str, list[tuple[int, float]]]:
    """transport -> [(size, median)] for cells with a figure; size 0 is left out (log axes)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for cell in _ok(result, pattern):
        value = cell.get("summary", {}).get(key)
        if isinstance(value, (int, float)) and value > 0 and cell["size_bytes"] > 0:
            out.setdefault(cell["transport"], []).append((cell["size_bytes"], float(value)))
    return {name: sorted(points) for name, points in out.items()}


def _colors(result: dict[str, Any]) -> dict[str, Any]:
    """One colour per transport, the same in every plot of a result."""
    from matplotlib import colormaps

    names = list(dict.fromkeys(c["transport"] for c in result["cells"]))
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _size_axis(ax: Any, sizes: list[int]) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log", base=2)
    ticks = sorted(set(sizes))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [format_size(s) for s in ticks])
    ax.set_xlabel("message size")
    ax.grid(True, which="both", alpha=0.3)


def _log_axis(axis: Any) -> None:
    """Log scale with plain numbers at 1-2-5 steps: '20', '50', '100' read better than '2x10^1'."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = axis.get_view_interval()
    narrow = lo > 0 and hi / lo < 10  # under a decade, 1-2-5 steps would leave one label or none
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if narrow else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _lines(ax: Any, data: dict[str, list[tuple[int, float]]], colors: dict[str, Any], style: str = "-",
           label: bool = True, alpha: float = 1.0) -> None:
    for name, points in data.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, style, marker="o", markersize=4, color=colors.get(name), alpha=alpha,
                label=name if label else None)


def _need(data: object, what: str, hint: str) -> None:
    if not data:
        raise ConfigError(f"--kind: the result has no {what} to plot; {hint}")


def _names(declared: list[PatternSpec]) -> str:
    names = [s.name for s in declared]
    return names[0] + (f" (or {', '.join(names[1:])})" if len(names) > 1 else "")


def _companion(spec: PatternSpec) -> str | None:
    """The p99 drawn dashed next to a p50 headline, if the pattern declares one."""
    declared = {m.key: m for m in spec.metrics}
    if declared.get(spec.headline) is None or declared[spec.headline].percentile != 50.0:
        return None
    return next((m.key for m in spec.metrics if m.percentile == 99.0), None)


def _latency(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    spec = latency_source(result)
    _need(spec, "round trips", f"run with --pattern {_names(_latency_specs())}, or use --kind throughput")
    assert spec is not None
    head = METRICS[spec.headline]
    dashed = _companion(spec)
    p50 = series(result, spec.name, spec.headline)
    _need(p50, "round trips", "only sizes above 0 B are plotted (log axes); run with --size 1 or more")
    ax = fig.add_subplot()
    _lines(ax, p50, colors)
    if dashed:
        _lines(ax, series(result, spec.name, dashed), colors, style="--", label=False, alpha=0.5)
    ax.set_yscale("log")
    _log_axis(ax.yaxis)
    what = head.title.rsplit(", p50", 1)[0] if dashed else head.title
    ax.set_ylabel(f"{what} ({head.unit}), {'higher' if head.higher_is_better else 'lower'} is better")
    _size_axis(ax, [s for pts in p50.values() for s, _ in pts])
    both = " (solid p50, dashed p99)" if dashed else ""
    ax.set_title(f"{_capital(spec.distribution or head.title)} vs message size{both}\n"
                 f"{_subtitle(result, _ok(result, spec.name))}", fontsize=10)
    ax.legend(fontsize=8, title="transport", title_fontsize=8)


def _throughput(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    spec = throughput_source(result)
    declared = _throughput_specs()
    _need(spec, f"{declared[0].name if declared else 'any'} throughput",
          f"run with --pattern {_names(declared)}, or use --kind latency")
    assert spec is not None
    mb = series(result, spec.name, spec.headline)
    _need(mb, f"{spec.name} throughput", "only sizes above 0 B are plotted (log axes); run with --size 1 or more")
    ax = fig.add_subplot()
    _lines(ax, mb, colors)
    ax.set_yscale("log")
    _log_axis(ax.yaxis)
    ax.set_ylabel(METRICS[spec.headline].heading())
    _size_axis(ax, [s for pts in mb.values() for s, _ in pts])
    ax.set_title(f"{_capital(spec.name)} throughput vs message size (1 MB = 10^6 bytes)\n"
                 f"{_subtitle(result, _ok(result, spec.name))}", fontsize=10)
    ax.legend(fontsize=8, title="transport", title_fontsize=8)


def _cpu(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    panels = [(p, series(result, p, "cpu_us_msg")) for p in dict.fromkeys(c["pattern"] for c in result["cells"])]
    panels = [(p, d) for p, d in panels if d]
    _need(panels, "CPU figures", "the result holds no successful cell")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (pattern, data) in zip(axes, panels):
        _lines(ax, data, colors)
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
        ax.set_ylabel("CPU time per message, all workers (µs)")
        _size_axis(ax, [s for pts in data.values() for s, _ in pts])
        ax.set_title(f"{pattern}: {_subtitle(result, _ok(result, pattern))}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("CPU cost per message vs message size (user + system, lower is better)", fontsize=10)


def _distribution_specs() -> list[PatternSpec]:
    """Patterns that store a latency distribution, round-trip patterns first (their latency is the point)."""
    stored = [s for s in specs() if s.quantiles_key]
    return [s for s in stored if s.count_class == "round_trip"] + [s for s in stored if s.count_class != "round_trip"]


def cdf_source(result: dict[str, Any]) -> tuple[str, str, str] | None:
    """(pattern, quantile key, description) of the latency distributions a result stores."""
    for spec in _distribution_specs():
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


def _cdf(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    source = cdf_source(result)
    _need(source, "stored latency distributions",
          f"run a pattern that stores them ({_names(_distribution_specs())}) with sizes >= 16 B")
    assert source is not None
    pattern, key, what = source
    cells = _ok(result, pattern)
    sizes = sorted({c["size_bytes"] for c in cells if merged_quantiles(c, key)})[:MAX_CDF_PANELS]
    cols = min(3, len(sizes))
    rows = math.ceil(len(sizes) / cols)
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax, size in zip(axes, sizes):
        for cell in cells:
            curve = merged_quantiles(cell, key) if cell["size_bytes"] == size else None
            if curve:
                ax.plot([v / 1000.0 for v in curve], stats.QUANTILE_POINTS, color=colors.get(cell["transport"]),
                        label=cell["transport"], drawstyle="steps-post")
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        ax.set_ylim(0, 100)
        ax.set_title(format_size(size), fontsize=9)
        ax.set_xlabel(f"{what} (µs)", fontsize=8)
        ax.set_ylabel("percentile", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(sizes):]:
        ax.set_visible(False)
    fig.suptitle(f"Distribution of {what} ({pattern}); {_subtitle(result, cells)}", fontsize=10)


_DRAW = {"latency": _latency, "throughput": _throughput, "cdf": _cdf, "cpu": _cpu, "load": _load}


def render(result: dict[str, Any], kind: str, fmt: str = "png") -> bytes:
    """One plot of ``kind`` as PNG or SVG bytes."""
    if kind not in KINDS:
        raise ConfigError(f"--kind: unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"plot format {fmt!r} is not supported; use .png or .svg")
    matplotlib = require_matplotlib()
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": "ipclab", "svg.fonttype": "none"}):
        size = (10, 6) if kind in ("cdf", "cpu") else (7, 4.5)
        fig = Figure(figsize=size, layout="constrained")
        from .load import closed_loop  # the size plots: closed-loop cells; open-loop ones: --kind load

        _DRAW[kind](fig, result if kind == "load" else closed_loop(result), _colors(result))
        buf = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=110, metadata=metadata)
    return buf.getvalue()
