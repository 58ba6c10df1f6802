"""Pivot tables (rows: transports, columns: sizes) for any metric, and their text renderings.

A cell shows the median across trials, "±N%" when the trials disagree by more than 10 %, ``n/a`` or
``failed`` with a numbered note giving the reason.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ..config import format_size
from .metrics import METRICS, Metric, format_number

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
    metric = METRICS[metric_key]
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
        row, vals = [label], []
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
                    row.append("-")
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


def applicable(result: dict[str, Any], pattern: str, metric_key: str) -> bool:
    """Does any cell of this pattern record this metric?"""
    metric = METRICS[metric_key]
    if metric.patterns is not None and pattern not in metric.patterns:
        return False
    return any(metric_key in c.get("summary", {}) for c in result["cells"] if c["pattern"] == pattern) or not any(
        c["status"] == "ok" for c in result["cells"] if c["pattern"] == pattern)


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
    from .metrics import default_metrics

    tables = []
    for pattern in patterns_in(result):
        for key in metrics or default_metrics(pattern):
            if applicable(result, pattern, key):
                tables.append(pivot(result, pattern, key))
    return tables


def render(result: dict[str, Any], fmt: str, metrics: list[str] | None = None) -> str:
    """The run summary in one of: table, github, markdown, csv, json (tables only; the full result is the file)."""
    tables = build_tables(result, metrics)
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "json":
        return render_json(tables)
    tablefmt = {"table": "simple", "github": "github", "markdown": "pipe"}[fmt]
    return "\n".join(render_text(t, tablefmt) for t in tables)
