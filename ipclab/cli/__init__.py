"""Command line: one module per subcommand. The only place that prints errors and picks exit codes.

Exit status: 0 success; 1 a run finished but some cells failed (or a run-time error); 2 bad input;
130/143 interrupted by SIGINT/SIGTERM (results measured so far are saved). Anything else is a bug and keeps
its traceback.

A subcommand is a module with ``add_parser(subparsers)``, which adds its parser and sets ``handler`` (a
function ``(args) -> exit status``) with ``set_defaults``; registering it is one line in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable

from .. import __version__
from ..errors import Interrupted, IpclabError
from .common import Parser, formatter, raised_signal, take_raised, terminate_as_exception

# One module per subcommand, in --help order. A module that is absent (an optional part not installed) is
# skipped.
SUBCOMMANDS = (
    "ipclab.cli.run",
    "ipclab.cli.listing",
    "ipclab.cli.sysinfo",
    "ipclab.cli.report",
    "ipclab.cli.plot",
    "ipclab.cli.compare",
    "ipclab.cli.clean",
    "ipclab.cli.serve",
    "ipclab.cli.experiments",
)

__all__ = ["SUBCOMMANDS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ipclab", formatter_class=formatter,
                    description="Compare inter-process communication mechanisms with real processes.")
    parser.add_argument("--version", action="version", version=f"ipclab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the module exists but something it imports is missing: a bug, keep the traceback
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``ipclab`` entry point: parse, dispatch, and turn user errors into one line and an exit status."""
    # SIGINT/SIGTERM become exceptions from the start (exit 130/143), not only during a sweep. One that lands
    # outside _main's own handlers (as the block is entered or left) is caught here: still one line, no traceback.
    try:
        with terminate_as_exception():
            code = _main(argv)
    except KeyboardInterrupt:
        code = _report(signal.SIGINT)
    except Interrupted as exc:
        code = _report(exc.signum)
    lost = take_raised()  # raised, then eaten on the way (C code, an `except Exception`): still an interrupt
    if lost is not None and code not in (130, 143):
        code = _report(lost)
    return code


def _report(signum: int) -> int:
    take_raised()
    print(f"ipclab: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
    return 128 + signum


def _main(argv: list[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # the exact command line (results record it)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return handler(args)
    except IpclabError as exc:
        signum = raised_signal()
        if signum is not None and not isinstance(exc, Interrupted):
            return _report(signum)  # an error the interrupt caused on its way out: the interrupt's line alone
        from ..untrusted import terminal_text

        # One line, whatever a file name or a file's text put in the message: no newline, no escape sequence.
        print(f"ipclab: error: {terminal_text(str(exc), newlines=False)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ipclab: interrupted by SIGINT", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ipclab report ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except OSError as exc:  # an exhausted resource outside any cell: name the limit (anything else is a bug)
        from ..resources import explain, is_exhaustion

        if not is_exhaustion(exc):
            raise
        print(f"ipclab: error: {explain(exc)}", file=sys.stderr)
        return 1
