"""``ipclab report RESULT.json``: tables of any recorded metric, in text, Markdown, LaTeX, CSV, HTML or JSON."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_command, add_format


def add_parser(subparsers: Any) -> None:
    from ..report.commands import REPORT_FORMATS
    from ..report.select import add_selection

    rep = add_command(
        subparsers, "report", cmd_report, help="tables (text, Markdown, LaTeX, CSV, HTML, JSON) from a result file",
        raw=True,
        description="Pivot tables (rows transports, columns sizes) of any recorded metric, with warnings.",
        epilog="examples:\n  ipclab report results/run.json --format markdown -o report.md\n"
               "  ipclab report results/run.json --format html -o report.html\n"
               "  ipclab report results/run.json --metric rtt_p99_us,cpu_us_msg --format latex")
    rep.add_argument("result", metavar="RESULT.json", nargs="?")
    add_format(rep, REPORT_FORMATS, "text for the terminal, Markdown, a LaTeX table per figure, CSV, one "
               "self-contained HTML page, or JSON")
    rep.add_argument("--metric", "-m", metavar="M[,M...]",
                     help="metrics to tabulate (default: each pattern's report tables); see --list-metrics")
    rep.add_argument("--list-metrics", action="store_true",
                     help="list every metric with its unit, which way is better and its meaning, then exit")
    add_selection(rep)
    rep.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout ('-' = stdout)")
    rep.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    rep.add_argument("--no-plots", action="store_true", help="HTML without embedded plots")


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.commands import cmd_report as report

    return report(args)
