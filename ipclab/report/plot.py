"""Plots of a result: latency and throughput vs message size, latency CDFs, CPU cost per message.

matplotlib is an optional extra, imported only when a plot is asked for, with the non-interactive Agg canvas
and no pyplot (no global figure state, no display needed). Output is PNG or SVG bytes; files are reproducible
(no timestamps, fixed SVG ids) so committed samples only change when the figures do.
"""

from __future__ import annotations

import io
import math
from typing import Any

from .. import stats
from ..config import format_size
from ..errors import ConfigError, IpclabError

KINDS = ("latency", "throughput", "cdf", "cpu")
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


def default_kind(result: dict[str, Any]) -> str:
    patterns = {c["pattern"] for c in result["cells"] if c["status"] == "ok"}
    return "latency" if "pingpong" in patterns or "stream" not in patterns else "throughput"


def _placement(cells: list[dict[str, Any]]) -> str:
    places = list(dict.fromkeys(c.get("placement") for c in cells if c.get("placement")))
    return places[0] if len(places) == 1 else "placement varies"


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


def _need(data: dict[str, Any], what: str, hint: str) -> None:
    if not data:
        raise ConfigError(f"--kind: the result has no {what} to plot; {hint}")


def _latency(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    p50 = series(result, "pingpong", "rtt_p50_us")
    _need(p50, "ping-pong round trips", "run with --pattern pingpong, or use --kind throughput")
    p99 = series(result, "pingpong", "rtt_p99_us")
    ax = fig.add_subplot()
    _lines(ax, p50, colors)
    _lines(ax, p99, colors, style="--", label=False, alpha=0.5)
    ax.set_yscale("log")
    _log_axis(ax.yaxis)
    ax.set_ylabel("round trip (µs), lower is better")
    _size_axis(ax, [s for pts in p50.values() for s, _ in pts])
    ax.set_title(f"Round-trip latency vs message size (solid p50, dashed p99)\n"
                 f"{_subtitle(result, _ok(result, 'pingpong'))}", fontsize=10)
    ax.legend(fontsize=8, title="transport", title_fontsize=8)


def _throughput(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    mb = series(result, "stream", "mb_s")
    _need(mb, "stream throughput", "run with --pattern stream, or use --kind latency")
    ax = fig.add_subplot()
    _lines(ax, mb, colors)
    ax.set_yscale("log")
    _log_axis(ax.yaxis)
    ax.set_ylabel("throughput at the consumer (MB/s), higher is better")
    _size_axis(ax, [s for pts in mb.values() for s, _ in pts])
    ax.set_title(f"Stream throughput vs message size (1 MB = 10^6 bytes)\n"
                 f"{_subtitle(result, _ok(result, 'stream'))}", fontsize=10)
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


def cdf_source(result: dict[str, Any]) -> tuple[str, str, str] | None:
    """(pattern, quantile key, description) of the latency distributions a result stores."""
    for pattern, key, what in (("pingpong", "rtt_quantiles_ns", "round-trip latency"),
                               ("reqrep", "ttlb_quantiles_ns", "request to last reply byte"),
                               ("connect", "conn_quantiles_ns", "connect + message + close"),
                               ("stream", "owl_quantiles_ns", "one-way latency under load")):
        if any(t.get("metrics", {}).get(key) for c in _ok(result, pattern) for t in c.get("trials", [])):
            return pattern, key, what
    return None


def merged_quantiles(cell: dict[str, Any], key: str) -> list[float] | None:
    """Pointwise median over trials of the stored quantiles (a trial's distribution is one curve)."""
    curves = [t["metrics"][key] for t in cell.get("trials", [])
              if len(t.get("metrics", {}).get(key) or []) == len(stats.QUANTILE_POINTS)]
    if not curves:
        return None
    return [stats.median(values) for values in zip(*curves)]


def _cdf(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    source = cdf_source(result)
    _need(source or {}, "stored latency distributions", "run a pingpong or stream pattern with sizes >= 16 B")
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


_DRAW = {"latency": _latency, "throughput": _throughput, "cdf": _cdf, "cpu": _cpu}


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
        _DRAW[kind](fig, result, _colors(result))
        buf = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=110, metadata=metadata)
    return buf.getvalue()
