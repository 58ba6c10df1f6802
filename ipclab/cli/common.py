"""What every subcommand module shares: the one-line-error parser, the help formatter, SIGTERM as an exception."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, Interrupted


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see '{self.prog} --help')")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that fits the terminal: the description's and epilog's line breaks are kept (examples), and a prose
    line (one that is not indented) longer than the terminal is wrapped at word boundaries."""

    def __init__(self, prog: str, max_help_position: int = 30, **kwargs: Any) -> None:
        super().__init__(prog, max_help_position=max_help_position, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        # Only prose wraps: an indented line is an example or a command, and a command cut in two is no use.
        return "\n".join(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent,
                                        break_long_words=False, break_on_hyphens=False)
                          if line and not line[0].isspace() else indent + line for line in text.splitlines())


def add_command(subparsers: Any, name: str, handler: Callable[[argparse.Namespace], int], *, help: str,
                raw: bool = False, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand's parser, with its handler set. Its description and epilog keep their line breaks
    (examples) and wrap where a line is longer than the terminal (``raw`` is accepted for older callers)."""
    kwargs.setdefault("formatter_class", Formatter)
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def formatter(prog: str) -> argparse.HelpFormatter:
    """Help keeps the examples' line breaks, wraps what is too long, and leaves room for the flag column."""
    return Formatter(prog, max_help_position=30)


# Signals that arrived while the interpreter could not raise (a finaliser, a weakref callback inside an import):
# re-delivered a moment later from a timer, outside that context (see terminate_as_exception).
_pending: list[int] = []
REDELIVER = 0.005  # s
# Signals raised as exceptions and not yet reported: C code or an `except Exception` on the way can still eat
# the exception; ipclab.cli.main then reports the signal itself (take_raised).
_raised: list[int] = []


def raised_signal() -> int | None:
    """The first signal raised as an exception and not yet reported (None: none); forgets nothing."""
    return _raised[0] if _raised else None


def take_raised() -> int | None:
    """The first signal raised as an exception since the last call (None: none), and forget them."""
    first = _raised[0] if _raised else None
    _raised.clear()
    return first


def _raise_for(signum: int) -> None:
    _raised.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


def _on_signal(signum: int, frame: Any) -> None:
    _raise_for(signum)


def _redeliver(signum: int, frame: Any) -> None:
    if _pending:
        first = _pending[0]
        _pending.clear()
        _raise_for(first)


class terminate_as_exception:  # noqa: N801 - used like a function: `with terminate_as_exception():`
    """SIGINT and SIGTERM raise KeyboardInterrupt / Interrupted in the main thread, so the same finally blocks
    clean up for both.

    An exception raised where Python cannot let it out (``__del__``, a weakref callback, which imports run) is
    printed as "Exception ignored ..." and the signal is lost. The unraisable hook catches exactly those: it
    hides the message and raises the interrupt again a moment later (SIGALRM), outside the finaliser. Leaving
    the block disarms the timer and raises a still pending interrupt there, so none is lost.
    """

    def __enter__(self) -> None:
        self.old = {s: signal.signal(s, h) for s, h in ((signal.SIGTERM, _on_signal), (signal.SIGINT, _on_signal),
                                                         (signal.SIGALRM, _redeliver))}
        self.old_hook = sys.unraisablehook
        previous = self.old_hook

        def hook(unraisable: Any) -> None:
            exc = unraisable.exc_value
            if isinstance(exc, (KeyboardInterrupt, Interrupted)):
                _pending.append(exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)
                signal.setitimer(signal.ITIMER_REAL, REDELIVER)
                return
            previous(unraisable)

        sys.unraisablehook = hook

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.unraisablehook = self.old_hook
        for s, handler in self.old.items():
            signal.signal(s, handler)
        if _pending and exc[0] is None:  # swallowed by a finaliser just before the end: not lost
            first = _pending[0]
            _pending.clear()
            _raise_for(first)


# --format github was tabulate's "github" table: markdown's pipe table without the alignment colons, so on GitHub
# its numbers were left-aligned. markdown is a GitHub table too, and a better one; github stays accepted (scripts,
# older notes) as markdown, with one line saying so.
FORMAT_ALIASES = {"github": "markdown"}


def _format_value(text: str) -> str:
    target = FORMAT_ALIASES.get(text)
    if target is None:
        return text
    print(f"ipclab: note: --format {text} is --format {target} (a GitHub table with right-aligned numbers); "
          f"write --format {target}", file=sys.stderr)
    return target


def add_format(parser: argparse.ArgumentParser, formats: tuple[str, ...] | list[str], what: str,
               default: str = "table") -> None:
    """--format/-f with ``formats`` (an alias such as github is taken as its target), its default stated."""
    shown = [f for f in formats if f not in FORMAT_ALIASES]
    listing = ", ".join(f"{f} (default)" if f == default else f for f in shown)
    parser.add_argument("--format", "-f", choices=shown, default=default, type=_format_value, metavar="FORMAT",
                        help=f"{listing}: {what}")
