"""``ipclab list``: every transport, whether it is available here, and what it guarantees.

The text fits the terminal (100 columns by design): the properties in one row per transport, the mechanism on
the row itself where it fits, else on an indented line under it; why a transport is unavailable goes in a
numbered note under the table. ``--json`` gives every declared property, for machines.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_command

COLUMNS = (("transport", "name"), ("available", "available"), ("reliable", "reliable"), ("ordered", "ordered"),
           ("boundaries", "boundaries"), ("max message", "max_message"))
LEGEND = ("reliable: no message lost, duplicated or corrupted; ordered: messages arrive in the order sent; "
          "boundaries: one receive returns exactly one message (a byte stream may merge or split them); "
          "max message: the largest message one send carries here")


def add_parser(subparsers: Any) -> None:
    lst = add_command(
        subparsers, "list", cmd_list, help="every transport: available here?, reliable?, limits",
        description="List every transport ipclab knows: whether it can run on this machine (and why not), "
        "whether it is reliable and ordered, whether it keeps message boundaries, the largest message it "
        "carries here, and the mechanism behind it. Use the names with 'ipclab run --transport'.")
    lst.add_argument("--json", action="store_true",
                     help="print every declared property as JSON, for machines (default: a table)")


def transport_rows() -> list[dict[str, Any]]:
    """Every transport's declared properties, with ``available`` and ``unavailable_reason`` here."""
    from ..transports import TRANSPORTS, get_transport

    rows = []
    for name in TRANSPORTS:
        cls = get_transport(name)
        props = cls.properties()
        reason = cls.unavailable_reason()
        props["available"] = reason is None
        props["unavailable_reason"] = reason
        rows.append(props)
    return rows


def render(rows: list[dict[str, Any]], width: int) -> str:
    """The table of ``ipclab list`` in at most ``width`` columns (a word longer than that is not cut)."""
    from ..report.layout import wrap

    notes: list[str] = []

    def cell(row: dict[str, Any], key: str) -> str:
        value = row[key]
        if key == "available":
            if value:
                return "yes"
            notes.append(str(row["unavailable_reason"]))
            return f"no [{len(notes)}]"
        if key == "max_message":
            return "unlimited" if value is None else f"{value} B"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    table = [[cell(r, key) for _, key in COLUMNS] for r in rows]
    heads = [head for head, _ in COLUMNS]
    widths = [max(len(x) for x in [head, *(t[i] for t in table)]) for i, head in enumerate(heads)]
    mech_width = max(len(r["summary"]) for r in rows)
    inline = sum(widths) + 2 * len(widths) + mech_width <= width  # the mechanism fits on the row

    def line(fields: list[str]) -> str:
        return "  ".join(f"{f:<{w}}" for f, w in zip(fields, widths)).rstrip()

    out = [line(heads) + ("  mechanism" if inline else ""),
           line(["-" * w for w in widths]) + ("  " + "-" * mech_width if inline else "")]
    indent = widths[0] + 2
    for fields, r in zip(table, rows):
        if inline:
            out.append(f"{line(fields):<{sum(widths) + 2 * len(widths) - 2}}  {r['summary']}")
        else:
            out.append(line(fields))
            out.append(" " * indent + wrap(r["summary"], width - indent, 0).replace("\n", "\n" + " " * indent))
    out.append("")
    out += [wrap(f"[{i}] {text}", width, len(f"[{i}] ")) for i, text in enumerate(notes, 1)]
    out.append(wrap(LEGEND, width))
    out.append(f"\n{sum(r['available'] for r in rows)} of {len(rows)} transports available")
    return "\n".join(out) + "\n"


def cmd_list(args: argparse.Namespace) -> int:
    from ..report.layout import terminal_width
    from ..untrusted import terminal_text

    rows = transport_rows()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(terminal_text(render(rows, terminal_width())), end="")
    return 0
