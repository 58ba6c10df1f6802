"""Progress over a sweep: a rich bar with ETA on a terminal, plain lines otherwise, nothing with --quiet."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    """Callable with the runner's events: start, trial, skip, failed. Use as a context manager."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() and not quiet
        self._bar: Any = None
        self._task: Any = None
        self._pending = False  # a trial is running (advance when the next event comes)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._advance()
            self._bar.stop()

    def _advance(self, n: int = 1) -> None:
        if self._pending and self._bar is not None:
            self._bar.advance(self._task, n)
        self._pending = False

    def __call__(self, event: str, **info: Any) -> None:
        if self.quiet:
            return
        if self.tty:
            self._rich(event, info)
        elif event == "failed":
            print(f"ipclab: {info['label']}: failed: {info['reason']}", file=self.stream, flush=True)
        elif event == "trial":
            print(f"ipclab: {info['label']} (trial {info['trial']}/{info['trials']})", file=self.stream, flush=True)

    def _rich(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
                from rich.progress import Progress as Bar
            except ImportError:  # rich is optional for the bar: fall back to plain lines
                self.tty = False
                return
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(file=self.stream), transient=True)
            self._task = self._bar.add_task("starting", total=info["total"])
            self._bar.start()
            return
        if self._bar is None:
            return
        self._advance()
        if event == "trial":
            self._bar.update(self._task, description=f"{info['label']} [{info['trial']}/{info['trials']}]")
            self._pending = True
        elif event == "skip":
            self._bar.advance(self._task, info["trials"])
        elif event == "failed":
            self._bar.console.print(f"[red]{info['label']}: failed:[/red] {info['reason']}")
            self._bar.advance(self._task, info.get("remaining", 0))
