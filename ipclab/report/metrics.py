"""The catalogue of reportable metrics: what was timed, its unit, and which way is better."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str
    title: str  # what was measured, as a table header says it
    unit: str
    higher_is_better: bool
    patterns: tuple[str, ...] | None = None  # None: any pattern that records it

    def heading(self) -> str:
        better = "higher is better" if self.higher_is_better else "lower is better"
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.title}{unit}, {better}"


_PP = ("pingpong",)
_ST = ("stream",)
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("rtt_min_us", "round trip, min", "µs", False, _PP),
    Metric("rtt_p50_us", "round trip, p50", "µs", False, _PP),
    Metric("rtt_mean_us", "round trip, mean", "µs", False, _PP),
    Metric("rtt_p90_us", "round trip, p90", "µs", False, _PP),
    Metric("rtt_p99_us", "round trip, p99", "µs", False, _PP),
    Metric("rtt_p999_us", "round trip, p99.9", "µs", False, _PP),
    Metric("rtt_max_us", "round trip, max", "µs", False, _PP),
    Metric("rtt_stdev_us", "round trip, standard deviation", "µs", False, _PP),
    Metric("mb_s", "throughput at the consumer", "MB/s", True),
    Metric("msg_s", "messages per second", "msg/s", True),
    Metric("owl_p50_us", "one-way latency under load, p50", "µs", False, _ST),
    Metric("owl_p99_us", "one-way latency under load, p99", "µs", False, _ST),
    Metric("owl_max_us", "one-way latency under load, max", "µs", False, _ST),
    Metric("cpu_us_msg", "CPU time per message, all workers", "µs", False),
    Metric("ctx_msg", "context switches per message, all workers", "", False),
    Metric("loss_pct", "messages lost", "%", False),
    Metric("ttlb_p50_us", "request to last reply byte, p50", "µs", False, ("reqrep",)),
    Metric("ttlb_p99_us", "request to last reply byte, p99", "µs", False, ("reqrep",)),
    Metric("fair_jain", "fairness across producers (Jain, 1 = equal)", "", True, ("fanin",)),
    Metric("share_min_pct", "smallest producer's share of messages", "%", True, ("fanin",)),
    Metric("conn_p50_us", "connect + message + close, p50", "µs", False, ("connect",)),
    Metric("conn_p99_us", "connect + message + close, p99", "µs", False, ("connect",)),
    Metric("conn_s", "connections per second", "conn/s", True, ("connect",)),
    Metric("rss_peak_bytes", "peak resident memory, largest worker", "bytes", False),
)}

# Which percentile a metric shows, so a report can say when a trial had too few samples for it.
PERCENTILES: dict[str, float] = {"rtt_p50_us": 50.0, "rtt_p90_us": 90.0, "rtt_p99_us": 99.0, "rtt_p999_us": 99.9,
                                 "owl_p50_us": 50.0, "owl_p99_us": 99.0, "ttlb_p50_us": 50.0, "ttlb_p99_us": 99.0,
                                 "conn_p50_us": 50.0, "conn_p99_us": 99.0}

# The tables `ipclab run` prints, per pattern, in order.
DEFAULT_TABLES: dict[str, tuple[str, ...]] = {
    "pingpong": ("rtt_p50_us", "rtt_p99_us", "cpu_us_msg"),
    "stream": ("mb_s", "msg_s", "cpu_us_msg"),
    "reqrep": ("ttlb_p50_us", "ttlb_p99_us", "mb_s", "cpu_us_msg"),
    "fanin": ("mb_s", "fair_jain", "share_min_pct", "cpu_us_msg"),
    "connect": ("conn_p50_us", "conn_p99_us", "cpu_us_msg"),
}


def default_metrics(pattern: str) -> tuple[str, ...]:
    return DEFAULT_TABLES.get(pattern, ("msg_s", "cpu_us_msg"))


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
