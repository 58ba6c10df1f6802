"""How every plot looks: one colour and marker per transport, line styles, axes, legends and titles.

A transport's style comes from a fixed table keyed by its name (never from the order cells appear in a result),
so pipe is the same blue circle in every plot of every result. The colours are the Okabe-Ito palette, which
stays distinct for the common colour-vision deficiencies, plus four of Paul Tol's; with 17 transports some
colours repeat, so the marker is the second cue: no two transports share both, and the pairs people compare
(pipe/unix, tcp/udp, shm/shm-spin, zmq-ipc/zmq-tcp, mp-pipe/mp-queue) differ in both. A plug-in transport gets
a (colour, marker) pair the table leaves free, chosen from a checksum of its name, so it is stable too.

matplotlib is imported inside the functions that need it (plots are an optional extra).
"""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Any, Final, Literal

from ..units import format_size

BLUE, ORANGE, VERMILLION, GREEN = "#0072B2", "#E69F00", "#D55E00", "#009E73"  # Okabe-Ito
PINK, BLACK, SKY = "#CC79A7", "#000000", "#56B4E9"
INDIGO, OLIVE, WINE, GREY = "#332288", "#999933", "#882255", "#777777"  # Paul Tol (muted)
COLOURS = (BLUE, ORANGE, VERMILLION, GREEN, PINK, BLACK, SKY, INDIGO, OLIVE, WINE, GREY)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "d", "h", "*", "p", "H", "8")

# In registry order (legends list transports in this order).
STYLES: dict[str, tuple[str, str]] = {
    "pipe": (BLUE, "o"), "unix": (ORANGE, "s"), "tcp": (VERMILLION, "^"), "udp": (GREEN, "D"),
    "shm": (PINK, "v"), "shm-spin": (BLACK, "P"), "mmap": (SKY, "X"), "fifo": (INDIGO, "<"),
    "unix-dgram": (OLIVE, ">"), "unix-seqpacket": (WINE, "d"), "posix-mq": (GREY, "h"), "sysv-mq": (GREEN, "*"),
    "zmq-ipc": (SKY, "p"), "zmq-tcp": (PINK, "H"), "mp-pipe": (ORANGE, "8"), "mp-queue": (WINE, "s"),
    "signal": (GREY, "X"),
}
_FREE = [(c, m) for m in MARKERS for c in COLOURS if (c, m) not in STYLES.values()]

P50_STYLE: Final[Literal["-"]] = "-"  # solid p50, dashed p99: the same in every plot that draws both
P99_STYLE: Final[Literal["--"]] = "--"
RANGE_NOTE = "bars: range (min-max) across trials"


def transport_style(name: str) -> tuple[str, str]:
    """(colour, marker) of a transport: the same in every plot of every result."""
    if name in STYLES:
        return STYLES[name]
    return _FREE[zlib.crc32(name.encode()) % len(_FREE)]


def colors_of(names: list[str]) -> dict[str, str]:
    return {name: transport_style(name)[0] for name in names}


def ordered(names: Any) -> list[str]:
    """Transport names in registry order (the table's), unknown ones after it by name: legends read the same."""
    known = list(STYLES)
    return sorted(set(names), key=lambda n: (known.index(n), "") if n in known else (len(known), n))


# -- titles ------------------------------------------------------------------------------------------------
def _short(placement: str) -> str:
    """"same CPU (1)" -> "same CPU"; "cross CPUs (server 0, client 1)" -> "across CPUs"."""
    text = placement.split(" (", 1)[0]
    return "across CPUs" if text.startswith("cross") else text


def placement_note(cells: list[dict[str, Any]]) -> str:
    """Where the plotted cells ran, short: the usual placement, then which lines (and sizes) ran elsewhere."""
    placed = [c for c in cells if c.get("placement")]
    if not placed:
        return "placement not recorded"
    common = Counter(str(c["placement"]) for c in placed).most_common()
    if len(common) == 1:
        return common[0][0]
    usual = common[0][0]
    groups: dict[str, dict[str, list[int]]] = {}
    for c in placed:
        if c["placement"] != usual:
            groups.setdefault(_short(str(c["placement"])), {}).setdefault(c["transport"], []).append(c["size_bytes"])
    parts = []
    for where, by_transport in groups.items():
        names = []
        for name in ordered(by_transport):
            sizes = sorted(set(by_transport[name]))
            everywhere = sorted({c["size_bytes"] for c in placed if c["transport"] == name})
            names.append(name if sizes == everywhere else f"{name} at {_sizes(sizes)}")
        parts.append(f"{where}: {', '.join(names)}")
    return f"{usual}; {'; '.join(parts)}"


def _sizes(sizes: list[int]) -> str:
    return "/".join(format_size(s) for s in sizes) if len(sizes) <= 3 else \
        f"{format_size(sizes[0])}-{format_size(sizes[-1])}"


# -- axes ----------------------------------------------------------------------------------------------------
def size_axis(ax: Any, sizes: list[int]) -> None:
    """Message size on x: log2 spacing with a tick at each size; 0 B sits on a short linear stretch (symlog)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = sorted(set(sizes))
    if ticks and ticks[0] == 0:
        ax.set_xscale("symlog", base=2, linthresh=1, linscale=1)
    else:
        ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    # A label computed from the value (not a list by position), so declutter can drop ticks safely.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_size(round(v))))
    if ticks:  # limits from the sizes, a third of a doubling beyond each end (autoscaling symlog runs below 0)
        ax.set_xlim(-0.3 if ticks[0] == 0 else ticks[0] / 2 ** 0.3, max(ticks[-1], 1) * 2 ** 0.3)
    ax.set_xlabel("message size")
    ax.grid(True, which="major", alpha=0.3)


def log_axis(axis: Any, lo: float | None = None, hi: float | None = None) -> None:
    """A log axis with plain-number ticks: nice linear steps inside one decade, 1-2-5 over a few decades,
    decades beyond; ``declutter`` later drops labels that would still touch."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    if lo is None or hi is None:
        lo, hi = axis.get_view_interval()
    span = hi / lo if lo > 0 else 1e9
    if span < 8:
        axis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
    else:
        locator = LogLocator(base=10, subs=(1.0, 2.0, 5.0) if span < 10_000 else (1.0,))
        locator.steps125 = span < 10_000  # type: ignore[attr-defined]  # declutter falls back to decades
        axis.set_major_locator(locator)
    axis.set_minor_locator(LogLocator(base=10, subs="auto"))
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(NullFormatter())


def _plain(value: float, _pos: Any = None) -> str:
    """A tick label without exponent: "1000000", not "1e+06"; fractions as "0.5"."""
    return f"{value:.0f}" if value >= 1 and value == int(value) else f"{value:g}"


def _overlap(labels: list[Any], renderer: Any) -> bool:
    boxes = [t.get_window_extent(renderer) for t in labels]
    return any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))


def visible_tick_labels(axis: Any) -> list[Any]:
    """The major tick labels inside the view with text, in axis order."""
    lo, hi = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_major_ticks() if t.label1.get_visible() and t.label1.get_text()
             and lo - 1e-12 * abs(lo) <= t.get_loc() <= hi + 1e-12 * abs(hi)]
    return [t.label1 for t in sorted(ticks, key=lambda t: t.get_loc())]


def declutter(fig: Any) -> None:
    """Drop every other major tick of any axis whose labels touch, until none do (the figure is drawn to
    measure the labels, so call this last)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.ticker import FixedLocator, LogLocator

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    for _ in range(4):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        crowded = [axis for ax in fig.axes if ax.get_visible() for axis in (ax.xaxis, ax.yaxis)
                   if _overlap(visible_tick_labels(axis), renderer)]
        if not crowded:
            return
        for axis in crowded:
            locator = axis.get_major_locator()
            if getattr(locator, "steps125", False):  # 1-2-5 steps -> decades
                axis.set_major_locator(LogLocator(base=10, subs=(1.0,)))
            else:
                axis.set_major_locator(FixedLocator(_label_locs(axis)[::2]))


def _label_locs(axis: Any) -> list[float]:
    lo, hi = sorted(axis.get_view_interval())
    return [v for v in axis.get_majorticklocs() if lo <= v <= hi]


# -- legends -------------------------------------------------------------------------------------------------
def transport_handles(names: list[str]) -> list[Any]:
    from matplotlib.lines import Line2D

    handles = []
    for name in ordered(names):
        colour, marker = transport_style(name)
        handles.append(Line2D([], [], color=colour, marker=marker, markersize=5, label=name))
    return handles


def style_handles(p99: bool, bars: bool) -> list[Any]:
    from matplotlib.lines import Line2D

    out = [Line2D([], [], color="0.3", linestyle=P50_STYLE, label="p50 (solid)")]
    if p99:
        out.append(Line2D([], [], color="0.3", linestyle=P99_STYLE, label="p99 (dashed)"))
    if bars:
        out.append(Line2D([], [], color="0.3", marker="|", markersize=10, linestyle="none",
                          label="range across trials"))
    return out


def outside_legend(fig: Any, names: list[str], styles: list[Any] | None = None) -> Any:
    """One legend of the transports (and the line styles, if given) to the right of every axes."""
    handles = transport_handles(names)
    if styles:
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color="none", label=" ")] + styles
    columns = 2 if len(handles) > 24 else 1
    return fig.legend(handles=handles, loc="outside right upper", fontsize=8, title="transport",
                      title_fontsize=8, ncols=columns, frameon=False)
