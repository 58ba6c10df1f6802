"""Terminal layout: text that fits the terminal's width (100 columns is the design target).

Titles, notes and legends wrap at word boundaries, never inside a word. A table wider than the terminal first
moves each cell's range onto a second line under its figure (as regression tables print a standard error under
its coefficient); one still too wide is cut into groups of columns, each repeating the row labels.
"""

from __future__ import annotations

import shutil
import textwrap

DESIGN_WIDTH = 100  # what a table is laid out for where no terminal says otherwise (a pipe, a file)
MIN_WIDTH = 60  # narrower terminals get this width: a table that cannot be read is no better cut smaller


def terminal_width() -> int:
    """The terminal's columns ($COLUMNS first, then the terminal itself), DESIGN_WIDTH when not a terminal."""
    return max(MIN_WIDTH, shutil.get_terminal_size((DESIGN_WIDTH, 24)).columns)


def wrap(text: str, width: int, indent: int = 0) -> str:
    """``text`` wrapped at spaces to ``width`` columns; continuation lines indented by ``indent``."""
    return textwrap.fill(text, width, subsequent_indent=" " * indent, break_long_words=False,
                         break_on_hyphens=False)


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def stacked(row: list[str]) -> list[str]:
    """A row with each cell's range "(a–b)" moved onto a line under its figure."""
    return [row[0], *(cell.replace(" (", "\n(", 1) for cell in row[1:])]


def _tabulate(columns: list[str], rows: list[list[str]], tablefmt: str) -> str:
    from tabulate import tabulate

    return str(tabulate(rows, headers=columns, tablefmt=tablefmt, disable_numparse=True,
                        colalign=("left", *("right",) * (len(columns) - 1))))


def fit(columns: list[str], rows: list[list[str]], width: int, tablefmt: str = "simple") -> list[str]:
    """The table as one or more blocks of text, each at most ``width`` columns where that can be done at all
    (a single column wider than the terminal is not cut)."""
    text = _tabulate(columns, rows, tablefmt)
    if widest(text) <= width:
        return [text]
    rows = [stacked(r) for r in rows]
    text = _tabulate(columns, rows, tablefmt)
    if widest(text) <= width:
        return [text]
    blocks = []
    start = 1
    while start < len(columns):
        end = start + 1  # at least one data column per block
        while end < len(columns) and widest(_tabulate(_cut(columns, start, end + 1), [_cut(r, start, end + 1)
                                                                                   for r in rows],
                                                      tablefmt)) <= width:
            end += 1
        blocks.append(_tabulate(_cut(columns, start, end), [_cut(r, start, end) for r in rows], tablefmt))
        start = end
    return blocks


def _cut(row: list[str], start: int, end: int) -> list[str]:
    return [row[0], *row[start:end]]
