"""Per-cell facts the tables and the advice both read: the range across trials, delivery (loss, reordering,
duplicates) and the samples behind a percentile.

One place each, so the tables and the warnings can never disagree about a cell, and so the result model's own
per-cell range (min, max of each per-trial figure), once it is recorded, replaces :func:`figure_range` in one line.
"""

from __future__ import annotations

from typing import Any

from ..config import format_size
from ..patterns import PATTERNS, get_spec

DELIVERY = ("loss_pct", "reordered", "duplicated")  # the figures of a lossy cell shown on screen, in this order


def label(cell: dict[str, Any]) -> str:
    """"transport size" (", at 10k/s offered" for an open-loop cell): how a warning names a cell."""
    rate = cell.get("rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        from .load import format_rate

        return f"{cell['transport']} {format_size(cell['size_bytes'])} at {format_rate(float(rate))}/s offered"
    return f"{cell['transport']} {format_size(cell['size_bytes'])}"


def _numbers(cell: dict[str, Any], key: str) -> list[float]:
    values = []
    for trial in cell.get("trials", []):
        value = trial.get("metrics", {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values.append(float(value))
    return values


def figure_range(cell: dict[str, Any], key: str) -> tuple[float, float] | None:
    """(min, max) of one per-trial figure across the cell's trials; None with fewer than two trials.

    The result's own per-cell range (``cell["range"]``, recorded by the engine) when it has one; an older file's
    trials otherwise.
    """
    if len(cell.get("trials", [])) < 2:
        return None
    recorded = cell.get("range", {}).get(key)
    if isinstance(recorded, list) and len(recorded) == 2:
        return float(recorded[0]), float(recorded[1])
    values = _numbers(cell, key)
    return (min(values), max(values)) if len(values) > 1 else None


def delivery(cell: dict[str, Any]) -> dict[str, float | None]:
    """The cell's median loss (%), reordered and duplicated messages; None where the pattern does not count it."""
    summary = cell.get("summary", {})
    return {key: (float(summary[key]) if isinstance(summary.get(key), (int, float)) else None) for key in DELIVERY}


def lossy(cell: dict[str, Any]) -> bool:
    """Did any trial of the cell lose, reorder or duplicate a message? (A median of 0 can hide one trial's loss.)"""
    return cell.get("status") == "ok" and any(v > 0 for key in (*DELIVERY, "lost") for v in _numbers(cell, key))


def loss_pct(cell: dict[str, Any]) -> float | None:
    """The loss to print beside a figure of a lossy cell: the median, or the worst trial's if the median is 0."""
    if not lossy(cell):
        return None
    median = delivery(cell)["loss_pct"]
    if median:
        return median
    worst = _numbers(cell, "loss_pct")
    return max(worst) if worst and max(worst) > 0 else None


def sample_keys(pattern: str) -> tuple[str, ...]:
    """The per-trial figure counting a pattern's samples; every declared one for a pattern not in the registry."""
    if pattern in PATTERNS:
        key = get_spec(pattern).sample_key
        return (key,) if key else ()
    return tuple(dict.fromkeys(k for name in PATTERNS if (k := get_spec(name).sample_key)))


def samples_behind(cell: dict[str, Any], key: str) -> tuple[int | None, str]:
    """How many samples a percentile figure of the cell rests on, and how they were counted.

    A percentile pooled over all trials (``cell["pooled"]``, format 2 results) rests on every trial's samples;
    an older file's percentile is a median of per-trial percentiles, each resting on one trial's samples.
    """
    for info in cell.get("pooled", {}).values():
        if key in info.get("keys", ()) and isinstance(info.get("samples"), int):
            trials = info.get("trials", 1)
            return info["samples"], ("samples" if trials == 1 else f"samples pooled over {trials} trials")
    return samples_per_trial(cell), "samples per trial"


def samples_per_trial(cell: dict[str, Any]) -> int | None:
    """The fewest samples any trial of the cell had (round trips, messages, requests...); None if unknown."""
    keys = sample_keys(str(cell.get("pattern")))
    counts = []
    for trial in cell.get("trials", []):
        figures = trial.get("metrics", {})
        for key in keys:
            if isinstance(figures.get(key), (int, float)):
                counts.append(int(figures[key]))
                break
    return min(counts) if counts else None


# A row placed otherwise than the table's title says gets a one-character mark; one legend line says what it
# means. A label such as "shm-spin [cross CPUs (server 0, client 1)]" widened every table by 30 columns.
PLACEMENT_MARKS = (("cross", "×"), ("same", "="), ("unpinned", "~"))
OTHER_MARKS = ("†", "‡", "§", "¶")


def placement_words(where: str) -> str:
    """The engine's placement description as a phrase: "server and client on different CPUs (server 0,
    client 1)"; an unknown form is returned as it is."""
    import re

    if m := re.fullmatch(r"cross CPUs \(server (\d+), client (\d+)\)", where):
        return f"server and client on different CPUs (server {m[1]}, client {m[2]})"
    if m := re.fullmatch(r"same CPU \((\d+)\)", where):
        return f"server and client share CPU {m[1]}"
    if where == "unpinned":
        return "not pinned: the scheduler placed server and client"
    return where


def placement_marks(placements: list[str]) -> dict[str, str]:
    """A distinct short mark per placement (in order): × cross, = same, ~ unpinned, † ‡ ... otherwise; a second
    placement of a kind already marked gets the mark with a number (×2)."""
    marks: dict[str, str] = {}
    others = iter(OTHER_MARKS)
    for where in dict.fromkeys(placements):
        mark = next((m for prefix, m in PLACEMENT_MARKS if where.startswith(prefix)), None)
        if mark is None:
            mark = next(others, f"#{len(marks) + 1}")
        if mark in marks.values():
            mark += str(sum(v.startswith(mark) for v in marks.values()) + 1)
        marks[where] = mark
    return marks
