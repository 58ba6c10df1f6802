"""Run configuration: parsing of sizes and lists, validation, and experiment TOML files.

Everything the user types ends up in one frozen, JSON-serialisable :class:`RunConfig` that is validated once,
up front, and then sent whole to every worker. Every error names the flag (or experiment key), the value, the
limit and the fix, as one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

KiB = 1024
MiB = 1024 * 1024

# Limits that keep a typo from exhausting the machine: a worker holds a few buffers of the message size and
# one 8-byte sample per message.
MAX_SIZE = 64 * MiB
MAX_COUNT = 10_000_000
MAX_WARMUP = 1_000_000
MAX_TRIALS = 100
MAX_DURATION = 3600.0
MAX_TIMEOUT = 86400.0
MAX_CLIENTS = 64
MAX_SEED = 2**63 - 1

DEFAULT_SIZES = (64, 4 * KiB, 64 * KiB)
DEFAULT_PATTERNS = ("pingpong", "stream")
PIN_MODES = ("auto", "none", "same", "cross")
FORMATS = ("table", "markdown", "csv", "json")

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


def split_list(text: str, flag: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']; an empty item is an error naming the flag."""
    items = [item.strip() for item in str(text).split(",")]
    if not items or any(item == "" for item in items):
        raise ConfigError(f"{flag}: empty item in {text!r}; give a comma-separated list without blanks")
    return items


def closest(word: str, choices: list[str]) -> str:
    """' (did you mean X?)' or '' - used in 'unknown X' messages."""
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def parse_pin(text: str, flag: str = "--pin") -> str:
    """auto | none | same | cross | CPU[,CPU]: explicit CPUs for (server, client)."""
    value = str(text).strip().lower()
    if value in PIN_MODES:
        return value
    try:
        cpus = [int(part) for part in split_list(value, flag)]
    except (ConfigError, ValueError):
        raise ConfigError(
            f"{flag}: cannot read {text!r}; use auto, none, same, cross or CPU numbers like 0,1"
        ) from None
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    for cpu in cpus:
        if cpu not in allowed:
            raise ConfigError(f"{flag}: CPU {cpu} is not available here; usable CPUs are {allowed}")
    if len(cpus) > 2:
        raise ConfigError(f"{flag}: {text!r} names {len(cpus)} CPUs; give one (shared) or two (server,client)")
    return ",".join(str(c) for c in cpus)


@dataclass(frozen=True)
class RunConfig:
    """One sweep: transports x patterns x sizes, each cell run ``trials`` times in fresh processes."""

    transports: tuple[str, ...] = ()
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    sizes: tuple[int, ...] = DEFAULT_SIZES
    count: int | None = None  # messages (round trips) per trial; None = chosen per cell (see runner.auto_count)
    duration: float | None = None  # seconds per trial instead of a count
    warmup: int | None = None  # None = chosen per cell (see runner.auto_warmup)
    trials: int = 1
    seed: int = 1
    timeout: float = 60.0  # seconds a cell may take beyond its expected time before its workers are killed
    pin: str = "auto"
    verify: bool = False  # check every byte of every message (default: sequence and count, plus sampled bytes)
    clients: int = 1  # producers for the fan-in pattern
    output: str | None = None
    experiment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes from an experiment file

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("transports", "patterns", "sizes"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("transports", "patterns", "sizes"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def _int_in_range(value: Any, flag: str, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, (bool, float)):
                raise ValueError
            value = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{flag}: {value!r} is not a whole number; {what} must be {low}..{high}") from None
    if value < low or value > high:
        raise ConfigError(f"{flag}: {value} is out of range; {what} must be {low}..{high}")
    return value


def _float_in_range(value: Any, flag: str, low: float, high: float, what: str, *, low_open: bool = True) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag}: {value!r} is not a number; {what} must be between {low:g} and {high:g}") from None
    if not math.isfinite(number) or number > high or number < low or (low_open and number <= low):
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise ConfigError(f"{flag}: {value!r} is out of range; {what} must be {bound} and at most {high:g}")
    return number


def validate(
    *,
    transports: Any = None,
    patterns: Any = None,
    sizes: Any = None,
    count: Any = None,
    duration: Any = None,
    warmup: Any = None,
    trials: Any = None,
    seed: Any = None,
    timeout: Any = None,
    pin: Any = None,
    verify: bool = False,
    clients: Any = None,
    output: Any = None,
    experiment: str | None = None,
    extra: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
) -> RunConfig:
    """Build a RunConfig from loosely typed input (CLI strings or TOML values); ConfigError on anything bad.

    ``flags`` maps a field to the name shown in errors (``--size`` on the CLI, ``sizes`` in a TOML file).
    """
    from .patterns import PATTERNS
    from .transports import TRANSPORTS, available_names

    names = {**{k: f"--{k}" for k in ("transport", "pattern", "size", "count", "duration", "warmup", "trials",
                                       "seed", "timeout", "pin", "clients", "output")}, **(flags or {})}
    kwargs: dict[str, Any] = {"verify": bool(verify), "experiment": experiment, "extra": dict(extra or {})}

    known_transports = list(TRANSPORTS)
    if transports is None or transports == "":
        if transports == "":
            raise ConfigError(f"{names['transport']}: empty; name transports, e.g. tcp,udp,pipe, or 'all'")
        kwargs["transports"] = tuple(available_names())
    else:
        items = split_list(transports, names["transport"]) if isinstance(transports, str) else list(transports)
        if items == ["all"]:
            items = known_transports
        chosen: list[str] = []
        for item in items:
            if item not in TRANSPORTS:
                raise ConfigError(
                    f"{names['transport']}: unknown transport {item!r}{closest(str(item), known_transports)}; "
                    f"known: {', '.join(known_transports)}"
                )
            if item not in chosen:
                chosen.append(item)
        kwargs["transports"] = tuple(chosen)

    if patterns is not None:
        items = split_list(patterns, names["pattern"]) if isinstance(patterns, str) else list(patterns)
        for item in items:
            if item not in PATTERNS:
                raise ConfigError(
                    f"{names['pattern']}: unknown pattern {item!r}{closest(str(item), list(PATTERNS))}; "
                    f"known: {', '.join(PATTERNS)}"
                )
        kwargs["patterns"] = tuple(dict.fromkeys(items))

    if sizes is not None:
        if isinstance(sizes, str):
            items = split_list(sizes, names["size"])
        elif isinstance(sizes, (list, tuple)):
            items = list(sizes)
            if not items:
                raise ConfigError(f"{names['size']}: empty list; give sizes such as 64,4K,64K")
        else:
            items = [sizes]
        parsed = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise ConfigError(f"{names['size']}: {item!r} is not a size; write bytes or 4K/1M")
            parsed.append(parse_size(str(item), names["size"]))
        kwargs["sizes"] = tuple(dict.fromkeys(parsed))

    if count is not None and duration is not None:
        raise ConfigError(
            f"{names['count']} and {names['duration']} both given; a trial ends after a count or a duration, "
            "use one of them"
        )
    if count is not None:
        kwargs["count"] = _int_in_range(count, names["count"], 1, MAX_COUNT, "the message count")
    if duration is not None:
        kwargs["duration"] = _float_in_range(duration, names["duration"], 0.0, MAX_DURATION, "the duration in seconds")
    if warmup is not None:
        kwargs["warmup"] = _int_in_range(warmup, names["warmup"], 0, MAX_WARMUP, "the warm-up count")
    if trials is not None:
        kwargs["trials"] = _int_in_range(trials, names["trials"], 1, MAX_TRIALS, "the number of trials")
    if seed is not None:
        kwargs["seed"] = _int_in_range(seed, names["seed"], 0, MAX_SEED, "the seed")
    if timeout is not None:
        kwargs["timeout"] = _float_in_range(timeout, names["timeout"], 0.0, MAX_TIMEOUT, "the timeout in seconds")
    if pin is not None:
        kwargs["pin"] = parse_pin(pin, names["pin"])
    if clients is not None:
        kwargs["clients"] = _int_in_range(clients, names["clients"], 1, MAX_CLIENTS, "the number of clients")
    if output is not None:
        kwargs["output"] = check_output_path(output, names["output"])
    return RunConfig(**kwargs)


def check_text_path(path: str, flag: str) -> str:
    """A path given on the command line must be valid UTF-8: it is recorded in the JSON result."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{flag}: the path {path!r} is not valid UTF-8; use a plain UTF-8 file name") from None
    return path


def check_output_path(path: Any, flag: str = "--output") -> str:
    """The result path must be creatable: an existing, writable directory; never a directory itself."""
    if not isinstance(path, str) or path == "":
        raise ConfigError(f"{flag}: {path!r} is not a file path")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{flag}: the path {path!r} is not valid UTF-8; use a plain UTF-8 file name") from None
    if path == "-":
        return path
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise ConfigError(f"{flag}: {path!r} is a directory; give a file name such as {path.rstrip('/')}/run.json")
    if not os.path.isdir(parent):
        raise ConfigError(f"{flag}: directory {parent!r} does not exist; create it or choose another path")
    # A real probe, not os.access: root passes access() checks on read-only mounts.
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".ipclab-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{flag}: directory {parent!r} is not writable ({exc.strerror}); choose a directory you can write to"
        ) from None
    return path
