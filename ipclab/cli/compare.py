"""``ipclab compare A.json B.json``: B/A per common cell, with a significance test on the per-trial figures."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_command, add_format


def add_parser(subparsers: Any) -> None:
    from ..report.commands import COMPARE_FORMATS

    cmp_ = add_command(
        subparsers, "compare", cmd_compare, help="B/A per common cell, with a significance test on the per-trial "
        "figures", raw=True,
        description="Compare two result files cell by cell (needs several trials per cell: 'ipclab run --trials 5').",
        epilog="example:\n  ipclab compare results/same-core.json results/cross-core.json --format markdown")
    cmp_.add_argument("a", metavar="A.json")
    cmp_.add_argument("b", metavar="B.json")
    cmp_.add_argument("--metric", "-m", metavar="M[,M...]", help="metrics to compare (default: the headline ones)")
    add_format(cmp_, COMPARE_FORMATS, "text for the terminal, Markdown, LaTeX tables, one HTML page, CSV or "
               "JSON")
    cmp_.add_argument("--alpha", type=float, default=0.05, help="significance level (default: 0.05)")
    cmp_.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout ('-' = stdout)")
    cmp_.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def cmd_compare(args: argparse.Namespace) -> int:
    from ..report.commands import cmd_compare as compare

    return compare(args)
