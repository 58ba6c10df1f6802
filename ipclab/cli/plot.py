"""``ipclab plot RESULT.json -o FILE``: latency/throughput vs size, latency CDF or histogram, CPU cost (needs
matplotlib)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_command


def add_parser(subparsers: Any) -> None:
    from ..report.select import add_selection

    plo = add_command(
        subparsers, "plot", cmd_plot, help="latency/throughput vs size, latency CDF or histogram, CPU cost (PNG "
        "or SVG; needs matplotlib)", raw=True,
        description="Plot a result file. Needs matplotlib: pip install 'ipclab[plot]'.",
        epilog="examples:\n  ipclab plot results/run.json -o latency.png\n"
               "  ipclab plot results/run.json --kind cdf -o cdf.svg\n"
               "  ipclab plot results/run.json --kind hist --transport pipe,unix --size 64 -o hist.png")
    plo.add_argument("result", metavar="RESULT.json")
    plo.add_argument("--output", "-o", metavar="FILE.png|svg", required=True, help="image file (.png or .svg)")
    plo.add_argument("--kind", choices=("latency", "throughput", "cdf", "hist", "cpu", "load"),
                     help="what to plot (default: latency if the result has ping-pong cells, else throughput; "
                          "load if it has only open-loop --rate cells); hist: the latency distribution of up to 8 "
                          "cells, chosen with --transport/--size; load: latency vs achieved rate of open-loop "
                          "--rate cells")
    plo.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    add_selection(plo)


def cmd_plot(args: argparse.Namespace) -> int:
    from ..report.commands import cmd_plot as plot

    return plot(args)
