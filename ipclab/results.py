"""Result files: a versioned JSON document, written atomically after every cell.

The schema is the typed model in :mod:`ipclab.model` (Result -> Cell -> Trial, Warning): format "ipclab-result",
format_version 2 (1: warnings are strings, still read), created/finished: ISO 8601 UTC, interrupted: bool,
metadata: probes.sysinfo() (and ``argv``: the command line of ``ipclab run``, as a list, where the run came from
it), config: RunConfig.to_dict(), cells: [{pattern, transport, size_bytes,
status: ok|n/a|failed, reason, count, warmup, duration_s, placement, cpus, trials: [{trial, metrics, raw}],
summary: {metric: median over trials}, spread: {metric: (max-min)/median}, warnings: [...]}].
Units are in key names (_ns, _us, _s, _bytes, mb_s = 10**6 bytes/s, msg_s).
Loading never evaluates anything: JSON only, validated, with one clear error for a broken or hostile file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from typing import Any

from .config import RunConfig
from .errors import ConfigError
from .model import FORMAT, FORMAT_VERSION, Result

__all__ = ["FORMAT", "FORMAT_VERSION", "new_result", "default_path", "dumps", "save", "load", "load_result",
           "validate"]
MAX_RESULT_BYTES = 512 * 1024 * 1024
_UMASK = os.umask(0o022)  # read once, at import: toggling it at save time could leave 0 behind a signal
os.umask(_UMASK)


def now_iso() -> str:
    """Now, UTC, to the second: the created/finished stamps."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_result(config: RunConfig, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """An empty result for ``config``: the engine appends cells as they finish."""
    if metadata is None:
        from .probes import sysinfo

        metadata = sysinfo()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": now_iso(),
        "finished": None,
        "interrupted": False,
        "metadata": metadata,
        "config": config.to_dict(),
        "cells": [],
    }


def default_path(directory: str = "results") -> str:
    """results/ipclab-DATE-TIME.json, numbered when a run started in the same second already wrote one."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(directory, f"ipclab-{stamp}.json")
    n = 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(directory, f"ipclab-{stamp}-{n}.json")
    return path


def dumps(result: dict[str, Any] | Result) -> str:
    """The file's text: a result as JSON (NaN and infinities refused: they are not JSON)."""
    data = result.to_dict() if isinstance(result, Result) else result
    return json.dumps(data, indent=1, allow_nan=False, sort_keys=False) + "\n"


def save(result: dict[str, Any] | Result, path: str) -> None:
    """Write atomically (temp file + rename): a crash mid-write never leaves a truncated result.

    The result is validated first: a file that ``load`` would refuse is never written (that would be a bug).
    """
    if not isinstance(result, Result):
        try:
            Result.from_dict(result, path)
        except ConfigError as exc:
            raise ValueError(f"refusing to write an invalid result: {exc}") from None
    from .outputs import TEMP_SUFFIX, refuse_non_regular, temp_prefix

    refuse_non_regular(path)  # a device or FIFO put there since the check is never renamed over
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=TEMP_SUFFIX, dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # an ordinary file, like any other output (mkstemp makes it 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps(result))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load(path: str) -> dict[str, Any]:
    """Read and validate a result file; ConfigError (one line) for anything that is not a usable result."""
    data = _read(path)
    validate(data, path)
    return data


def load_result(path: str) -> Result:
    """Read a result file into the typed model; ConfigError (one line) for anything that is not usable."""
    return Result.from_dict(_read(path), path)


def validate(data: Any, path: str = "<result>") -> None:
    """ConfigError ``'PATH' is not a usable ipclab result: WHAT`` unless ``data`` is a valid result."""
    Result.from_dict(data, path)


def _read(path: str) -> Any:
    """The parsed JSON of a result file: a regular file under the size cap, strict JSON (no NaN, no duplicate
    keys); one-line ConfigError otherwise (a FIFO or /dev/zero is refused at once, not read)."""
    from .untrusted import loads_json, read_regular

    raw = read_regular(path, MAX_RESULT_BYTES, "result file")
    try:
        return loads_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: hostile deep nesting
        raise ConfigError(f"{path!r} is not an ipclab result (not valid JSON: {exc})") from None
