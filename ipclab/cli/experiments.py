"""Command line for the shipped experiments and the teacher's check.

    ipclab experiments                      list the shipped experiments with their one-line purpose
    ipclab experiments show NAME            print one, to read or to copy and change
    ipclab experiments new FILE [--force]   write a commented template (every key, its default, its meaning)
    ipclab check RESULT --experiment NAME|FILE
                                            does a result follow the experiment? exit 0 yes, 1 no (one line
                                            per problem), 2 bad input

Registered in ipclab.cli.SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import ConfigError


def _fmt(prog: str) -> argparse.HelpFormatter:
    from .common import Formatter

    return Formatter(prog, max_help_position=30)


def add_parser(subparsers: Any) -> None:
    """Add ``experiments`` (list | show NAME | new FILE) and ``check`` to the ipclab command line."""
    exp = subparsers.add_parser(
        "experiments", help="the shipped experiments: list, show NAME, new FILE", formatter_class=_fmt,
        description="Ready-made sweeps that travel with ipclab. Run one with 'ipclab run -e NAME'.",
        epilog="examples:\n  ipclab experiments\n  ipclab experiments show latency-vs-size > mine.toml\n"
               "  ipclab experiments new assignment.toml\n  ipclab run -e same-core")
    exp.set_defaults(handler=cmd_list)
    actions = exp.add_subparsers(dest="action", metavar="ACTION")
    lst = actions.add_parser("list", help="the shipped experiments with their purpose (the default)")
    lst.set_defaults(handler=cmd_list)
    show = actions.add_parser("show", help="print a shipped experiment, to copy and change")
    show.add_argument("name", metavar="NAME", help="a shipped experiment's name (or a file)")
    show.set_defaults(handler=cmd_show)
    new = actions.add_parser("new", help="write a commented template that runs as it is")
    new.add_argument("file", metavar="FILE", help="where to write it, e.g. assignment.toml")
    new.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    new.set_defaults(handler=cmd_new)

    chk = subparsers.add_parser(
        "check", help="does a result follow an experiment? (a teacher's check)", formatter_class=_fmt,
        description="Say whether RESULT really follows the experiment: the same transports, patterns and sizes, "
        "at least its trials, every cell measured or n/a with a reason, no failed cell, the placement asked for, "
        "the machine not busy, and a file not edited by hand. One line per problem; exit 0 (follows) or 1.",
        epilog="example:\n  ipclab check results/same-core.json --experiment same-core")
    chk.add_argument("result", metavar="RESULT", help="a result JSON written by 'ipclab run'")
    chk.add_argument("--experiment", "-e", metavar="NAME|FILE", required=True,
                     help="a shipped experiment (see 'ipclab experiments') or a TOML file")
    chk.set_defaults(handler=cmd_check)




def cmd_list(args: argparse.Namespace) -> int:
    from ..catalog import list_shipped

    shipped = list_shipped()
    if not shipped:
        raise ConfigError("no shipped experiments found: the installation is incomplete; reinstall ipclab")
    width = max(len(e.label) for e in shipped)
    for e in shipped:
        print(f"{e.label:{width}}  {e.keys.get('description', '')}")
    print(f"\n{len(shipped)} experiments. Run one: ipclab run -e NAME. Read or copy one: ipclab experiments show "
          "NAME > mine.toml")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..catalog import show

    sys.stdout.write(show(args.name))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from ..catalog import new_template

    path = new_template(args.file, force=args.force)
    print(f"wrote {path}: edit it, then 'ipclab run -e {path}'", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .. import results
    from ..catalog import check_metrics, open_experiment
    from ..check import check, expected_config

    experiment = open_experiment(args.experiment)
    # A broken experiment is bad input (exit 2), found before any result is judged against it.
    expected_config(experiment)
    if "metrics" in experiment.keys:
        check_metrics(experiment.keys["metrics"], f"{experiment.path}: metrics")
    path = args.result
    if not os.path.exists(path):  # nothing handed in is bad input; a broken file is a failed check
        raise ConfigError(f"check: no result file {path!r}; give the JSON file 'ipclab run' wrote")
    if not os.path.isfile(path):  # a FIFO, a device, a directory: refused without being opened
        raise ConfigError(f"check: {path!r} is not a regular file; give the JSON file 'ipclab run' wrote")
    try:
        result: Any = results.load(path)
    except ConfigError as exc:
        problems = [str(exc)]
    else:
        problems = check(result, experiment, path)
    if problems:
        from ..untrusted import terminal_text

        for line in problems:  # problems quote the file's names and values: no escape sequence reaches a terminal
            print(f"{path}: {terminal_text(line, newlines=False)}")
        print(f"{path} does not follow experiment {experiment.label!r}: {len(problems)} problem(s)")
        return 1
    cells = result["cells"]
    measured = sum(c["status"] == "ok" for c in cells)
    print(f"{path} follows experiment {experiment.label!r}: {len(cells)} cells ({measured} measured, "
          f"{len(cells) - measured} n/a with a reason), {result['config'].get('trials')} trials each")
    return 0
