"""``--transport``, ``--pattern``, ``--size`` of ``report`` and ``plot``: the cells of a result they select.

The result is filtered once, before any table or plot is built; a name or size the result does not hold is a
ConfigError naming the flag, the value and what the result has.
"""

from __future__ import annotations

from typing import Any

from ..config import closest, split_list
from ..errors import ConfigError
from ..units import format_size, parse_size


def _chosen(text: str | None, flag: str, have: list[str]) -> set[str] | None:
    if text is None:
        return None
    names = split_list(text, flag)
    for name in names:
        if name not in have:
            raise ConfigError(f"{flag}: {name!r} is not in the result{closest(name, have)}; "
                              f"it has: {', '.join(have)}")
    return set(names)


def _sizes(text: str | None, have: list[int]) -> set[int] | None:
    if text is None:
        return None
    sizes = {parse_size(item, "--size") for item in split_list(text, "--size")}
    for size in sorted(sizes):
        if size not in have:
            raise ConfigError(f"--size: {format_size(size)} ({size} bytes) is not in the result; "
                              f"it has: {', '.join(format_size(s) for s in have)}")
    return sizes


def select_cells(result: dict[str, Any], transports: str | None = None, patterns: str | None = None,
                 sizes: str | None = None) -> dict[str, Any]:
    """A shallow copy of ``result`` holding only the cells the comma-separated lists select (None: all)."""
    cells = result["cells"]
    want_t = _chosen(transports, "--transport", list(dict.fromkeys(c["transport"] for c in cells)))
    want_p = _chosen(patterns, "--pattern", list(dict.fromkeys(c["pattern"] for c in cells)))
    want_s = _sizes(sizes, sorted(dict.fromkeys(c["size_bytes"] for c in cells)))
    if want_t is None and want_p is None and want_s is None:
        return result
    kept = [c for c in cells if (want_t is None or c["transport"] in want_t)
            and (want_p is None or c["pattern"] in want_p) and (want_s is None or c["size_bytes"] in want_s)]
    if not kept:
        raise ConfigError("--transport/--pattern/--size: no cell of the result matches all of them")
    return {**result, "cells": kept}


def add_selection(parser: Any) -> None:
    """The three selection flags, shared by the report and plot parsers."""
    parser.add_argument("--transport", "-t", metavar="T[,T...]", help="only these transports (default: all)")
    parser.add_argument("--pattern", "-p", metavar="P[,P...]", help="only these patterns (default: all)")
    parser.add_argument("--size", "-s", metavar="SIZE[,SIZE...]", help="only these sizes, e.g. 64,4K (default: all)")
