"""Byte sizes as people write them: ``64``, ``4K``, ``1MiB`` in, ``4 KiB`` out (K/M/G are binary)."""

from __future__ import annotations

import re

from .errors import ConfigError

KiB = 1024
MiB = 1024 * 1024
# A worker holds a few buffers of the message size: a typo must not exhaust the machine.
MAX_SIZE = 64 * MiB

_SIZE_RE = re.compile(r"^\s*(\d{1,30})\s*([kKmMgG]?)(i?[bB])?\s*$")  # 30 digits: int() never balks
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": 1024 * MiB}


def format_size(n: int) -> str:
    """64 -> '64 B', 4096 -> '4 KiB', 1048576 -> '1 MiB' (exact multiples only, else bytes)."""
    for unit, factor in (("MiB", MiB), ("KiB", KiB)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def parse_size(text: str, flag: str = "--size") -> int:
    """Parse '64', '4K', '4KiB', '1M' (K/M/G are binary: KiB/MiB/GiB). 0 is valid (an empty message)."""
    if not isinstance(text, str):
        text = str(text)
    shown = text if len(text) <= 40 else text[:37] + "..."  # the error line stays one readable line
    if text.strip().startswith("-"):
        raise ConfigError(f"{flag}: size {text.strip()!r} is negative; sizes are 0..{format_size(MAX_SIZE)}")
    m = _SIZE_RE.match(text)
    if not m:
        raise ConfigError(
            f"{flag}: cannot read size {shown!r}; write bytes or a K/M suffix (KiB/MiB, at most "
            f"{format_size(MAX_SIZE)}), e.g. 64,4K,1M"
        )
    value = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if value > MAX_SIZE:
        raise ConfigError(
            f"{flag}: size {text.strip()!r} ({value} bytes) is above the limit of {format_size(MAX_SIZE)}; "
            "use a smaller size"
        )
    return value
