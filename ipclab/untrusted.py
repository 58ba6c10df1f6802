"""What came from outside: read only regular files, under a size cap; strict JSON; text made harmless.

Experiment and result files are named by the user and may be anything: a FIFO (an ``open`` that never returns),
``/dev/zero`` (a read that never ends), a huge file. :func:`read_regular` opens without blocking, refuses
anything that is not a regular file and never reads more than the cap, so every such case is one line at once.

:func:`loads_json` refuses what Python's json module accepts but JSON does not say (NaN, Infinity) and duplicate
keys (two readers of one file could see two different values). :func:`terminal_text` neutralises control and
escape sequences in text that came from a file before it reaches a terminal; :func:`csv_cell` stops a cell
from being read as a spreadsheet formula.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from typing import Any

from .errors import ConfigError

__all__ = ["read_regular", "loads_json", "terminal_text", "csv_cell", "strict_json"]


def read_regular(path: str, limit: int, what: str) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; else a one-line ConfigError.

    ``what`` starts the message (``--experiment``, ``result file``). O_NONBLOCK: opening a FIFO for reading
    returns at once instead of waiting for a writer; fstat then refuses it (checked on the open file, so a
    rename between check and read cannot swap in something else).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path!r}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what}: cannot read {path!r}: it is {_kind(st.st_mode)}, not a regular file; "
                              "give a regular file")
        if st.st_size > limit:
            raise ConfigError(f"{what}: {path!r} is larger than the {limit} byte limit ({st.st_size} bytes); "
                              "is it the right file?")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= limit:  # a file that grows while we read still stops at the cap
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ConfigError(f"{what}: {path!r} grew above the {limit} byte limit while being read")
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path!r}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


class _Refused(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {terminal_text(key)!r}")
        out[key] = value
    return out


def loads_json(text: str) -> Any:
    """json.loads without NaN/Infinity and without duplicate keys (ValueError names which)."""
    return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)


# C0 controls except tab and newline, DEL, C1 controls (0x80-0x9f: CSI and friends on some terminals), and
# the Unicode bidirectional overrides that make text display in an order other than the bytes.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_CONTROL_OR_BREAK = re.compile(f"[\t\n{_CONTROLS}]")


def terminal_text(text: str, *, newlines: bool = True) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``): nothing a terminal obeys.

    ``newlines=False`` escapes tab and newline as well (a one-line field: a name, a reason).
    """
    pattern = _CONTROL if newlines else _CONTROL_OR_BREAK
    return pattern.sub(lambda m: repr(m.group())[1:-1], text)


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV field a spreadsheet shows as text: a string starting like a formula gets a leading quote.

    Numbers (also negative ones, written by ipclab) are left alone: they are data, not formulas.
    """
    if isinstance(value, str) and value.startswith(_FORMULA):
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


def strict_json(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes only JSON: a NaN or infinite float (a statistic with nothing to work on)
    becomes null instead of the ``NaN``/``Infinity`` that other JSON readers refuse."""
    return json.dumps(_finite(data), allow_nan=False, **kwargs)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
