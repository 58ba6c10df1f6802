"""The catalogue of reportable metrics: the figures every pattern shares, plus what each pattern declares.

The shared figures (throughput, CPU and context switches per message, loss, memory) live here; a pattern's own
figures come from its ``SPEC.metrics``, its tables from ``SPEC.tables`` / ``SPEC.report_tables``. A pattern that
counts a shared figure per something other than a message (pingpong's CPU time per round trip) declares that
key again with its own words: ``metric_for(pattern, key)`` gives them to its cells. Nothing here
names a pattern: a new pattern module brings its metrics and tables with it. ``rebuild()`` refreshes the
catalogue in place (the dicts below are shared by reference) after the pattern registry changed.
"""

from __future__ import annotations

from typing import Any

from ..declarations import Metric, PatternSpec
from ..patterns import specs

__all__ = ["METRICS", "OWNERS", "PERCENTILES", "DEFAULT_TABLES", "REPORT_TABLES", "RELABELLED", "Metric", "rebuild",
           "default_metrics", "report_metrics", "list_metrics", "belongs", "format_number", "metric_for",
           "summary_basis"]

# Figures any pattern may record (each applies to the patterns whose cells record it), counted per message unless
# the pattern relabels them (RELABELLED).
SHARED: tuple[Metric, ...] = (
    Metric("mb_s", "throughput at the consumer", "MB/s", True, "message"),
    Metric("msg_s", "messages per second at the consumer", "msg/s", True, "message"),
    Metric("cpu_us_msg", "CPU time per message, all workers", "µs", False, "message"),
    Metric("ctx_msg", "context switches per message, all workers", "", False, "message"),
    Metric("faults_msg", "minor page faults per message, all workers", "", False, "message"),
    Metric("loss_pct", "messages lost", "%", False, "message"),
    Metric("rss_peak_bytes", "peak resident memory, largest worker", "bytes", False, "trial"),
)
FALLBACK_TABLES = ("msg_s", "cpu_us_msg")  # a pattern that declares no tables

METRICS: dict[str, Metric] = {}  # key -> metric: each pattern's in registry order, then the shared ones
OWNERS: dict[str, frozenset[str]] = {}  # pattern-specific key -> the patterns that declare it
PERCENTILES: dict[str, float] = {}  # key -> the percentile it is (too-few-samples advice)
DEFAULT_TABLES: dict[str, tuple[str, ...]] = {}  # pattern -> the tables `ipclab run` prints, in order
REPORT_TABLES: dict[str, tuple[str, ...]] = {}  # pattern -> the tables `ipclab report` shows by default
RELABELLED: dict[tuple[str, str], Metric] = {}  # (pattern, shared key) -> the pattern's own words for it


def rebuild(declared: list[PatternSpec] | None = None) -> None:
    """Fill the catalogue from the shared figures and every pattern's declaration (default: the registry)."""
    declared = specs() if declared is None else declared
    shared = {m.key: m for m in SHARED}
    metrics: dict[str, Metric] = {}
    owners: dict[str, set[str]] = {}
    relabelled: dict[tuple[str, str], Metric] = {}
    for spec in declared:
        for metric in spec.metrics:
            if metric.key in shared:
                relabelled[(spec.name, metric.key)] = metric
            else:
                metrics.setdefault(metric.key, metric)  # two patterns declaring one key: the first one's words
                owners.setdefault(metric.key, set()).add(spec.name)
    metrics.update(shared)
    # In place: modules that imported these dicts see the new catalogue.
    METRICS.clear()
    METRICS.update(metrics)
    OWNERS.clear()
    OWNERS.update({k: frozenset(v) for k, v in owners.items()})
    PERCENTILES.clear()
    PERCENTILES.update({k: m.percentile for k, m in metrics.items() if m.percentile is not None})
    DEFAULT_TABLES.clear()
    DEFAULT_TABLES.update({s.name: s.tables or FALLBACK_TABLES for s in declared})
    REPORT_TABLES.clear()
    REPORT_TABLES.update({s.name: s.report_tables or s.tables or FALLBACK_TABLES for s in declared})
    RELABELLED.clear()
    RELABELLED.update(relabelled)


def metric_for(pattern: str, key: str) -> Metric:
    """The metric as ``pattern``'s cells count it: its own declaration of a shared key (pingpong's msg_s is per
    round trip), else the catalogue's. KeyError for an unknown key, like METRICS[key]."""
    return RELABELLED.get((pattern, key)) or METRICS[key]


def summary_basis(cell: dict[str, Any], key: str) -> str:
    """How a cell's summary figure was made: "pooled" (from the pooled samples of all trials: percentiles, mean,
    max of a latency distribution), "median" (median across trials, with cell["range"] beside it), or
    "median of per-trial figures" (a latency figure of a file written before pooling: read it as such)."""
    pooled = cell.get("pooled")
    if isinstance(pooled, dict) and any(key in (p.get("keys") or ()) for p in pooled.values()
                                        if isinstance(p, dict)):
        return "pooled"
    if PERCENTILES.get(key) is not None or key.endswith(("_max_us", "_mean_us", "_min_us", "_stdev_us")):
        return "median of per-trial figures"
    return "median"


def belongs(pattern: str, key: str) -> bool:
    """May ``pattern``'s cells show ``key``? Shared figures: any pattern; declared ones: their patterns only."""
    owners = OWNERS.get(key)
    return owners is None or pattern in owners


def default_metrics(pattern: str) -> tuple[str, ...]:
    return DEFAULT_TABLES.get(pattern, FALLBACK_TABLES)


def report_metrics(pattern: str) -> tuple[str, ...]:
    return REPORT_TABLES.get(pattern, FALLBACK_TABLES)


def format_number(value: float | None) -> str:
    """Rounded for a human: 3 significant digits, no scientific notation for table-sized numbers."""
    if value is None:
        return ""
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 100:
        return f"{value:,.0f}".replace(",", "\u2009") if a >= 100000 else f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    if a >= 0.001:
        return f"{value:.3g}"
    return f"{value:.2e}"


def list_metrics() -> str:
    """Every metric of the catalogue, one line each: key, unit, which way is better, what one unit counts, and
    its meaning; under a shared key, how each pattern that counts it otherwise words it (``ipclab report
    --list-metrics``)."""
    rows = [("metric", "unit", "better", "per", "meaning")]
    for key, m in METRICS.items():
        rows.append((key, m.unit or "-", "higher" if m.higher_is_better else "lower", m.per or "-", m.title))
        for (pattern, shared), own in RELABELLED.items():
            if shared == key:
                rows.append(("", own.unit or "-", "higher" if own.higher_is_better else "lower", own.per or "-",
                             f"{pattern}: {own.title}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join([*(r[i].ljust(widths[i]) for i in range(4)), r[4]]).rstrip() for r in rows]
    tail = "\nDefault of `ipclab report` (no --metric): each pattern's report tables.\n"
    return "\n".join(lines) + "\n" + tail


rebuild()
