"""Result files: a versioned JSON document, written atomically after every cell.

Schema (format_version 1):
    format: "ipclab-result", format_version: 1, created/finished: ISO 8601 UTC, interrupted: bool,
    metadata: probes.sysinfo(), config: RunConfig.to_dict(),
    cells: [{pattern, transport, size_bytes, status: ok|n/a|failed, reason, count, warmup, duration_s,
             placement, cpus, trials: [{trial, metrics: {...}, raw: {role: {...}}}],
             summary: {metric: median over trials}, spread: {metric: (max-min)/median}, warnings: [...]}]
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

FORMAT = "ipclab-result"
FORMAT_VERSION = 1
MAX_RESULT_BYTES = 512 * 1024 * 1024
_UMASK = os.umask(0o022)  # read once, at import: toggling it at save time could leave 0 behind a signal
os.umask(_UMASK)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_result(config: RunConfig, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
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
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(directory, f"ipclab-{stamp}.json")
    n = 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(directory, f"ipclab-{stamp}-{n}.json")
    return path


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, allow_nan=False, sort_keys=False) + "\n"


def save(result: dict[str, Any], path: str) -> None:
    """Write atomically (temp file + rename): a crash mid-write never leaves a truncated result."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ipclab-", suffix=".json.tmp", dir=directory)
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
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ConfigError(f"cannot read result file {path!r}: {exc.strerror}") from None
    if size > MAX_RESULT_BYTES:
        raise ConfigError(f"result file {path!r} is {size} bytes, above the {MAX_RESULT_BYTES} byte limit")
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read result file {path!r}: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: hostile deep nesting
        raise ConfigError(f"{path!r} is not an ipclab result (not valid JSON: {exc})") from None
    validate(data, path)
    return data


def validate(data: Any, path: str = "<result>") -> None:
    def bad(what: str) -> ConfigError:
        return ConfigError(f"{path!r} is not a usable ipclab result: {what}")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(f"missing \"format\": \"{FORMAT}\"")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad("missing format_version")
    if version > FORMAT_VERSION:
        raise bad(f"format_version {version} is newer than this ipclab understands ({FORMAT_VERSION}); upgrade ipclab")
    if not isinstance(data.get("cells"), list):
        raise bad("\"cells\" is not a list")
    for i, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict):
            raise bad(f"cell {i} is not an object")
        for key, kind in (("pattern", str), ("transport", str), ("size_bytes", int), ("status", str)):
            if not isinstance(cell.get(key), kind) or isinstance(cell.get(key), bool):
                raise bad(f"cell {i} has no valid {key!r}")
        if not isinstance(cell.get("summary", {}), dict) or not isinstance(cell.get("trials", []), list):
            raise bad(f"cell {i} has a malformed summary or trials")
        if cell["size_bytes"] < 0:
            raise bad(f"cell {i} has a negative size_bytes")
        if not isinstance(cell.get("spread", {}), dict):
            raise bad(f"cell {i} has a malformed spread")
        for part in ("summary", "spread"):
            for name, value in cell.get(part, {}).items():  # exporters do arithmetic on these
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise bad(f"cell {i} {part} {name!r} is not a number")
        for key in ("reason", "placement"):  # printed and used as dictionary keys by the exporters
            if cell.get(key) is not None and not isinstance(cell.get(key), str):
                raise bad(f"cell {i} {key!r} is not a string")
        if not isinstance(cell.get("warnings", []), list) or not all(
                isinstance(w, str) for w in cell.get("warnings", [])):
            raise bad(f"cell {i} has malformed warnings")
        for trial in cell.get("trials", []):
            if not isinstance(trial, dict) or not isinstance(trial.get("metrics", {}), dict):
                raise bad(f"cell {i} has a malformed trial")
    if not isinstance(data.get("metadata", {}), dict) or not isinstance(data.get("config", {}), dict):
        raise bad("metadata/config must be objects")
