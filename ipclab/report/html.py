"""HTML export: ONE self-contained page (tables, warnings, metadata, plots as base64 PNG) to open or print.

No scripts, no fonts, no stylesheets or images fetched from anywhere: the file works offline, attached to an
e-mail or submitted as coursework. Every string from the result is escaped; a result file is user input.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from .tables import Table

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 62em;
       padding: 0 1em; color: #111; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ccc; }
thead th { border-bottom: 2px solid #333; } td.num, th.num { text-align: right; }
.notes { font-size: 0.85em; color: #444; margin: 0 0 1.5em; }
.warnings { background: #fff7e0; border-left: 4px solid #e0a000; padding: 0.5em 1em; }
figure { margin: 1em 0; page-break-inside: avoid; } figure img { max-width: 100%; height: auto; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; font-size: 0.9em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
@media print { body { margin: 0; max-width: none; } section, table { page-break-inside: avoid; } }
"""

META_KEYS = (("ipclab_version", "ipclab"), ("python_version", "Python"), ("kernel", "kernel"),
             ("cpu_model", "CPU"), ("cpu_count", "CPUs"), ("cpu_affinity", "usable CPUs"),
             ("virtualization", "virtual machine"), ("clocksource", "clock source"), ("clock", "timer"))


def render_table(table: Table) -> str:
    num = ' class="num"'
    head = "".join(f'<th scope="col"{num if i else ""}>{escape(c)}</th>' for i, c in enumerate(table.columns))
    body = []
    for row in table.rows:
        cells = [f'<th scope="row">{escape(row[0])}</th>']
        cells += [f'<td class="num">{escape(v)}</td>' for v in row[1:]]
        body.append(f"<tr>{''.join(cells)}</tr>")
    notes = "".join(f"<li>[{i}] {escape(text)}</li>" for i, text in enumerate(table.notes, 1))
    notes += "".join(f"<li>{escape(text)}</li>" for text in table.legend)
    out = (f"<table>\n<caption>{escape(table.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
           f"<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n")
    if notes:
        out += f'<ul class="notes">{notes}</ul>\n'
    return out


def _meta(result: dict[str, Any]) -> str:
    meta = result.get("metadata", {})
    config = result.get("config", {})
    items = [(label, meta.get(key)) for key, label in META_KEYS]
    items += [("pinning", config.get("pin")), ("trials per cell", config.get("trials")),
              ("run started", result.get("created")), ("run finished", result.get("finished"))]
    if config.get("experiment"):
        items.append(("experiment", config["experiment"]))
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{escape(_text(value))}</dd>"
                   for label, value in items if value not in (None, "", []))
    return f'<dl class="meta">{rows}</dl>\n'


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def render(result: dict[str, Any], tables: list[Table], warnings: list[str],
           plots: list[tuple[str, bytes]], plot_note: str | None = None, title: str = "ipclab report") -> str:
    """The page. ``plots`` are (caption, PNG bytes); ``plot_note`` says why plots are missing, if they are."""
    description = result.get("config", {}).get("extra", {}).get("description")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if description:
        parts.append(f"<p>{escape(str(description))}</p>")
    parts.append("<p>Round trips are timed by the client around send+receive (one-way is about half); "
                 "throughput is timed at the consumer from its first to its last message. Each figure is the "
                 "median across trials; under each table a legend explains its marks: the range across trials "
                 "(lowest&ndash;highest) where they differ by more than 10 %, the loss beside every figure of a "
                 "cell that lost messages, a percentile resting on too few samples.</p>")
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        parts.append(f'<section class="warnings"><h2>Warnings</h2><ul>{items}</ul></section>')
    parts.append("<h2>Tables</h2>")
    parts += [f"<section>{render_table(t)}</section>" for t in tables]
    if plots or plot_note:
        parts.append("<h2>Plots</h2>")
    for caption, png in plots:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
                     f"<figcaption>{escape(caption)}</figcaption></figure>")
    if plot_note:
        parts.append(f"<p><em>{escape(plot_note)}</em></p>")
    parts += ["<h2>Machine and run</h2>", _meta(result), "</body>", "</html>"]
    return "\n".join(parts) + "\n"
