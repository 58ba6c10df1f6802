"""HTML export: ONE self-contained page (tables, warnings, metadata, plots as base64 PNG) to open or print.

No scripts, no fonts, no stylesheets or images fetched from anywhere: the file works offline, attached to an
e-mail or submitted as coursework. Every string from the result is escaped; a result file is user input.

The page says how it was made: the command line of the run (when the result recorded it, ``metadata.argv``),
the ``ipclab report`` command that wrote the page, and both ipclab versions. Footnotes are numbered across the
whole page and printed once, under the last table (every table repeats the same n/a reasons otherwise); each
mark links to its note, and each mark legend is printed once beside them.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import shlex
from html import escape
from typing import Any

from .. import __version__
from .tables import Table

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 62em;
       padding: 0 1em; color: #111; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ccc; }
thead th { border-bottom: 2px solid #333; } td.num, th.num { text-align: right; } .nw { white-space: nowrap; }
tbody th { text-align: left; font-weight: normal; }
.notes { font-size: 0.85em; color: #444; margin: 0 0 1.5em; padding-left: 0; list-style: none; }
.notes li { margin: 0.15em 0; } td a, .notes a { color: inherit; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.9em; overflow-wrap: anywhere; }
.warnings { background: #fff7e0; border-left: 4px solid #e0a000; padding: 0.5em 1em; }
figure { margin: 1em 0; page-break-inside: avoid; } figure img { max-width: 100%; height: auto; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; font-size: 0.9em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
@media print { body { margin: 0; max-width: none; } section, table { page-break-inside: avoid; } }
"""

META_KEYS = (("ipclab_version", "ipclab"), ("python_version", "Python"), ("kernel", "kernel"),
             ("cpu_model", "CPU"), ("cpu_count", "CPUs"), ("cpu_affinity", "usable CPUs"),
             ("virtualization", "virtual machine"), ("clocksource", "clock source"), ("clock", "timer"))


_MARK = re.compile(r"\[(\d+)\]$")  # a cell's note mark: always last in its text (tables.pivot)


def number_notes(tables: list[Table]) -> tuple[list[Table], list[str], list[str]]:
    """The tables with their note marks renumbered across the page, the page's notes (each once, in order of
    first use) and the mark legends (each once). A table's own notes are numbered from 1; the same reason
    (a byte stream cannot carry an empty message) recurs in every table of a sweep."""
    notes: list[str] = []
    legend: list[str] = []
    out = []
    for table in tables:
        mapping: dict[str, str] = {}
        for i, text in enumerate(table.notes, 1):
            if text not in notes:
                notes.append(text)
            mapping[str(i)] = str(notes.index(text) + 1)
        rows = [[row[0], *(_renumber(v, mapping) for v in row[1:])] for row in table.rows]
        legend += [text for text in table.legend if text not in legend]
        out.append(dataclasses.replace(table, rows=rows, notes=[], legend=[]))
    return out, notes, legend


_BREAK = re.compile(r" (?=\()|(?<=,) ")  # where a figure may wrap: before its range, after a comma


def _renumber(text: str, mapping: dict[str, str]) -> str:
    return _MARK.sub(lambda m: f"[{mapping.get(m.group(1), m.group(1))}]", text)


def _cell(text: str) -> str:
    """A figure, escaped, with its note mark (if any) a link to the note. It wraps only between its parts
    (``234`` / ``(229–257)`` / ``0.7% lost``), never inside one (``229–`` | ``257``, ``0 /`` | ``0``)."""
    mark = _MARK.search(text)
    link = ""
    if mark:
        n = mark.group(1)
        text, link = text[:mark.start()], f'<a href="#note-{n}">[{n}]</a>'
    parts = [escape(part) for part in _BREAK.split(text)]
    parts[-1] += link
    return " ".join(f'<span class="nw">{part}</span>' for part in parts)


def render_table(table: Table) -> str:
    """One table; its own notes and legend under it (``render`` moves them to one list for the page)."""
    num = ' class="num"'
    head = "".join(f'<th scope="col"{num if i else ""}>{escape(c)}</th>' for i, c in enumerate(table.columns))
    body = []
    for row in table.rows:
        cells = [f'<th scope="row">{escape(row[0])}</th>']
        cells += [f'<td class="num">{_cell(v)}</td>' for v in row[1:]]
        body.append(f"<tr>{''.join(cells)}</tr>")
    out = (f"<table>\n<caption>{escape(table.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
           f"<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n")
    return out + render_notes(table.notes, table.legend)


def render_notes(notes: list[str], legend: list[str]) -> str:
    items = "".join(f'<li id="note-{i}">[{i}] {escape(text)}</li>' for i, text in enumerate(notes, 1))
    items += "".join(f"<li>{escape(text)}</li>" for text in legend)
    return f'<ul class="notes">{items}</ul>\n' if items else ""


def command_text(argv: Any) -> str | None:
    """A recorded command line (a list of strings) as one shell-quoted line; None if it is not one."""
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        return None
    return shlex.join(argv)


def _provenance(result: dict[str, Any], command: str | None) -> str:
    """How the figures and this page were made: commands and versions, first thing under the title."""
    meta = result.get("metadata", {})
    run = command_text(meta.get("argv"))
    rows = [("measured by", f"<code>{escape(run)}</code>" if run else
             "<em>not recorded: this result was written by an ipclab that did not record its command line</em>")]
    if command:
        rows.append(("this page", f"<code>{escape(command)}</code>"))
    measured = meta.get("ipclab_version")
    version = escape(str(measured)) if measured else "unknown"
    if measured != __version__:
        version = f"{version} (measured); {escape(__version__)} (this page)"
    rows.append(("ipclab", version))
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<dl class="meta provenance">{items}</dl>'


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
           plots: list[tuple[str, bytes]], plot_note: str | None = None, title: str = "ipclab report",
           command: str | None = None) -> str:
    """The page. ``plots`` are (caption, PNG bytes); ``plot_note`` says why plots are missing, if they are;
    ``command`` is the command line that wrote the page (shown with the run's own, if the result has it)."""
    description = result.get("config", {}).get("extra", {}).get("description")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="ipclab {escape(__version__)}">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        _provenance(result, command),
    ]
    if description:
        parts.append(f"<p>{escape(str(description))}</p>")
    parts.append("<p>Round trips are timed by the client around send+receive (one-way is about half); "
                 "throughput is timed at the consumer from its first to its last message. Each table's title says "
                 "whether its figures pool every trial's samples or are medians across trials; the notes under "
                 "the last table explain its marks: the range across trials (lowest&ndash;highest) where they "
                 "differ by more than 10 %, the loss beside every figure of a cell that lost messages, and each "
                 "numbered note ([1], [2], ...), printed once for the whole page.</p>")
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        parts.append(f'<section class="warnings"><h2>Warnings</h2><ul>{items}</ul></section>')
    parts.append("<h2>Tables</h2>")
    numbered, notes, legend = number_notes(tables)
    parts += [f"<section>{render_table(t)}</section>" for t in numbered]
    if notes or legend:
        parts.append(f'<section id="notes"><h3>Notes</h3>\n{render_notes(notes, legend)}</section>')
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
