"""``ipclab list``: every transport, whether it is available here, and what it guarantees."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_command


def add_parser(subparsers: Any) -> None:
    lst = add_command(subparsers, "list", cmd_list, help="every transport: available?, reliable?, limits")
    lst.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from ..transports import TRANSPORTS, get_transport

    rows = []
    for name in TRANSPORTS:
        cls = get_transport(name)
        props = cls.properties()
        reason = cls.unavailable_reason()
        props["available"] = reason is None
        props["unavailable_reason"] = reason
        rows.append(props)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0

    def yn(v: bool) -> str:
        return "yes" if v else "no"

    table = [[r["name"], "yes" if r["available"] else f"no: {r['unavailable_reason']}", yn(r["reliable"]),
              yn(r["ordered"]), yn(r["boundaries"]), "unlimited" if r["max_message"] is None else r["max_message"],
              r["summary"]] for r in rows]
    print(tabulate(table, headers=["transport", "available", "reliable", "ordered", "boundaries",
                                   "max message (bytes)", "mechanism"], disable_numparse=True))
    print(f"\n{sum(r['available'] for r in rows)} of {len(rows)} transports available")
    return 0
