"""The typed result model behind the versioned JSON: Result -> Cell -> Trial, and Warning {code, message}.

``Result.from_dict(d)`` validates every field a command reads (types, finite numbers, a known format version,
warnings as strings (format 1) or ``{code, message}`` objects (format 2)) and raises one-line ConfigErrors;
``to_dict()`` writes it back. A record remembers which keys its source had and keeps keys it does not know, so
``Result.from_dict(d).to_dict() == d`` for any valid ``d``: an old file is written back as it was read.

Format versions: 1 warnings are strings; 2 a warning may be an object ``{"code": ..., "message": ...}``
(strings stay readable). Units are in key names (_ns, _us, _s, _bytes; mb_s = 10**6 bytes/s).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ConfigError

FORMAT = "ipclab-result"
FORMAT_VERSION = 2
STATUSES = ("ok", "n/a", "failed")

Number = int | float
Figure = int | float | list[Number] | None  # a per-trial figure: a number, a distribution, or not measured


class Invalid(ConfigError):
    """A result that is not usable: the message says where and what (one line)."""


# No figure ipclab records comes near 1e18 (nanoseconds in 31 years); beyond it a number is hostile or corrupt,
# and a 400-digit integer would overflow float() in compare, the plots and the HTML report.
MAX_MAGNITUDE = 10**18


def _number(value: Any) -> bool:
    """A finite JSON number that every reader can turn into a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= MAX_MAGNITUDE if isinstance(value, int) else math.isfinite(value) and \
        abs(value) <= MAX_MAGNITUDE


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_MAGNITUDE


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{what} is not an object")
    return value


def _optional(value: Any, kinds: tuple[type, ...], what: str) -> Any:
    if value is not None and (isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds)):
        raise Invalid(f"{what} is not {' or '.join(k.__name__ for k in kinds)}")
    return value


def _figures(data: Any, what: str, *, lists: bool, nulls: bool = True) -> dict[str, Any]:
    """A {name: number | None} object (with ``lists``: or a list of numbers): exporters do arithmetic on these.

    A stored distribution (a key naming ``quantiles``) is a list of numbers (plots take its length); without
    ``nulls`` a figure must be a number (spreads are compared with thresholds).

    ``missing`` ({figure: why it is empty}) says why a figure a table expects could not be measured in a trial.
    """
    for name, value in _object(data, what).items():
        if name == "missing" and lists:
            if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                raise Invalid(f"{what} 'missing' is not an object of reasons")
            continue
        is_list = lists and isinstance(value, list) and all(map(_number, value))
        if lists and "quantiles" in name and value is not None and not is_list:
            raise Invalid(f"{what} {name!r} is not a list of numbers")
        if not (value is None and nulls or _number(value) or is_list):
            raise Invalid(f"{what} {name!r} is not a number")
    return data


@dataclass(frozen=True)
class Warning:  # noqa: A001 - the result's own warning record, as the JSON calls it
    """One piece of advice: ``code`` names the kind (None: a plain string from an older file)."""

    message: str
    code: str | None = None

    @classmethod
    def from_json(cls, value: Any, what: str = "warning") -> Warning:
        if isinstance(value, str):
            return cls(value)
        if (isinstance(value, dict) and set(value) == {"code", "message"} and isinstance(value["code"], str)
                and isinstance(value["message"], str)):
            return cls(value["message"], value["code"])
        raise Invalid(f"{what} is neither a string nor {{code, message}}")

    def to_json(self) -> str | dict[str, str]:
        return self.message if self.code is None else {"code": self.code, "message": self.message}


def warning_message(value: Any) -> str:
    """The text of a warning as stored: a string (format 1) or {code, message} (format 2)."""
    return Warning.from_json(value).message


class _Record:
    """Writes back the keys its source had (in order), plus any other field once it holds something."""

    _keys: tuple[str, ...]
    extra: dict[str, Any]

    def _json(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        full = {**self._json(), **self.extra}
        if not self._keys:
            return full
        defaults = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
                    for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        later = [k for k in full if k not in self._keys and full[k] != defaults.get(k)]
        return {k: full[k] for k in [*self._keys, *later] if k in full}


def _extra(data: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


def _histograms(data: Any, what: str) -> dict[str, Any]:
    """{distribution prefix: histogram JSON} (ipclab.histogram): each must read back as a histogram."""
    from .histogram import Histogram

    for prefix, value in _object(data, what).items():
        try:
            Histogram.from_json(value)
        except ValueError as exc:
            raise Invalid(f"{what} {prefix!r}: {exc}") from None
    return data


def _ranges(data: Any, what: str) -> dict[str, Any]:
    """{figure: [min, max]} across trials."""
    for name, value in _object(data, what).items():
        if not (isinstance(value, list) and len(value) == 2 and all(map(_number, value)) and value[0] <= value[1]):
            raise Invalid(f"{what} {name!r} is not a [min, max] pair of numbers")
    return data


def _pooled(data: Any, what: str) -> dict[str, Any]:
    """{prefix: {"samples": N, "trials": k, "keys": [summary keys], "quantiles_ns": [numbers]}}."""
    for prefix, value in _object(data, what).items():
        entry = _object(value, f"{what} {prefix!r}")
        ok = (all(isinstance(entry.get(k), int) and not isinstance(entry[k], bool) and entry[k] >= 0
                  for k in ("samples", "trials"))
              and isinstance(entry.get("keys"), list) and all(isinstance(k, str) for k in entry["keys"])
              and isinstance(entry.get("quantiles_ns"), list) and all(map(_number, entry["quantiles_ns"])))
        if not ok:
            raise Invalid(f"{what} {prefix!r} is not {{samples, trials, keys, quantiles_ns}}")
    return data


@dataclass
class Trial(_Record):
    """One trial of a cell: its figures, the workers' raw records (role -> object) and the histograms of its
    latency distributions (prefix -> ipclab.histogram JSON; absent in files written before them)."""

    trial: int
    metrics: dict[str, Figure] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    histograms: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    _keys: tuple[str, ...] = field(default=(), compare=False, repr=False)
    KNOWN: ClassVar[tuple[str, ...]] = ("trial", "metrics", "raw", "histograms")

    @classmethod
    def from_dict(cls, data: Any, what: str = "trial") -> Trial:
        data = _object(data, what)
        number = data.get("trial", 0)
        if not _integer(number):
            raise Invalid(f"{what} has no valid 'trial'")
        return cls(number, _figures(data.get("metrics", {}), f"{what} metrics", lists=True),
                   _object(data.get("raw", {}), f"{what} raw"),
                   _histograms(data.get("histograms", {}), f"{what} histograms"), _extra(data, cls.KNOWN),
                   tuple(data))

    def _json(self) -> dict[str, Any]:
        out = {"trial": self.trial, "metrics": self.metrics, "raw": self.raw, "histograms": self.histograms}
        if not self.histograms and not self._keys:  # written only by trials that kept one (as the engine does)
            del out["histograms"]
        return out


@dataclass
class Cell(_Record):
    """One pattern x transport x size: status ok | n/a | failed, its trials, their summary and its warnings."""

    pattern: str
    transport: str
    size_bytes: int
    status: str = "ok"
    reason: str | None = None
    count: int | None = None
    duration_s: float | None = None
    warmup: int | None = None
    placement: str | None = None
    cpus: dict[str, list[int] | None] | None = None
    trials: list[Trial] = field(default_factory=list)
    summary: dict[str, float | None] = field(default_factory=dict)  # median over trials; latency: pooled samples
    spread: dict[str, float | None] = field(default_factory=dict)  # (max-min)/median over trials
    range: dict[str, list[Number]] = field(default_factory=dict)  # [min, max] over trials of each per-trial figure
    pooled: dict[str, Any] = field(default_factory=dict)  # prefix -> what was pooled (stats.summarize_cell)
    warnings: list[Warning] = field(default_factory=list)
    traceback: str | None = None  # a failed worker's, when it sent one
    rate: float | None = None  # offered messages per second of an open-loop cell (--rate); absent = closed loop
    extra: dict[str, Any] = field(default_factory=dict)
    _keys: tuple[str, ...] = field(default=(), compare=False, repr=False)
    KNOWN: ClassVar[tuple[str, ...]] = ("pattern", "transport", "size_bytes", "status", "reason", "count",
                                        "duration_s", "warmup", "placement", "cpus", "trials", "summary", "spread",
                                        "range", "pooled", "warnings", "traceback", "rate")

    @classmethod
    def from_dict(cls, data: Any, what: str = "cell") -> Cell:
        data = _object(data, what)
        for key, kind in (("pattern", str), ("transport", str), ("size_bytes", int), ("status", str)):
            value = data.get(key)
            if not isinstance(value, kind) or isinstance(value, bool) or kind is int and not _integer(value):
                raise Invalid(f"{what} has no valid {key!r}")
        if data["size_bytes"] < 0:
            raise Invalid(f"{what} has a negative size_bytes")
        if data["status"] not in STATUSES:
            raise Invalid(f"{what} has status {data['status']!r}; known: {', '.join(STATUSES)}")
        for key in ("reason", "placement", "traceback"):  # printed and used as dictionary keys by the exporters
            _optional(data.get(key), (str,), f"{what} {key!r}")
        for key in ("count", "warmup"):
            if data.get(key) is not None and not _integer(data[key]):
                raise Invalid(f"{what} {key!r} is not int")
        if data.get("duration_s") is not None and not _number(data["duration_s"]):
            raise Invalid(f"{what} 'duration_s' is not a number")
        rate = data.get("rate")
        if rate is not None and not (_number(rate) and rate > 0):
            raise Invalid(f"{what} 'rate' is not a positive number of messages per second")
        cpus = data.get("cpus")
        if cpus is not None and not (isinstance(cpus, dict) and all(
                v is None or isinstance(v, list) and all(map(_integer, v)) for v in cpus.values())):
            raise Invalid(f"{what} 'cpus' is not an object of CPU lists")
        trials = data.get("trials", [])
        warnings = data.get("warnings", [])
        if not isinstance(trials, list) or not isinstance(warnings, list):
            raise Invalid(f"{what} has malformed trials or warnings")
        return cls(
            data["pattern"], data["transport"], data["size_bytes"], data["status"], data.get("reason"),
            data.get("count"), data.get("duration_s"), data.get("warmup"), data.get("placement"), cpus,
            [Trial.from_dict(t, f"{what} trial {j}") for j, t in enumerate(trials)],
            _figures(data.get("summary", {}), f"{what} summary", lists=False),
            _figures(data.get("spread", {}), f"{what} spread", lists=False, nulls=False),
            _ranges(data.get("range", {}), f"{what} range"), _pooled(data.get("pooled", {}), f"{what} pooled"),
            [Warning.from_json(w, f"{what} warning {j}") for j, w in enumerate(warnings)],
            data.get("traceback"), rate, _extra(data, cls.KNOWN), tuple(data))

    def _json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.KNOWN}
        out["trials"] = [t.to_dict() for t in self.trials]
        out["warnings"] = [w.to_json() for w in self.warnings]
        if self.traceback is None and not self._keys:  # written only by failed cells that have one
            del out["traceback"]
        if not self.pooled and not self._keys:  # written only by cells whose trials kept histograms
            del out["pooled"]
        if self.rate is None and not self._keys:  # written only by open-loop cells: closed ones look as before
            del out["rate"]
        return out


@dataclass
class Result(_Record):
    """A whole sweep: machine metadata, the config it ran (RunConfig.to_dict()) and its cells, in order."""

    format_version: int = FORMAT_VERSION
    created: str | None = None
    finished: str | None = None
    interrupted: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)  # probes.sysinfo()
    config: dict[str, Any] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    _keys: tuple[str, ...] = field(default=(), compare=False, repr=False)
    KNOWN: ClassVar[tuple[str, ...]] = ("format", "format_version", "created", "finished", "interrupted", "metadata",
                                        "config", "cells")

    @classmethod
    def from_dict(cls, data: Any, where: str = "<result>") -> Result:
        """Validate and type a result; ConfigError ``'PATH' is not a usable ipclab result: WHAT`` if it is not."""
        try:
            return cls._from_dict(data)
        except Invalid as exc:
            raise ConfigError(f"{where!r} is not a usable ipclab result: {exc}") from None

    @classmethod
    def _from_dict(cls, data: Any) -> Result:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise Invalid(f"missing \"format\": \"{FORMAT}\"")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise Invalid("missing format_version")
        if version < 1:
            raise Invalid(f"format_version {version} is not one this ipclab knows (1 to {FORMAT_VERSION})")
        if version > FORMAT_VERSION:
            raise Invalid(f"format_version {version} is newer than this ipclab understands ({FORMAT_VERSION}); "
                          "upgrade ipclab")
        if not isinstance(data.get("cells"), list):
            raise Invalid("\"cells\" is not a list")
        for key in ("created", "finished"):
            _optional(data.get(key), (str,), repr(key))
        if not isinstance(data.get("interrupted", False), bool):
            raise Invalid("'interrupted' is not true or false")
        metadata = _object(data.get("metadata", {}), "metadata")
        _check_metadata(metadata)
        config = _object(data.get("config", {}), "config")
        _check_config(config)
        cells = [Cell.from_dict(c, f"cell {i}") for i, c in enumerate(data["cells"])]
        return cls(version, data.get("created"), data.get("finished"), data.get("interrupted", False), metadata,
                   config, cells, _extra(data, cls.KNOWN), tuple(data))

    def _json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": self.format_version, "created": self.created,
                "finished": self.finished, "interrupted": self.interrupted, "metadata": self.metadata,
                "config": self.config, "cells": [c.to_dict() for c in self.cells]}


# Metadata the reports print or count: text fields, and the CPU figures (len() of the affinity list).
META_TEXT = ("ipclab_version", "python_version", "python_implementation", "os", "kernel", "machine", "cpu_model",
             "virtualization", "clocksource")


def _check_metadata(meta: Mapping[str, Any]) -> None:
    for key in META_TEXT:
        _optional(meta.get(key), (str,), f"metadata {key!r}")
    affinity = meta.get("cpu_affinity")
    if affinity is not None and not (isinstance(affinity, list) and all(map(_integer, affinity))):
        raise Invalid("metadata 'cpu_affinity' is not a list of CPU numbers")
    if meta.get("cpu_count") is not None and not _integer(meta["cpu_count"]):
        raise Invalid("metadata 'cpu_count' is not int")
    load = meta.get("load_average")
    if load is not None and not (isinstance(load, list) and all(map(_number, load))):
        raise Invalid("metadata 'load_average' is not a list of numbers")


def _check_config(config: Mapping[str, Any]) -> None:
    """The config keys the reports read: trials (a count), the swept lists, pin and the experiment notes."""
    if config.get("trials") is not None and not _integer(config["trials"]):
        raise Invalid("config 'trials' is not int")
    for key, kind in (("transports", str), ("patterns", str), ("sizes", int)):
        items = config.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, kind) and not isinstance(i, bool)
                                                  and (kind is str or _integer(i)) for i in items):
            raise Invalid(f"config {key!r} is not a list of {kind.__name__}")
    for key in ("pin", "experiment", "output"):
        _optional(config.get(key), (str,), f"config {key!r}")
    description = _object(config.get("extra") or {}, "config 'extra'").get("description")
    _optional(description, (str,), "config description")
