"""Pivot tables (rows: transports, columns: sizes) for any metric, and their text renderings.

A cell shows the median across trials, "±N%" when the trials disagree by more than 10 %, ``n/a`` or
``failed`` with a numbered note giving the reason, or "-" when the figure could not be computed (with a note when
the pattern said why, in its per-trial ``missing`` figures: ``{metric key: reason}``).

``render_tables(tables, fmt)`` is the one text renderer of ``ipclab run`` and ``ipclab report``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ..config import format_size
from .metrics import Metric, belongs, default_metrics, format_number, metric_for

SPREAD_MARK = 0.10


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


def patterns_in(result: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(c["pattern"] for c in result["cells"]))


def pivot(result: dict[str, Any], pattern: str, metric_key: str) -> Table:
    metric = metric_for(pattern, metric_key)  # the words its cells count in (per round trip...)
    cells = [c for c in result["cells"] if c["pattern"] == pattern]
    transports = list(dict.fromkeys(c["transport"] for c in cells))
    sizes = sorted(dict.fromkeys(c["size_bytes"] for c in cells))
    by_key = {(c["transport"], c["size_bytes"]): c for c in cells}
    notes: list[str] = []
    note_index: dict[str, int] = {}

    def note(text: str) -> str:
        if text not in note_index:
            notes.append(text)
            note_index[text] = len(notes)
        return f"[{note_index[text]}]"

    # The placement most cells share goes in the title; rows placed otherwise (busy-pollers) say so.
    placed = [c.get("placement") for c in cells if c["status"] == "ok" and c.get("placement")]
    common = max(dict.fromkeys(placed), key=placed.count) if placed else None
    exceptions = False
    rows: list[list[str]] = []
    values: list[list[float | None]] = []
    for name in transports:
        row_cells = [by_key.get((name, s)) for s in sizes]
        label = name
        where = next((c.get("placement") for c in row_cells if c and c["status"] == "ok"), None)
        if where and where != common:
            label = f"{name} [{where}]"
            exceptions = True
        row: list[str] = [label]
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
                text = format_number(v)
                spread = c.get("spread", {}).get(metric_key, 0.0)
                if spread > SPREAD_MARK and len(c.get("trials", [])) > 1:
                    text += f" ±{spread / 2:.0%}"
                row.append(text)
        rows.append(row)
        values.append(vals)
    trials = result.get("config", {}).get("trials", 1)
    where = f"; {common}{' unless noted' if exceptions else ''}" if common else ""
    title = f"{pattern}: {metric.heading()}; median of {trials} trial{'s' if trials != 1 else ''}{where}"
    return Table(pattern, metric, title, ["transport", *(format_size(s) for s in sizes)], sizes, rows,
                 values, notes)


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


def render_text(table: Table, tablefmt: str = "simple") -> str:
    """A terminal ("simple"), GitHub/Markdown ("github"/"pipe") or other tabulate format, with its notes."""
    from tabulate import tabulate

    body = tabulate(table.rows, headers=table.columns, tablefmt=tablefmt, disable_numparse=True,
                    colalign=("left", *("right",) * (len(table.columns) - 1)))
    md = tablefmt in ("github", "pipe")
    title = f"**{table.title}**" if md else table.title
    notes = "".join(f"\n[{i}] {text}" + ("  " if md else "") for i, text in enumerate(table.notes, 1))
    return f"{title}\n\n{body}\n{notes}".rstrip() + "\n"


def render_csv(tables: list[Table]) -> str:
    """Machine-clean CSV: one row per (pattern, metric, transport, size), raw medians, no rounding."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["pattern", "metric", "unit", "transport", "size_bytes", "value", "status"])
    for t in tables:
        for row, vals in zip(t.rows, t.values):
            name = row[0].split(" [")[0]
            for size, text, value in zip(t.sizes, row[1:], vals):
                status = "ok" if value is not None else (text.split(" ")[0] if text else "missing")
                writer.writerow([t.pattern, t.metric.key, t.metric.unit, name, size,
                                 "" if value is None else repr(float(value)), status])
    return out.getvalue()


def render_json(tables: list[Table]) -> str:
    return json.dumps([{"pattern": t.pattern, "metric": t.metric.key, "unit": t.metric.unit, "title": t.title,
                        "sizes": t.sizes, "transports": [r[0] for r in t.rows], "values": t.values,
                        "notes": t.notes} for t in tables], indent=1) + "\n"


def build_tables(result: dict[str, Any], metrics: list[str] | None = None) -> list[Table]:
    """The tables of ``ipclab run``: each pattern's declared tables (or the given metrics), where recorded."""
    tables = []
    for pattern in patterns_in(result):
        for key in metrics or default_metrics(pattern):
            if applicable(result, pattern, key):
                tables.append(pivot(result, pattern, key))
    return tables


TEXT_FORMATS = {"table": "simple", "github": "github", "markdown": "pipe"}


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
