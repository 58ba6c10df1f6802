"""What a pattern module defines, and the helpers its declaration uses (options validated by the pattern itself).

A pattern is one module of ``ipclab.patterns`` with:

    SPEC: PatternSpec                       the declaration everything outside ``patterns/`` reads
    ORDER: int                              optional: where it is listed (built-ins 10..50; default last)
    LABELS: dict[str, str]                  role -> human name (the same dict as SPEC.labels)
    roles(options) -> [(role, index)]       the workers to start, "server" first (options: the pattern's own)
    run(role, index, channel, ctx) -> dict  in the worker: raw figures, JSON-able
    metrics(raw_by_role, ctx) -> dict       in the parent, pure: the per-trial figures; a latency distribution's
                                            histogram goes under loops.HISTOGRAMS ({prefix: histogram JSON}),
                                            which the sweep stores beside the figures and pools across trials
and optionally
    not_applicable(transport_cls, size, options) -> str | None
        pattern-level n/a, asked after the transport's own check. What a transport can carry (several writers,
        dialling, duplex) is the transport's to decide from ``SPEC.shape``; this is for the pattern's own limits
        (fan-in's 16-byte tag, an empty reply).

``options`` is a dict of the pattern options by name (older callers pass the client count as an int: patterns
must not rely on it being a dict unless they declare options).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import stats
from ..declarations import Metric, PatternOption, Per
from .common import HEADER_SIZE, Context


def parse_int(value: Any, flag: str, low: int, high: int, what: str) -> int:
    """A whole number in low..high from a CLI string or a TOML value; the built-in options' wording (config.whole)."""
    from ..config import whole

    return whole(value, flag, low, high, what)


def int_option(name: str, help: str, default: int, low: int, high: int, what: str,
               metavar: str = "N") -> PatternOption:
    """A whole-number option declared once: flag ``--name``, TOML key ``name``, range ``low..high``."""

    def parse(value: Any, flag: str) -> int:
        return parse_int(value, flag, low, high, what)

    return PatternOption(name=name, help=help, default=default, parse=parse, metavar=metavar)


TITLES = {"stdev": "standard deviation"}  # summary names spelled out in a metric's title


def latency_metrics(prefix: str, what: str, per: Per,
                    names: tuple[str, ...] = stats.LATENCY_NAMES) -> tuple[Metric, ...]:
    """The declared µs figures (lower is better) of a timed distribution: for each summary name ("p50", "max",
    "p99.9"...; default all of stats.LATENCY_NAMES, which loops.latency_figures records per trial and the cell
    summary pools) the key ``{prefix}_{name}_us``, titled "{what}, {name}"; a percentile carries its number."""
    return tuple(Metric(stats.latency_key(prefix, name), f"{what}, {TITLES.get(name, name)}", "µs", False,
                        per, float(name[1:]) if name.startswith("p") else None) for name in names)


def counted_per(per: Per, plural: str, *, rate: str | None = None, loss: bool = True,
                detail: str = "") -> tuple[Metric, ...]:
    """The shared figures (CPU time, context switches, rate, loss) relabelled for a pattern that counts them per
    ``per`` (a round trip, a request, a connection) instead of per message: the catalogue shows the pattern's
    cells with these words. ``rate``: the msg_s title when the pattern records one (e.g. "round trips per
    second"); ``detail``: what one ``per`` is made of, said in the CPU title (e.g. "2 messages")."""
    what = f"{per} ({detail})" if detail else per
    out = [Metric("cpu_us_msg", f"CPU time per {what}, all workers", "µs", False, per),
           Metric("ctx_msg", f"context switches per {per}, all workers", "", False, per),
           Metric("faults_msg", f"minor page faults per {per}, all workers", "", False, per)]
    if rate:
        out.append(Metric("msg_s", rate, f"{plural}/s", True, per))
    if loss:
        out.append(Metric("loss_pct", f"{plural} lost", "%", False, per))
    return tuple(out)


def option(ctx_options: dict[str, Any], spec_option: PatternOption) -> Any:
    """The value a worker got for an option, or its declared default (a config from an older runner)."""
    return ctx_options.get(spec_option.name, spec_option.default)


def pair_roles(options: dict[str, Any]) -> list[tuple[str, int]]:
    """One server and one client (every pattern whose workers do not depend on its options)."""
    return [("server", 0), ("client", 0)]


Side = Callable[[Any, Context], dict[str, Any]]


def by_role(server: Side, client: Side) -> Callable[[str, int, Any, Context], dict[str, Any]]:
    """A pattern's ``run`` for one server and one client: the worker's role picks the side (once per trial)."""

    def run(role: str, index: int, channel: Any, ctx: Context) -> dict[str, Any]:
        return server(channel, ctx) if role == "server" else client(channel, ctx)

    return run


def needs_header(size: int, what: str) -> str | None:
    """n/a below the 16-byte header when the pattern keeps ``what`` there (e.g. "fan-in tags ... producer")."""
    if size < HEADER_SIZE:
        return f"{what} in the {HEADER_SIZE}-byte header; use {HEADER_SIZE} B or more"
    return None
