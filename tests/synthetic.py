"""Synthetic result files for report/compare tests: deterministic figures, same schema as real runs."""

from __future__ import annotations

import copy
import random
from typing import Any

from ipclab import results, stats
from ipclab.stats import summarize_trials

METADATA = {
    "ipclab_version": "0.1.0", "python_version": "3.11.7", "python_implementation": "CPython",
    "kernel": "6.1.0-test", "machine": "x86_64", "cpu_model": "Test CPU", "cpu_count": 4,
    "cpu_affinity": [0, 1, 2, 3], "virtualization": None, "clocksource": "tsc",
}


def pingpong_trial(rtt_us: float, n: int, rng: random.Random, noise: float) -> dict[str, Any]:
    samples = sorted(max(1.0, rng.gauss(rtt_us, rtt_us * noise)) * 1000.0 for _ in range(n))
    s = stats.summarize(samples)
    return {"round_trips": n, "lost": 0, "loss_pct": 0.0, "rtt_p50_us": s["p50"] / 1000, "rtt_p99_us": s["p99"] / 1000,
            "rtt_mean_us": s["mean"] / 1000, "msg_s": 1e9 / s["mean"], "cpu_us_msg": rtt_us * 1.1, "ctx_msg": 2.0,
            "rtt_quantiles_ns": [round(v) for v in stats.quantiles(samples)]}


def stream_trial(mb_s: float, size: int, rng: random.Random, noise: float) -> dict[str, Any]:
    mb = mb_s * (1 + rng.uniform(-noise, noise))
    msg_s = mb * 1e6 / size
    # One-way latency as noisy as the throughput: a quiet result has quiet trials in every figure.
    lat = sorted(rng.uniform(5_000, 50_000) * (1 + noise) for _ in range(2000))
    return {"sent": 20000, "received": 20000, "lost": 0, "loss_pct": 0.0, "mb_s": mb, "msg_s": msg_s,
            "owl_p50_us": stats.percentile(lat, 50) / 1000, "cpu_us_msg": 2.0, "ctx_msg": 0.5,
            "owl_quantiles_ns": [round(v) for v in stats.quantiles(lat)]}


def make_result(base: dict[str, float] | None = None, *, sizes: tuple[int, ...] = (64, 4096), trials: int = 5,
                n: int = 2000, noise: float = 0.01, seed: int = 1, factor: float = 1.0,
                patterns: tuple[str, ...] = ("pingpong", "stream"), metadata: dict[str, Any] | None = None,
                placement: str = "same CPU (1)") -> dict[str, Any]:
    """A valid result: base round trip (us) per transport, scaled by ``factor`` (2.0 = twice as slow)."""
    base = base or {"pipe": 10.0, "unix": 18.0, "udp": 23.0}
    rng = random.Random(seed)
    cells = []
    for pattern in patterns:
        for name, rtt in base.items():
            for size in sizes:
                figures = []
                for _ in range(trials):
                    if pattern == "pingpong":
                        figures.append(pingpong_trial(rtt * factor * (1 + size / 65536), n, rng, noise))
                    else:
                        figures.append(stream_trial(1000.0 / rtt / factor * size / 64, size, rng, noise))
                summary, spread = summarize_trials(figures)
                cells.append({
                    "pattern": pattern, "transport": name, "size_bytes": size, "status": "ok", "reason": None,
                    "count": n, "duration_s": None, "warmup": 100, "placement": placement,
                    "cpus": {"server": [1], "client": [1]},
                    "trials": [{"trial": i + 1, "metrics": m, "raw": {}} for i, m in enumerate(figures)],
                    "summary": summary, "spread": spread, "warnings": [],
                })
    result = {
        "format": results.FORMAT, "format_version": results.FORMAT_VERSION, "created": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:00+00:00", "interrupted": False,
        "metadata": copy.deepcopy(metadata if metadata is not None else METADATA),
        "config": {"transports": list(base), "patterns": list(patterns), "sizes": list(sizes), "count": n,
                   "duration": None, "warmup": 100, "trials": trials, "seed": 1, "timeout": 60.0, "pin": "auto",
                   "verify": False, "clients": 1, "output": None, "experiment": None, "extra": {}},
        "cells": cells,
    }
    results.validate(result)
    return result


def add_na_cell(result: dict[str, Any], transport: str, size: int, reason: str) -> None:
    result["cells"].append({"pattern": "pingpong", "transport": transport, "size_bytes": size, "status": "n/a",
                            "reason": reason, "trials": [], "summary": {}, "spread": {}, "warnings": []})
