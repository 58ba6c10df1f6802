"""Run configuration: the frozen :class:`RunConfig` and the value parsers the option table is built from.

Everything the user types ends up in one frozen, JSON-serialisable RunConfig that is validated once, up front
(by :mod:`ipclab.options`, the one table of run options), and then sent whole to every worker. Every error
names the flag (or experiment key), the value, the limit and the fix, as one line.

A pattern's own options (declared in its ``SPEC.options``, e.g. fan-in's ``clients``) travel in
``RunConfig.options``; ``config.<name>`` reads them too, falling back to the declared default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .units import MAX_SIZE, KiB, MiB, format_size, parse_size

__all__ = ["KiB", "MiB", "MAX_SIZE", "format_size", "parse_size", "RunConfig", "validate", "split_list", "closest",
           "parse_pin", "parse_rates", "format_rate", "whole", "number", "check_text_path", "check_output_path"]

# Limits that keep a typo from exhausting the machine: a worker holds one 8-byte sample per message.
MAX_COUNT = 10_000_000
MAX_WARMUP = 1_000_000
MAX_TRIALS = 100
MAX_DURATION = 3600.0
MAX_TIMEOUT = 86400.0
MAX_SEED = 2**63 - 1

DEFAULT_SIZES = (64, 4 * KiB, 64 * KiB)
# --rate: messages per second of an open-loop cell. The schedule is kept in integer nanoseconds (t0 + i*1e9/R,
# rounded) and read with perf_counter_ns; above 1,000,000/s the period is under 1 us, less than one pass of the
# client's Python loop (a send, a readiness check and the bookkeeping cost 2-5 us here): every send would be
# late by more than the period, so the figures would measure the harness, not the mechanism.
MAX_RATE = 1_000_000.0
RATE_SUFFIXES = {"k": 1e3, "m": 1e6}
MAX_PACED = 1 << 21  # requests of one open-loop trial: three 8-byte samples each stay under 48 MiB


def default_patterns() -> tuple[str, ...]:
    """The patterns of a plain ``ipclab run``: the registry's, by their declarations (no name written here)."""
    from .patterns import default_names

    return default_names()

PIN_MODES = ("auto", "none", "same", "cross")
FORMATS = ("table", "markdown", "csv", "json")


def split_list(text: str, flag: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']; an empty item is an error naming the flag."""
    items = [item.strip() for item in str(text).split(",")]
    if not items or any(item == "" for item in items):
        raise ConfigError(f"{flag}: empty item in {text!r}; give a comma-separated list without blanks")
    return items


def closest(word: str, choices: list[str]) -> str:
    """' (did you mean X?)' or '' - used in 'unknown X' messages."""
    match = difflib.get_close_matches(word, choices, n=5, cutoff=0.5)
    if not match:
        return ""
    # Equal similarity ratios are common among keys that differ by one character (rtt_p50_us, rtt_p95_us):
    # the fewest edits decide, then difflib's order.
    return f" (did you mean {min(match, key=lambda m: _edits(word, m))!r}?)"


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (short words only: option names, metric keys)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def parse_pin(text: Any, flag: str = "--pin") -> str:
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


def parse_rates(value: Any, flag: str = "--rate") -> tuple[float | None, ...]:
    """A comma list (or TOML list) of messages per second: numbers, with k/M suffixes (10k = 10000), and
    ``max`` (None: closed loop, as without --rate). Duplicates are dropped, order kept (the sweep's order)."""
    if isinstance(value, str):
        items: list[Any] = split_list(value, flag)
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise ConfigError(f"{flag}: empty list; give rates such as 1000,10k,max")
    else:
        items = [value]
    rates: list[float | None] = []
    for item in items:
        rates.append(_rate(item, flag))
    return tuple(dict.fromkeys(rates))


def _rate(item: Any, flag: str) -> float | None:
    text = str(item).strip().lower() if isinstance(item, str) else item
    if text == "max":
        return None
    limit = f"a rate must be above 0 and at most {MAX_RATE:,.0f} messages per second, or max (closed loop)"
    try:
        if isinstance(text, bool):
            raise ValueError
        if isinstance(text, str) and text[-1:] in RATE_SUFFIXES:
            rate = float(text[:-1]) * RATE_SUFFIXES[text[-1]]
        else:
            rate = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag}: {item!r} is not a rate; {limit}, e.g. 1000,10k,max") from None
    if not math.isfinite(rate) or rate <= 0 or rate > MAX_RATE:
        raise ConfigError(f"{flag}: {item!r} is out of range; {limit}")
    return rate


def format_rate(rate: float | None) -> str:
    """'max', '1000/s', '12.5k/s'... for labels."""
    if rate is None:
        return "max"
    if rate >= 1000 and rate % 1000 == 0:
        return f"{rate / 1000:g}k/s"
    return f"{rate:g}/s"


def whole(value: Any, flag: str, low: int, high: int, what: str) -> int:
    """A whole number in low..high from a CLI string or a TOML integer; floats and booleans are refused."""
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


def number(value: Any, flag: str, low: float, high: float, what: str, *, low_open: bool = True) -> float:
    """A finite number in (low, high] (or [low, high] with ``low_open=False``)."""
    try:
        if isinstance(value, bool):
            raise ValueError
        result = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag}: {value!r} is not a number; {what} must be between {low:g} and {high:g}") from None
    if not math.isfinite(result) or result > high or result < low or (low_open and result <= low):
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise ConfigError(f"{flag}: {value!r} is out of range; {what} must be {bound} and at most {high:g}")
    return result


@dataclass(frozen=True, init=False)
class RunConfig:
    """One sweep: transports x patterns x sizes, each cell run ``trials`` times in fresh processes.

    Pattern options may be given as keywords (``RunConfig(clients=4)``): they land in ``options``. An unknown
    keyword is a TypeError, as for any dataclass.
    """

    transports: tuple[str, ...] = ()
    patterns: tuple[str, ...] = field(default_factory=default_patterns)
    sizes: tuple[int, ...] = DEFAULT_SIZES
    rates: tuple[float | None, ...] = (None,)  # messages per second per open-loop cell; None = max (closed loop)
    count: int | None = None  # messages (round trips) per trial; None = chosen per cell by the engine's policy
    duration: float | None = None  # seconds per trial instead of a count
    warmup: int | None = None  # None = chosen per cell by the engine's policy
    trials: int = 1
    seed: int = 1
    timeout: float = 60.0  # seconds a cell may take beyond its expected time before its workers are killed
    pin: str = "auto"
    verify: bool = False  # check every byte of every message (default: sequence and count, plus sampled bytes)
    remote: str | None = None  # a command prefix that starts a program on another host (ipclab.engine.remote)
    remote_python: str = "python3"  # the interpreter run there: REMOTE PYTHON -m ipclab.worker --stdio
    remote_address: str | None = None  # the address the other host's endpoints bind and this host dials
    reverse: bool = False  # with remote: the client side runs there and the server side here
    options: dict[str, Any] = field(default_factory=dict)  # the patterns' own options, by name (clients: 1)
    output: str | None = None
    experiment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes from an experiment file

    def __init__(self, **values: Any) -> None:
        fields = dataclasses.fields(self)
        names = {f.name for f in fields}
        options = dict(values.pop("options", None) or {})
        unknown = [key for key in values if key not in names]
        if unknown:
            from .options import pattern_option

            for key in unknown:
                if pattern_option(key) is None:
                    raise TypeError(f"RunConfig() got an unexpected keyword argument {key!r}")
                options[key] = values.pop(key)
        for f in fields:
            if f.name in values:
                value = values[f.name]
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                value = f.default
            object.__setattr__(self, f.name, value)
        object.__setattr__(self, "options", options)

    def option(self, name: str) -> Any:
        """A pattern option's value (``config.option("clients")``), or its declared default when not set."""
        options = self.__dict__.get("options", {})
        if name in options:
            return options[name]
        from .options import pattern_option

        declared = pattern_option(name)
        if declared is None:
            raise AttributeError(f"no pattern declares an option {name!r}")
        return declared.default

    def __getattr__(self, name: str) -> Any:
        """``config.clients``: the same as ``config.option("clients")``, for code that predates ``options``."""
        if name.startswith("_"):  # copy, pickle and friends probe dunders: never a pattern option
            raise AttributeError(name)
        return self.option(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; pattern options are written as top-level keys (``"clients": 1``), like the TOML keys."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "options":
                data.update(value)
            elif isinstance(value, tuple):
                data[f.name] = list(value)
            elif isinstance(value, dict):
                data[f.name] = dict(value)
            else:
                data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The inverse of to_dict; keys that are neither a field nor a declared pattern option are dropped."""
        from .options import pattern_option

        known = {f.name for f in dataclasses.fields(cls)} - {"options"}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("transports", "patterns", "sizes", "rates"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        kwargs["options"] = {k: v for k, v in data.items() if k not in known and pattern_option(k) is not None}
        return cls(**kwargs)


def validate(*, flags: dict[str, str] | None = None, experiment: str | None = None,
             extra: dict[str, Any] | None = None, **values: Any) -> RunConfig:
    """Build a RunConfig from loosely typed input (CLI strings or TOML values); ConfigError on anything bad.

    ``values`` are keyed by option name (``sizes``, ``clients``); None means not given. ``flags`` maps an option
    to the name shown in errors (``--size`` on the CLI, ``FILE:LINE: sizes`` in a TOML file).
    """
    from .options import build

    return build({k: v for k, v in values.items() if v is not None}, flags or {}, experiment=experiment,
                 extra=extra)


def check_text_path(path: str, flag: str) -> str:
    """A path given on the command line must be valid UTF-8: it is recorded in the JSON result."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{flag}: the path {path!r} is not valid UTF-8; use a plain UTF-8 file name") from None
    return path


def check_output_path(path: Any, flag: str = "--output") -> str:
    """The result path must be creatable before the first cell (see ipclab.outputs.check_target; whether an
    existing file may be replaced is decided with --force, by the run command)."""
    from .outputs import check_target

    if isinstance(path, str):
        check_text_path(path, flag)
    return check_target(path, flag)
