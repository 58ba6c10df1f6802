"""What every subcommand module shares: the one-line-error parser, the help formatter, SIGTERM as an exception."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, Interrupted


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def add_command(subparsers: Any, name: str, handler: Callable[[argparse.Namespace], int], *, help: str,
                raw: bool = False, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand's parser, with its handler set. ``raw``: the description and epilog keep their line breaks
    (examples); otherwise argparse wraps them."""
    if raw:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def formatter(prog: str) -> argparse.HelpFormatter:
    """Help keeps the examples' line breaks and leaves room for the flag column."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


class terminate_as_exception:  # noqa: N801 - used like a function: `with terminate_as_exception():`
    """SIGTERM raises Interrupted in the main thread, so the same finally blocks clean up as for Ctrl-C."""

    def __enter__(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            raise Interrupted(signum)

        self.old = signal.signal(signal.SIGTERM, handler)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self.old)
