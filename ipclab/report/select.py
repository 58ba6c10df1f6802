"""``--transport``, ``--pattern``, ``--size``, ``--rate`` of ``report`` and ``plot``: the cells of a result they
select (``--rate max``: the closed-loop cells).

The result is filtered once, before any table or plot is built; a name or size the result does not hold is a
ConfigError naming the flag, the value and what the result has.
"""

from __future__ import annotations

import math
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


def parse_rate(item: str) -> float | None:
    """"1000", "10k", "2.5M" -> messages per second; "max" -> None (closed loop)."""
    text = item.strip().lower()
    if text == "max":
        return None
    scale = {"k": 1e3, "m": 1e6}.get(text[-1:], 1.0)
    try:
        value = float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"--rate: {item!r} is not a rate; give requests per second above 0 (e.g. 1000, 10k) "
                          "or max (closed loop)")
    return value


def _rates(text: str | None, cells: list[dict[str, Any]]) -> set[float | None] | None:
    from .load import format_rate, rate_of

    if text is None:
        return None
    have = list(dict.fromkeys(rate_of(c) for c in cells))
    rates = {parse_rate(item) for item in split_list(text, "--rate")}
    for rate in rates:
        if rate not in have:
            listed = sorted(r for r in have if r is not None) + ([None] if None in have else [])
            raise ConfigError(f"--rate: {format_rate(rate)} is not in the result; it has: "
                              f"{', '.join(format_rate(r) for r in listed)}")
    return rates


def select_cells(result: dict[str, Any], transports: str | None = None, patterns: str | None = None,
                 sizes: str | None = None, rates: str | None = None) -> dict[str, Any]:
    """A shallow copy of ``result`` holding only the cells the comma-separated lists select (None: all)."""
    from .load import rate_of

    cells = result["cells"]
    want_t = _chosen(transports, "--transport", list(dict.fromkeys(c["transport"] for c in cells)))
    want_p = _chosen(patterns, "--pattern", list(dict.fromkeys(c["pattern"] for c in cells)))
    want_s = _sizes(sizes, sorted(dict.fromkeys(c["size_bytes"] for c in cells)))
    want_r = _rates(rates, cells)
    if want_t is None and want_p is None and want_s is None and want_r is None:
        return result
    kept = [c for c in cells if (want_t is None or c["transport"] in want_t)
            and (want_p is None or c["pattern"] in want_p) and (want_s is None or c["size_bytes"] in want_s)
            and (want_r is None or rate_of(c) in want_r)]
    if not kept:
        raise ConfigError("--transport/--pattern/--size/--rate: no cell of the result matches all of them")
    return {**result, "cells": kept}


def add_selection(parser: Any) -> None:
    """The selection flags, shared by the report and plot parsers."""
    parser.add_argument("--transport", "-t", metavar="T[,T...]", help="only these transports (default: all)")
    parser.add_argument("--pattern", "-p", metavar="P[,P...]", help="only these patterns (default: all)")
    parser.add_argument("--size", "-s", metavar="SIZE[,SIZE...]", help="only these sizes, e.g. 64,4K (default: all)")
    parser.add_argument("--rate", metavar="R[,R...]",
                        help="only these offered rates of open-loop cells, e.g. 1k,10k; max = closed loop "
                        "(default: all)")
