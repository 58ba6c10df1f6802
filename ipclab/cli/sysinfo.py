"""``ipclab sysinfo``: the machine metadata recorded in every result."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_command


def add_parser(subparsers: Any) -> None:
    info = add_command(subparsers, "sysinfo", cmd_sysinfo, help="the machine metadata recorded in every result")
    info.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_sysinfo(args: argparse.Namespace) -> int:
    from ..probes import sysinfo

    info = sysinfo()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{key:22} {value}")
    return 0
