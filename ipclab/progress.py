"""Progress over a sweep: a rich bar with ETA on a terminal, plain lines otherwise, nothing with --quiet.

The bar stands still: the cell's label is padded to one width for the whole sweep (``label_width``, from the
longest "pattern transport size" of the run), so the bar does not move from cell to cell. The line reads

    pingpong tcp 64 KiB  trial 1/2  ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━   8/24 trials 0:00:05 eta 0:00:09

"trial 1/2" (left out with one trial per cell) counts the trials of this cell; "8/24 trials" those of the sweep.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

MAX_LABEL = 40  # a longer label is cut (with "…"), so the bar keeps its room on a 100-column terminal


class Progress:
    """Callable with the runner's events: start, trial, skip, failed. Use as a context manager."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None, label_width: int = 32) -> None:
        self.stream = stream or sys.stderr
        self.label_width = min(label_width, MAX_LABEL)
        self._trial_width = 0  # "trial 1/2" padded to the width of the last trial's text
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
                from rich.table import Column
            except ImportError:  # rich is optional for the bar: fall back to plain lines
                self.tty = False
                return
            trials = int(info["total"]) // max(1, int(info.get("cells") or 1))  # per cell: the same for every cell
            self._trial_width = len(f"trial {trials}/{trials}") if trials > 1 else 0
            width = max(self.label_width, len("starting")) + (2 + self._trial_width if self._trial_width else 0)
            self._bar = Bar(TextColumn("{task.description}", table_column=Column(width=width, no_wrap=True)),
                            BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(file=self.stream), transient=True)
            self._task = self._bar.add_task(self.describe("starting"), total=info["total"])
            self._bar.start()
            return
        if self._bar is None:
            return
        self._advance()
        if event == "trial":
            self._bar.update(self._task, description=self.describe(info["label"], info["trial"], info["trials"]))
            self._pending = True
        elif event == "skip":
            self._bar.advance(self._task, info["trials"])
        elif event == "failed":
            self._bar.console.print(f"[red]{info['label']}: failed:[/red] {info['reason']}")
            self._bar.advance(self._task, info.get("remaining", 0))

    def describe(self, label: str, trial: int = 0, trials: int = 1) -> str:
        """The bar's description, always the same width: the label padded (or cut), then "trial i/k"."""
        width = max(self.label_width, len("starting"))
        text = label if len(label) <= width else label[: width - 1] + "…"
        text = f"{text:<{width}}"
        if self._trial_width:
            text += "  " + (f"trial {trial}/{trials}" if trial else "").ljust(self._trial_width)
        return text
