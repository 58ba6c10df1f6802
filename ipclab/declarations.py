"""Declared data shared by patterns, transports, the engine and the reports: no behaviour, no pattern names.

A pattern module declares ``SPEC = PatternSpec(...)``; everything outside ``ipclab/patterns`` reads these
declarations instead of naming a pattern:

- transports see only a :class:`TrafficShape` (one-way or duplex, one or many writers, messages in flight,
  a connection per iteration), never the pattern's name;
- the engine reads ``count_class`` (how many iterations a trial gets by default), ``headline`` (the figure whose
  spread across trials is checked) and ``shape`` (placement: a writer that never waits may overrun a reader);
- the reports read ``metrics`` (key, unit, label, which way is better, what one sample counts) and ``tables``
  (the tables ``run`` prints, in order);
- the option table reads ``options`` (a pattern's own flags and TOML keys, e.g. ``--clients``);
- the sweep reads ``paced`` (what --rate puts on a schedule, or None: no open-loop cells for this pattern).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

CountClass = Literal["round_trip", "bulk"]  # one exchange at a time, or messages as fast as they go
Per = Literal["message", "round trip", "request", "connection", "batch", "trial", ""]


@dataclass(frozen=True)
class TrafficShape:
    """What a transport must carry for a pattern, stated without naming the pattern.

    duplex: the server answers the client (a server->client direction is needed).
    many_writers: several clients write to one server at once (fan-in): the transport must be multi-writer.
    in_flight: messages a writer may have outstanding; None = unbounded (a stream that never waits for its reader).
    dials: the client opens a new connection per iteration (the transport must be able to dial).
    """

    duplex: bool
    many_writers: bool = False
    in_flight: int | None = 1
    dials: bool = False

    @property
    def unbounded(self) -> bool:
        """A writer that never waits for its reader: without back-pressure it can overrun it."""
        return self.in_flight is None


@dataclass(frozen=True)
class Metric:
    """One reportable figure. ``per`` says what one sample or one unit counts (per message, per round trip...)."""

    key: str
    title: str  # what was measured, as a table header says it
    unit: str
    higher_is_better: bool
    per: Per = ""
    percentile: float | None = None  # the percentile this figure is, if it is one (too-few-samples warnings)

    def heading(self) -> str:
        better = "higher is better" if self.higher_is_better else "lower is better"
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.title}{unit}, {better}"


@dataclass(frozen=True)
class PatternOption:
    """A pattern's own run option: one declaration gives the CLI flag, the TOML key, validation and the config.

    ``parse(value, flag)`` turns a CLI string or TOML value into the value sent to the workers; it raises
    ConfigError naming ``flag``, the value and the limit.
    """

    name: str  # config key and TOML key; the CLI flag is --name with "_" as "-"
    help: str
    default: Any
    parse: Callable[[Any, str], Any]
    metavar: str = "N"


@dataclass(frozen=True)
class PatternSpec:
    """Everything outside ``ipclab/patterns`` may know about a pattern."""

    name: str
    summary: str  # one line for --help and ``ipclab list``
    shape: TrafficShape
    headline: str  # metric key of the first table
    count_class: CountClass
    labels: dict[str, str]  # role -> human name ("server" -> "consumer")
    metrics: tuple[Metric, ...]  # pattern-specific figures (shared ones live in ipclab.report.metrics)
    tables: tuple[str, ...]  # the tables ``run`` prints, in order
    sample_key: str | None = None  # raw/figure key counting the latency samples of a trial
    quantiles_key: str | None = None  # figure key holding the stored latency distribution (plots)
    distribution: str = ""  # what that distribution measures ("round-trip latency")
    options: tuple[PatternOption, ...] = field(default_factory=tuple)
    default_run: bool = False  # part of a plain ``ipclab run`` (no --pattern)
    report_tables: tuple[str, ...] = ()  # the tables ``report`` shows by default; () = ``tables``
    # What --rate paces (one unit per 1/R s: "request", "round trip", "message"); None = the pattern has nothing
    # to put on a schedule and runs closed-loop only (see ipclab.engine.sweep for a mixed selection).
    paced: Per | None = None
