"""``ipclab clean``: remove the IPC objects and private directories a killed run left behind."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_command


def add_parser(subparsers: Any) -> None:
    p = add_command(subparsers, "clean", cmd_clean, help="remove IPC objects and temp dirs left by a killed run",
                    description="Remove shared-memory segments, message queues, FIFOs, socket files "
                              "and private directories that a killed ipclab run left behind. Objects of live "
                              "runs and anything not created by ipclab are left alone.")
    p.add_argument("--dry-run", "-n", action="store_true", help="list what would be removed; remove nothing")


def cmd_clean(args: argparse.Namespace) -> int:
    from ..cleanup import clean

    clean(dry_run=args.dry_run)
    return 0
