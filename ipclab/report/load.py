"""The latency-vs-load view of open-loop cells (``--rate``): one table per pattern, rows transports, columns the
offered rates in order, then ``max`` (the closed-loop cell), each cell "p50 / p99" in µs.

An open-loop cell carries ``"rate"`` (the offered rate, per second); a closed-loop cell has none. Its latency keys
(``rtt_p50_us``...) are measured from the *intended* send time (coordinated-omission safe), ``service_*`` from the
actual send and ``lag_*`` is the schedule lag (actual minus intended send: the harness's own error). A cell whose
achieved rate falls more than SATURATION below the offered one (or that carries a ``saturated`` warning) is marked
``*`` with its achieved rate. A second table gives the schedule lag p50 / p99 of every open-loop cell.

The tables are :class:`~ipclab.report.tables.Table` objects: every renderer of ``run`` and ``report`` (text,
Markdown, LaTeX, HTML, CSV, JSON) shows them. Their columns are rates (``Table.rates``, None = max) and each row is
one (transport, size) (``Table.row_keys``); the p99, offered and achieved rates and the lag go in ``Table.extra``.
"""

from __future__ import annotations

import math
from typing import Any

from ..config import format_size
from ..declarations import Metric
from ..patterns import PATTERNS, get_spec
from .metrics import METRICS, format_number

SATURATION = 0.05  # achieved more than 5 % below offered: the mechanism (or the harness) could not keep up
SATURATED_MARK = "*"
SATURATED_LEGEND = (f"{SATURATED_MARK} saturated: the achieved rate (shown, per second) fell more than "
                    f"{SATURATION:.0%} below the offered one, or the median send left more than one interval "
                    "late; requests queued, so latency counts the queue")
MAX_LEGEND = "max: closed loop (the next request leaves when the previous answer arrives), latency from the actual send"
LAG_KEYS = ("lag_p50_us", "lag_p99_us")
RATE_KEYS = ("offered_msg_s", "achieved_msg_s")


def rate_of(cell: dict[str, Any]) -> float | None:
    """The offered rate of an open-loop cell; None for a closed-loop one."""
    rate = cell.get("rate")
    return float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None


def open_loop(cell: dict[str, Any]) -> bool:
    return rate_of(cell) is not None


def closed_loop(result: dict[str, Any]) -> dict[str, Any]:
    """The result with its closed-loop cells only: what the size pivots, plots and advice by size read."""
    cells = result["cells"]
    if not any(open_loop(c) for c in cells):
        return result
    return {**result, "cells": [c for c in cells if not open_loop(c)]}


def has_open_loop(result: dict[str, Any]) -> bool:
    return any(open_loop(c) for c in result["cells"])


def format_rate(rate: float | None) -> str:
    """"1k", "10k", "2.5M", "750"; None = "max" (closed loop). What --rate accepts, back."""
    if rate is None:
        return "max"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= scale and round(rate / scale, 3) * scale == rate:
            return f"{rate / scale:g}{suffix}"
    return f"{rate:g}"


def format_measured(rate: float) -> str:
    """A measured (achieved) rate to three significant digits: "35.6k", "998", "1.2M"."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def latency_keys(pattern: str, cells: list[dict[str, Any]]) -> tuple[str, str]:
    """The (p50, p99) keys of the pattern's latency distribution: its declared quantiles prefix, or (a pattern
    not in the registry) the first ``*_p50_us`` its cells record that is not service time or lag."""
    if pattern in PATTERNS and (key := get_spec(pattern).quantiles_key):
        prefix = key.removesuffix("_quantiles_ns")
        return f"{prefix}_p50_us", f"{prefix}_p99_us"
    for cell in cells:
        for key in cell.get("summary", {}):
            if key.endswith("_p50_us") and not key.startswith(("lag_", "service_")):
                prefix = key.removesuffix("_p50_us")
                return key, f"{prefix}_p99_us"
    return "rtt_p50_us", "rtt_p99_us"


def _figure(cell: dict[str, Any] | None, key: str) -> float | None:
    if cell is None or cell.get("status") != "ok":
        return None
    value = cell.get("summary", {}).get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def saturated(cell: dict[str, Any]) -> bool:
    """An open-loop cell that could not keep its offered rate: its warning says so, or its figures do."""
    if not open_loop(cell) or cell.get("status") != "ok":
        return False
    if any(isinstance(w, dict) and w.get("code") == "saturated" for w in cell.get("warnings", [])):
        return True
    offered = _figure(cell, "offered_msg_s") or rate_of(cell)
    achieved = _figure(cell, "achieved_msg_s")
    lag50 = _figure(cell, "lag_p50_us")
    behind = bool(offered and lag50 is not None and lag50 > 1e6 / offered)  # the median send over one interval late
    return behind or bool(offered and achieved is not None and achieved < offered * (1 - SATURATION))


def load_tables(result: dict[str, Any]) -> list[Any]:
    """The load table (and the schedule-lag table, where recorded) of every pattern with open-loop cells."""
    out = []
    for pattern in dict.fromkeys(c["pattern"] for c in result["cells"] if open_loop(c)):
        out.append(load_table(result, pattern))
        if any(_figure(c, LAG_KEYS[0]) is not None for c in result["cells"]
               if c["pattern"] == pattern and open_loop(c)):
            out.append(load_table(result, pattern, lag=True))
    return out


def _metric(key: str, pattern: str, per: str) -> Metric:
    known = METRICS.get(key)
    if known is not None:
        return known
    return Metric(key, f"{pattern} latency, {key.split('_')[-2]}", "µs", False, per)  # type: ignore[arg-type]


def load_table(result: dict[str, Any], pattern: str, *, lag: bool = False) -> Any:
    """One pattern's latency-vs-load table (``lag``: its schedule-lag table) as a tables.Table."""
    from .tables import Table, sample_count, thin

    cells = [c for c in result["cells"] if c["pattern"] == pattern]
    opened = [c for c in cells if open_loop(c)]
    p50, p99 = LAG_KEYS if lag else latency_keys(pattern, opened)
    keys = list(dict.fromkeys((c["transport"], c["size_bytes"]) for c in opened))
    transports = list(dict.fromkeys(t for t, _ in keys))
    keys = [(t, s) for t in transports for s in sorted({s for t2, s in keys if t2 == t})]
    rates: list[float | None] = [*sorted({r for c in opened if (r := rate_of(c)) is not None})]
    if not lag and any(not open_loop(c) and (c["transport"], c["size_bytes"]) in keys for c in cells):
        rates.append(None)  # the closed-loop cell of the same transport and size: the "max" column
    by_key = {(c["transport"], c["size_bytes"], rate_of(c)): c for c in cells}
    several = len({s for _, s in keys}) > 1
    spec_per = get_spec(pattern).count_class if pattern in PATTERNS else ""
    metric = _metric(p50, pattern, "round trip" if spec_per == "round_trip" else "message")
    notes: list[str] = []
    marks: set[str] = set()

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    extra_keys = (p99,) if lag else (p99, *RATE_KEYS)
    extra: dict[str, list[list[float | None]]] = {k: [] for k in extra_keys}
    rows, values, counts, placements = [], [], [], []
    for transport, size in keys:
        row = [f"{transport} {format_size(size)}" if several else transport]
        vals: list[float | None] = []
        row_cells = [by_key.get((transport, size, r)) for r in rates]
        for c in row_cells:
            low, high = _figure(c, p50), _figure(c, p99)
            vals.append(low)
            if c is None:
                row.append("")
                continue
            if c["status"] != "ok":
                word = "n/a" if c["status"] == "n/a" else "failed"
                row.append(f"{word} {note(str(c.get('reason') or word))}")
                continue
            text = " / ".join("-" if v is None else format_number(v) for v in (low, high))
            if saturated(c):
                achieved = _figure(c, "achieved_msg_s")
                text += f" {SATURATED_MARK}" + (f" {format_measured(achieved)}/s" if achieved else "")
                marks.add("saturated")
            if not lag and (why := thin(c, p99)):
                text += f" {note(why)}"
            row.append(text)
        rows.append(row)
        values.append(vals)
        for k in extra_keys:
            extra[k].append([_figure(c, k) for c in row_cells])
        counts.append([len(c.get("trials", [])) if c else None for c in row_cells])
        placements.append([c.get("placement") if c else None for c in row_cells])
    trials = result.get("config", {}).get("trials", 1)
    measured = [c for c in opened if c["status"] == "ok"]
    per = metric.per or "request"
    if lag:
        title = (f"{pattern}: schedule lag (actual minus intended send time, the harness's own error), p50 / p99 "
                 f"(µs) per {per}; columns: offered rate per second; all samples of {trials} trial"
                 f"{'s' if trials != 1 else ''} pooled{sample_count(measured, metric)}")
    else:
        what = (get_spec(pattern).distribution if pattern in PATTERNS else "") or "latency"
        title = (f"{pattern}: {what} under load, p50 / p99 (µs) per {per}, from the intended send time "
                 f"(coordinated-omission safe); columns: offered rate per second; all samples of {trials} trial"
                 f"{'s' if trials != 1 else ''} pooled{sample_count(measured, metric)}")
    legend = ([MAX_LEGEND] if None in rates else []) + ([SATURATED_LEGEND] if "saturated" in marks else [])
    table = Table(pattern, metric, title, ["transport", *(format_rate(r) for r in rates)],
                  sorted({s for _, s in keys}), rows, values, notes, [], [], extra, legend, counts, placements,
                  rates=rates, row_keys=keys, transports=[k[0] for k in keys])
    return table
