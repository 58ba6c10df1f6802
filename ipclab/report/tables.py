"""Pivot tables (rows: transports, columns: sizes) for any metric, and their text renderings.

A cell shows the median across trials, then what a reader needs beside it:

- ``(a–b)``: the range across trials (lowest–highest per-trial figure) where it exceeds 10 % of the median;
- ``, N% lost``: the cell lost messages, so its figures count only what arrived;
- ``[n]``: a numbered note: ``n/a`` or ``failed`` with the reason, a figure that could not be computed (the
  pattern's per-trial ``missing`` figures: ``{metric key: reason}``), or a percentile resting on fewer samples
  than it needs.

Each table explains the marks it uses once, in a legend under it. A pattern with a lossy cell gets a delivery table:
messages lost (%) / reordered / duplicated per cell. ``render_tables(tables, fmt)`` is the one text renderer of
``ipclab run`` and ``ipclab report``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from .. import stats
from ..config import format_size
from ..untrusted import csv_cell, strict_json
from .cells import delivery, figure_range, loss_pct, lossy, placement_marks, placement_words, samples_behind
from .metrics import PERCENTILES, Metric, belongs, default_metrics, format_number, metric_for, summary_basis

SPREAD_MARK = 0.10
LOSS_KEY = "loss_pct"  # its table is the delivery table: lost % / reordered / duplicated
RANGE_LEGEND = f"(a–b): lowest–highest per-trial figure, where trials differ by over {SPREAD_MARK:.0%} of the median"
LOSS_LEGEND = ("N% lost: the cell lost messages (median of its trials, or the worst trial's where the median is 0); "
               "its figures count only what arrived")
DELIVERY_LEGEND = "lost %: of the messages sent; reordered, duplicated: messages; - = not counted by this pattern"


@dataclass
class Table:
    pattern: str
    metric: Metric
    title: str
    columns: list[str]  # "transport", then sizes
    sizes: list[int]
    rows: list[list[str]]
    values: list[list[float | None]]  # raw medians, same shape as rows[*][1:]
    notes: list[str] = field(default_factory=list)
    ranges: list[list[tuple[float, float] | None]] = field(default_factory=list)  # per-trial min, max
    losses: list[list[float | None]] = field(default_factory=list)  # the cell's median loss (%), if counted
    extra: dict[str, list[list[float | None]]] = field(default_factory=dict)  # delivery: reordered, duplicated
    legend: list[str] = field(default_factory=list)  # what the marks in this table mean, once
    trials: list[list[int | None]] = field(default_factory=list)  # trials run per cell (CSV)
    placements: list[list[str | None]] = field(default_factory=list)  # each cell's placement (CSV)
    transports: list[str] = field(default_factory=list)  # each row's transport (its label may carry a mark)
    rates: list[float | None] = field(default_factory=list)  # a load table's columns: offered rates (None = max)
    row_keys: list[tuple[str, int]] = field(default_factory=list)  # a load table's rows: (transport, size)


def patterns_in(result: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(c["pattern"] for c in result["cells"]))


def thin(cell: dict[str, Any], metric_key: str) -> str | None:
    """A note if this figure is a percentile resting on fewer samples per trial than it needs."""
    p = PERCENTILES.get(metric_key)
    n, counted = samples_behind(cell, metric_key)
    if p is None or n is None or n >= (need := stats.min_samples_for(p)):
        return None
    return (f"p{p:g} from {n} {counted}, fewer than the {need} it needs: it is decided by the few "
            f"slowest samples; rerun with --count {need} or more, or more --trials")


def spread_text(cell: dict[str, Any], key: str, median: float) -> str:
    """" (a–b)" when the trials differ by more than SPREAD_MARK of the median, else ""."""
    span = figure_range(cell, key)
    if span is None or median == 0 or (span[1] - span[0]) / abs(median) <= SPREAD_MARK:
        return ""
    return f" ({format_number(span[0])}–{format_number(span[1])})"


def delivery_text(cell: dict[str, Any]) -> str:
    """"57.4 / 12 / 0": lost %, reordered, duplicated (``-`` where the pattern does not count one)."""
    figures = delivery(cell)
    lost = figures[LOSS_KEY]
    head = "-" if lost is None else format_number(lost) + spread_text(cell, LOSS_KEY, lost)
    return " / ".join([head, *("-" if figures[k] is None else format_number(figures[k])
                               for k in ("reordered", "duplicated"))])


def pivot(result: dict[str, Any], pattern: str, metric_key: str) -> Table:
    metric = metric_for(pattern, metric_key)  # the words its cells count in (per round trip...)
    is_delivery = metric_key == LOSS_KEY
    # Closed-loop cells only: open-loop ones (--rate) share (transport, size) and are the load tables' (load.py).
    cells = [c for c in result["cells"] if c["pattern"] == pattern and c.get("rate") is None]
    transports = list(dict.fromkeys(c["transport"] for c in cells))
    sizes = sorted(dict.fromkeys(c["size_bytes"] for c in cells))
    by_key = {(c["transport"], c["size_bytes"]): c for c in cells}
    notes: list[str] = []
    note_index: dict[str, int] = {}
    marks: set[str] = set()

    def note(text: str) -> str:
        if text not in note_index:
            notes.append(text)
            note_index[text] = len(notes)
        return f"[{note_index[text]}]"

    # The placement most cells share goes in the title; rows placed otherwise (busy-pollers) say so.
    placed = [c.get("placement") for c in cells if c["status"] == "ok" and c.get("placement")]
    common = max(dict.fromkeys(placed), key=placed.count) if placed else None
    row_places = {name: next((c.get("placement") for c in cells if c["transport"] == name and c["status"] == "ok"
                              and c.get("placement")), None) for name in transports}
    marks_of = placement_marks([w for w in row_places.values() if w and w != common])
    rows: list[list[str]] = []
    values: list[list[float | None]] = []
    ranges: list[list[tuple[float, float] | None]] = []
    losses: list[list[float | None]] = []
    counts: list[list[int | None]] = []
    placements: list[list[str | None]] = []
    extra: dict[str, list[list[float | None]]] = {"reordered": [], "duplicated": []} if is_delivery else {}
    for name in transports:
        row_cells = [by_key.get((name, s)) for s in sizes]
        where = row_places[name]
        row: list[str] = [f"{name} {marks_of[where]}" if where in marks_of else name]
        vals: list[float | None] = []
        for c in row_cells:
            if c is None:
                row.append("")
                vals.append(None)
            elif c["status"] != "ok":
                word = "n/a" if c["status"] == "n/a" else "failed"
                row.append(f"{word} {note(c.get('reason') or word)}")
                vals.append(None)
            else:
                v = c.get("summary", {}).get(metric_key)
                vals.append(v)
                if v is None:
                    why = missing_reason(c, metric_key)
                    row.append(f"- {note(why)}" if why else "-")
                    continue
                if is_delivery:
                    row.append(delivery_text(c))
                    marks.add("delivery")
                    continue
                text = format_number(v)
                if spread := spread_text(c, metric_key, v):
                    text += spread
                    marks.add("range")
                if (lost := loss_pct(c)) is not None:
                    text += f", {format_number(lost)}% lost"
                    marks.add("loss")
                if why := thin(c, metric_key):
                    text += f" {note(why)}"
                row.append(text)
        rows.append(row)
        values.append(vals)
        ranges.append([figure_range(c, metric_key) if c and c["status"] == "ok" else None for c in row_cells])
        losses.append([delivery(c)[LOSS_KEY] if c and c["status"] == "ok" else None for c in row_cells])
        counts.append([len(c.get("trials", [])) if c else None for c in row_cells])
        placements.append([c.get("placement") if c else None for c in row_cells])
        for key in extra:
            extra[key].append([delivery(c)[key] if c and c["status"] == "ok" else None for c in row_cells])
    trials = result.get("config", {}).get("trials", 1)
    where = f"; {common}{' unless marked' if marks_of else ''}" if common else ""
    heading = ("messages lost (%) / reordered / duplicated" if is_delivery else metric.heading())
    plural = "s" if trials != 1 else ""
    # The cells that have this figure (a 0 B stream cell measures throughput but carries no time stamp).
    measured = [c for c in cells if c["status"] == "ok" and c.get("summary", {}).get(metric_key) is not None]
    if measured and all(summary_basis(c, metric_key) == "pooled" for c in measured):  # percentiles, mean, max
        basis = f"all samples of {trials} trial{plural} pooled" if trials != 1 else "1 trial"
    else:
        basis = f"median of {trials} trial{plural}"
    title = f"{pattern}: {heading}; {basis}{sample_count(measured, metric)}{where}"
    legend = [text for mark, text in (("delivery", DELIVERY_LEGEND), ("range", RANGE_LEGEND),
                                      ("loss", LOSS_LEGEND)) if mark in marks]
    legend += [f"{mark} = {placement_words(where)}" for where, mark in marks_of.items()]
    return Table(pattern, metric, title, ["transport", *(format_size(s) for s in sizes)], sizes, rows,
                 values, notes, ranges, losses, extra, legend, counts, placements, transports=transports)


def sample_count(cells: list[dict[str, Any]], metric: Metric) -> str:
    """"; n = 3000 round trips" for a latency figure: the samples behind it (pooled over the trials, or per
    trial in a file written before pooling), a range "n = 900–3000" where cells differ; "" for other figures."""
    if not cells or summary_basis(cells[0], metric.key) == "median":
        return ""
    counts = [samples_behind(c, metric.key) for c in cells]
    numbers = [n for n, _ in counts if n is not None]
    if not numbers:
        return ""
    per: str = metric.per or "sample"
    unit = {"batch": "batches"}.get(per, per + "s")
    each = "" if all(how != "samples per trial" for _, how in counts) else " per trial"
    low, high = min(numbers), max(numbers)
    n = f"{low}" if low == high else f"{low}–{high}"
    return f"; n = {n} {unit}{each}"


def shown_metrics(result: dict[str, Any], pattern: str, keys: tuple[str, ...] | list[str],
                  asked: bool = False) -> list[str]:
    """``keys`` with the delivery table where it says something: added for a pattern with a lossy cell (every
    lossy cell shows its loss, reordering and duplicates); unless ``asked`` for, left out where nothing was lost
    (a column of zeros says nothing)."""
    if any(lossy(c) for c in result["cells"] if c["pattern"] == pattern):
        return list(dict.fromkeys([*keys, LOSS_KEY]))
    return list(keys) if asked else [k for k in keys if k != LOSS_KEY]


def missing_reason(cell: dict[str, Any], metric_key: str) -> str | None:
    """Why a cell has no figure for this metric, if its pattern said so in a trial's ``missing`` figures."""
    for trial in cell.get("trials", []):
        missing = trial.get("metrics", {}).get("missing")
        if isinstance(missing, dict) and isinstance(missing.get(metric_key), str):
            return str(missing[metric_key])
    return None


def applicable(result: dict[str, Any], pattern: str, metric_key: str) -> bool:
    """Does any cell of this pattern record this metric (or explain why it could not)?"""
    if not belongs(pattern, metric_key):
        return False
    cells = [c for c in result["cells"] if c["pattern"] == pattern]
    return (any(metric_key in c.get("summary", {}) or missing_reason(c, metric_key) for c in cells)
            or not any(c["status"] == "ok" for c in cells))


def render_text(table: Table, tablefmt: str = "simple", width: int | None = None) -> str:
    """A terminal ("simple"), GitHub/Markdown ("github"/"pipe") or other tabulate format, with notes and legend.

    Markdown is left to its renderer. Any other format fits ``width`` columns (default: the terminal's): title,
    notes and legend wrap at word boundaries and a table too wide is laid out narrower (see ipclab.report.layout).
    """
    from .layout import fit, terminal_width, wrap

    if tablefmt in ("github", "pipe"):
        body = fit(table.columns, table.rows, 10**6, tablefmt)[0]
        notes = "".join(f"\n[{i}] {text}  " for i, text in enumerate(table.notes, 1))
        legend = "".join(f"\n{text}  " for text in table.legend)
        return f"**{table.title}**\n\n{body}\n{notes}{legend}".rstrip() + "\n"
    width = width or terminal_width()
    body = "\n\n".join(fit(table.columns, table.rows, width, tablefmt))
    notes = "".join("\n" + wrap(f"[{i}] {text}", width, len(f"[{i}] ")) for i, text in enumerate(table.notes, 1))
    legend = "".join("\n" + wrap(text, width, 2) for text in table.legend)
    return f"{wrap(table.title, width, 2)}\n\n{body}\n{notes}{legend}".rstrip() + "\n"


CSV_COLUMNS = ["pattern", "metric", "unit", "transport", "size_bytes", "value", "status", "min", "max", "loss_pct",
               "trials", "placement"]
RATE_COLUMN = "rate"  # with load tables only: an open-loop cell's offered rate per second; empty: closed loop
CSV_DIGITS = 6  # significant digits: far finer than any trial-to-trial spread, no float noise (…0000000003)


def _num(value: float | None) -> str:
    """A figure for CSV: ``repr`` of the value rounded to CSV_DIGITS significant digits ("" for None)."""
    if value is None:
        return ""
    x = float(value)
    if x == 0 or not math.isfinite(x):
        return repr(x)
    return repr(round(x, CSV_DIGITS - 1 - math.floor(math.log10(abs(x)))))


def _unit(key: str) -> str:
    """The unit of an extra figure of a table: delivery counts are messages; a load table's rates and µs."""
    return "/s" if key.endswith("_msg_s") else "µs" if key.endswith("_us") else "messages"


def render_csv(tables: list[Table]) -> str:
    """Machine-clean CSV: one row per (pattern, metric, transport, size), medians to CSV_DIGITS significant digits;
    ``min`` and ``max`` across trials (empty with one trial), the cell's ``loss_pct`` (empty where loss is not
    counted), its number of ``trials`` and its ``placement``. A delivery table adds rows for its ``reordered``
    and ``duplicated`` counts. With load tables (open-loop cells) a ``rate`` column gives each row's offered rate
    (empty: closed loop) and a load table adds rows for its p99, offered and achieved rates."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    loaded = any(t.rates for t in tables)  # open-loop cells: one more column, the offered rate
    writer.writerow([*CSV_COLUMNS, *([RATE_COLUMN] if loaded else [])])
    for t in tables:
        for r, (row, vals) in enumerate(zip(t.rows, t.values)):
            name = t.row_keys[r][0] if t.row_keys else (t.transports[r] if t.transports else row[0])
            for i, (text, value) in enumerate(zip(row[1:], vals)):
                size = t.row_keys[r][1] if t.row_keys else t.sizes[i]
                rate = t.rates[i] if t.rates else None
                status = "ok" if value is not None else (text.split(" ")[0] if text else "missing")
                span = t.ranges[r][i] if t.ranges else None
                lost = t.losses[r][i] if t.losses else None
                low, high = span if span else (None, None)
                count = t.trials[r][i] if t.trials else None
                where = (t.placements[r][i] if t.placements else None) or ""
                tail = ("" if count is None else str(count), where, *([_num(rate)] if loaded else []))
                writer.writerow([csv_cell(f) for f in (t.pattern, t.metric.key, t.metric.unit, name, size,
                                                       _num(value), status, _num(low), _num(high), _num(lost),
                                                       *tail)])
                for key, matrix in t.extra.items():
                    figure = matrix[r][i]
                    writer.writerow([csv_cell(f) for f in (t.pattern, key, _unit(key), name, size, _num(figure),
                                                           "ok" if figure is not None else status, "", "",
                                                           _num(lost), *tail)])
    return out.getvalue()


def render_json(tables: list[Table]) -> str:
    return strict_json([{"pattern": t.pattern, "metric": t.metric.key, "unit": t.metric.unit, "title": t.title,
                        "sizes": t.sizes, "transports": t.transports or [r[0] for r in t.rows], "values": t.values,
                        "ranges": [[list(s) if s else None for s in row] for row in t.ranges],
                        "loss_pct": t.losses, **t.extra, "notes": t.notes, "legend": t.legend,
                        **({"rates": t.rates, "rows": [list(k) for k in t.row_keys]} if t.rates else {})}
                       for t in tables], indent=1) + "\n"


def build_tables(result: dict[str, Any], metrics: list[str] | None = None) -> list[Table]:
    """The tables of ``ipclab run``: each pattern's declared tables (or the given metrics), where recorded, and
    the delivery table of a pattern with a lossy cell; then the latency-vs-load tables of open-loop cells."""
    from .load import closed_loop, load_tables

    tables = []
    closed = closed_loop(result)  # the size pivots read closed-loop cells; open-loop ones are the load tables'
    for pattern in patterns_in(closed):
        for key in shown_metrics(closed, pattern, metrics or default_metrics(pattern), asked=bool(metrics)):
            if applicable(closed, pattern, key):
                tables.append(pivot(closed, pattern, key))
    return tables + load_tables(result)


TEXT_FORMATS = {"table": "simple", "github": "pipe", "markdown": "pipe"}  # github: an older name of markdown


def render_tables(tables: list[Table], fmt: str) -> str:
    """Tables as text, the one renderer of run and report: table, github, markdown, csv or json."""
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "json":
        return render_json(tables)
    return "\n".join(render_text(t, TEXT_FORMATS[fmt]) for t in tables)


def render_run_tables(result: dict[str, Any], fmt: str, metrics: list[str] | None = None) -> str:
    """What ``ipclab run`` prints: its tables in table, markdown, csv or json (the full result is the file)."""
    return render_tables(build_tables(result, metrics), fmt)


render = render_run_tables  # the name cli.py used before
