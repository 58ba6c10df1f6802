"""``ipclab plot --kind load``: latency against the achieved rate of open-loop cells (--rate), the knee of each
mechanism.

p50 solid and p99 dashed, one colour per transport (plot.py's colours), log-log; a saturated cell (achieved rate
more than 5 % below the offered one) is drawn as a hollow marker with a cross, and the legend outside the axes says
so. The y values are the pattern's latency measured from the intended send time (coordinated-omission safe), the x
values the achieved rates, so a saturated mechanism's curve bends back instead of running on. One panel per
pattern with open-loop cells; several sizes of one transport are separate lines labelled with the size.
"""

from __future__ import annotations

from typing import Any

from ..config import format_size
from ..errors import ConfigError
from ..patterns import PATTERNS, get_spec
from .load import format_rate, latency_keys, open_loop, rate_of, saturated

HINT = ("run with --rate, e.g. ipclab run -p pingpong --rate 1000,10000,50000,max; or choose another --kind "
        "(latency, throughput, cdf, cpu)")


def points(result: dict[str, Any], pattern: str) -> dict[tuple[str, int], list[tuple[float, float, float, bool]]]:
    """(transport, size) -> [(achieved rate, p50, p99, saturated)] of the pattern's measured open-loop cells,
    in order of offered rate; cells without an achieved rate or a positive latency are left out (log axes)."""
    cells = [c for c in result["cells"] if c["pattern"] == pattern and open_loop(c) and c["status"] == "ok"]
    p50, p99 = latency_keys(pattern, cells)
    out: dict[tuple[str, int], list[tuple[float, float, float, bool]]] = {}
    for cell in sorted(cells, key=lambda c: rate_of(c) or 0.0):
        summary = cell.get("summary", {})
        achieved, low, high = (summary.get(k) for k in ("achieved_msg_s", p50, p99))
        if all(isinstance(v, (int, float)) and v > 0 for v in (achieved, low, high)):
            key = (cell["transport"], cell["size_bytes"])
            out.setdefault(key, []).append((float(achieved), float(low), float(high), saturated(cell)))
    return out


def closed_points(result: dict[str, Any], pattern: str, keys: set[tuple[str, int]]) -> dict[tuple[str, int],
                                                                                     tuple[float, float, float]]:
    """(transport, size) -> (rate, p50, p99) of the closed-loop ("max") cell beside each plotted open-loop line:
    its own rate (msg_s: one over the mean round trip) and its latency from the actual send."""
    cells = [c for c in result["cells"] if c["pattern"] == pattern and not open_loop(c) and c["status"] == "ok"
             and (c["transport"], c["size_bytes"]) in keys]
    p50, p99 = latency_keys(pattern, cells)
    out = {}
    for cell in cells:
        summary = cell.get("summary", {})
        rate, low, high = (summary.get(k) for k in ("msg_s", p50, p99))
        if all(isinstance(v, (int, float)) and v > 0 for v in (rate, low, high)):
            out[(cell["transport"], cell["size_bytes"])] = (float(rate), float(low), float(high))
    return out


def draw(fig: Any, result: dict[str, Any], colors: dict[str, Any]) -> None:
    """The load plot on ``fig`` (plot.render's _DRAW signature); ConfigError if nothing is open loop."""
    from .plotstyle import log_axis, placement_note, transport_style

    patterns = list(dict.fromkeys(c["pattern"] for c in result["cells"] if open_loop(c) and c["status"] == "ok"))
    panels = [(p, d) for p in patterns if (d := points(result, p))]
    if not panels:
        raise ConfigError(f"--kind load: the result has no open-loop cells with an achieved rate; {HINT}")
    fig.set_size_inches(4.5 * len(panels) + 4.5, 5)  # room for the legend outside the axes
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (pattern, data) in zip(axes, panels):
        several = len({size for _, size in data}) > 1
        loops = closed_points(result, pattern, set(data))
        for (transport, size), pts in data.items():
            xs = [p[0] for p in pts]
            name = f"{transport} {format_size(size)}" if several else transport
            color, marker = colors.get(transport) or transport_style(transport)[0], transport_style(transport)[1]
            ax.plot(xs, [p[1] for p in pts], "-", marker=marker, markersize=4, color=color, label=name)
            ax.plot(xs, [p[2] for p in pts], "--", marker=marker, markersize=3, color=color, alpha=0.6)
            if (closed := loops.get((transport, size))) is not None:  # the closed loop, at its own rate
                ax.plot([closed[0]] * 2, closed[1:], ":", marker=marker, markersize=6, color=color,
                        markerfacecolor="white")
            full = [p for p in pts if p[3]]
            if full:
                ax.plot([p[0] for p in full], [p[1] for p in full], "x", markersize=9, color=color,
                        linestyle="none")
        ax.set_xscale("log")
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        log_axis(ax.xaxis)
        ax.xaxis.set_major_formatter(_rate_formatter())
        ax.grid(True, which="both", alpha=0.3)
        spec = get_spec(pattern) if pattern in PATTERNS else None
        per = "round trip" if spec and spec.count_class == "round_trip" else "message"
        what = (spec.distribution if spec else "") or "latency"
        ax.set_xlabel(f"achieved rate ({per}s per second)")
        ax.set_ylabel("latency from the intended send (µs)")
        cells = [c for c in result["cells"] if c["pattern"] == pattern and open_loop(c) and c["status"] == "ok"]
        samples = [info.get("samples") for c in cells for info in (c.get("pooled") or {}).values()
                   if latency_keys(pattern, cells)[0] in info.get("keys", ())]
        counted = f"{min(samples)}–{max(samples)}" if samples and min(samples) != max(samples) else (
            f"{samples[0]}" if samples else "")
        n = f", n = {counted} {per}s per cell" if counted else ""
        trials = result.get("config", {}).get("trials", 1)
        ax.set_title(f"{pattern}: {what} per {per}{n}\nall samples of {trials} trial{'s' if trials != 1 else ''} "
                     f"pooled; {placement_note(cells)}", fontsize=9)
        _legend(ax, any(p[3] for pts in data.values() for p in pts), bool(loops))
    fig.suptitle("Latency under load (open loop, from the intended send time): solid p50, dashed p99", fontsize=10)


def _rate_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: format_rate(v) if v >= 1 else f"{v:g}")


def _legend(ax: Any, marked: bool, closed: bool = False) -> None:
    """Transports, then what the line styles and the cross mean; outside the axes, right of the plot."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="grey", linestyle="-"), Line2D([], [], color="grey", linestyle="--")]
    labels += ["p50", "p99"]
    if closed:
        handles.append(Line2D([], [], color="grey", marker="o", linestyle=":", markerfacecolor="white"))
        labels.append("closed loop (max): p50-p99\nat its own rate")
    if marked:
        handles.append(Line2D([], [], color="grey", marker="x", linestyle="none", markersize=8))
        labels.append("saturated (achieved < 95 % of offered,\nor median send > 1 interval late)")
    ax.legend(handles, labels, fontsize=7, title="transport", title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
