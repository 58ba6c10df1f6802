"""Synthetic open-loop (--rate) cells for the load-view tests: the data contract of issue 14, built through the
real statistics (histograms pooled by stats.summarize_cell), deterministic figures, no processes."""

from __future__ import annotations

import random
from typing import Any

from synthetic import make_result

from ipclab import results, stats
from ipclab.histogram import Histogram

RATES = (1000.0, 10000.0, 50000.0)


def open_trial(rtt_us: float, rate: float, n: int, rng: random.Random, achieved: float) -> dict[str, Any]:
    """One open-loop trial: latency from the intended send (rtt_*), service time, schedule lag, rates."""
    service = [max(1.0, rng.gauss(rtt_us, rtt_us * 0.02)) * 1000.0 for _ in range(n)]
    lag = [rng.uniform(1_000, 5_000) for _ in range(n)]
    intended = sorted(s + g for s, g in zip(service, lag))
    hists = {"rtt": Histogram.of(round(v) for v in intended), "service": Histogram.of(round(v) for v in service),
             "lag": Histogram.of(round(v) for v in lag)}
    metrics: dict[str, Any] = {"round_trips": n, "lost": 0, "loss_pct": 0.0, "offered_msg_s": rate,
                               "achieved_msg_s": achieved, "in_flight_max": 3, "cpu_us_msg": 5.0, "ctx_msg": 2.0}
    for prefix, h in hists.items():
        metrics.update(stats.histogram_figures(h, prefix))
    return {"metrics": metrics, "histograms": {k: h.to_json() for k, h in hists.items()}}


def add_open_cells(result: dict[str, Any], base: dict[str, float], *, size: int = 64,
                   rates: tuple[float, ...] = RATES, saturate_above: float | None = None, n: int = 1000,
                   trials: int = 2, warn: bool = True, pattern: str = "pingpong") -> None:
    """Append one open-loop cell per (transport, rate): latency grows with the rate; above ``saturate_above``
    the achieved rate is 60 % of the offered one (and, with ``warn``, the cell carries the saturated warning)."""
    rng = random.Random(7)
    for name, rtt in base.items():
        for rate in rates:
            full = saturate_above is not None and rate > saturate_above
            achieved = rate * (0.6 if full else 0.999)
            slow = rtt * (1 + rate / 20000) * (20 if full else 1)
            raw = [open_trial(slow, rate, n, rng, achieved) for _ in range(trials)]
            cell_stats = stats.summarize_cell(raw)
            warnings = ([{"code": "saturated", "message": f"achieved {achieved:.0f}/s of {rate:.0f}/s offered"}]
                        if full and warn else [])
            result["cells"].append({
                "pattern": pattern, "transport": name, "size_bytes": size, "rate": rate, "status": "ok",
                "reason": None, "count": n, "duration_s": None, "warmup": 100, "placement": "same CPU (1)",
                "cpus": {"server": [1], "client": [1]},
                "trials": [{"trial": i + 1, "metrics": t["metrics"], "raw": {}, "histograms": t["histograms"]}
                           for i, t in enumerate(raw)],
                **cell_stats, "warnings": warnings,
            })


def load_result(base: dict[str, float] | None = None, *, closed: bool = True, sizes: tuple[int, ...] = (64,),
                saturate_above: float | None = 10000.0, warn: bool = True) -> dict[str, Any]:
    """A pingpong result with open-loop cells at RATES for each transport and size, plus (``closed``) the
    closed-loop cells at every size (and a stream pattern, closed loop only)."""
    base = base or {"pipe": 10.0, "tcp": 30.0}
    result = make_result(base, sizes=sizes, trials=2, n=500, patterns=("pingpong", "stream"))
    if not closed:
        result["cells"] = []
    for size in sizes:
        add_open_cells(result, base, size=size, saturate_above=saturate_above, warn=warn)
    results.validate(result)
    return result
