"""Statistics as pure functions over sequences of numbers: percentiles, spread, summaries.

No clocks, no I/O: everything here is tested deterministically. A cell's summary (``summarize_cell``) takes
per-trial figures (throughput, medians...) as the median across trials with their range, and every latency
distribution's percentiles, mean, max and standard deviation from the pooled samples of all trials (their
merged histograms, ipclab.histogram), never as a median of per-trial percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .histogram import Histogram

# Probabilities stored with every latency distribution: enough for a CDF plot and the usual tail percentiles.
QUANTILE_POINTS: tuple[float, ...] = tuple(float(p) for p in range(0, 100)) + (99.5, 99.9, 99.99, 100.0)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear-interpolation percentile (numpy's default) of already sorted values; p in [0, 100]."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {p} outside 0..100")
    rank = (n - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of no values")
    return percentile(ordered, 50.0)


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n-1); 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation (unscaled)."""
    m = median(values)
    return median(abs(v - m) for v in values)


def relative_spread(values: Sequence[float]) -> float:
    """(max - min) / median across trials: 0.12 means the trials disagree by 12 % of the median."""
    if len(values) < 2:
        return 0.0
    m = median(values)
    if m == 0:
        return 0.0
    return (max(values) - min(values)) / abs(m)


def min_samples_for(p: float) -> int:
    """Samples needed before percentile p means anything: at least 10 beyond the tail (p99.9 -> 10000)."""
    if p >= 100.0:
        return 1
    return math.ceil(round(10.0 / (1.0 - p / 100.0), 6))  # round: 1 - 0.999 is not exact in binary


def summarize(values: Sequence[float]) -> dict[str, float]:
    """count, mean, min, p50, p75, p90, p95, p99, p99.9, max, stdev of a latency sample (any unit)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "mean": mean(ordered),
        "min": ordered[0],
        "p50": percentile(ordered, 50),
        "p75": percentile(ordered, 75),
        "p90": percentile(ordered, 90),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "p99.9": percentile(ordered, 99.9),
        "max": ordered[-1],
        "stdev": stdev(ordered),
    }


def quantiles(sorted_values: Sequence[float], points: Sequence[float] = QUANTILE_POINTS) -> list[float]:
    """The values at each probability in ``points`` (for CDFs and for re-reading percentiles later)."""
    if not sorted_values:
        return []
    return [percentile(sorted_values, p) for p in points]


def summarize_trials(trials: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Median across trials of every numeric figure, and each figure's relative spread (max-min)/median.

    Every figure any trial recorded counts (a first trial that lost every datagram has no latency figures);
    non-numeric figures (lists, dicts, booleans, None) are not summarised.
    """
    summary: dict[str, float] = {}
    spread: dict[str, float] = {}
    keys = list(dict.fromkeys(k for t in trials for k, v in t.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)))
    for key in keys:
        values = [t[key] for t in trials if isinstance(t.get(key), (int, float))]
        if values:
            summary[key] = median(values)
            spread[key] = relative_spread(values)
    return summary, spread


# The summary figures of every latency distribution, per trial and pooled: {prefix}_{name}_us (p99.9 -> p999).
LATENCY_NAMES: tuple[str, ...] = ("min", "mean", "p50", "p75", "p90", "p95", "p99", "p99.9", "max", "stdev")


def latency_key(prefix: str, name: str) -> str:
    """The figure key of summary ``name`` of distribution ``prefix``: ("rtt", "p99.9") -> "rtt_p999_us"."""
    return f"{prefix}_{name.replace('.', '')}_us"


def histogram_figures(h: Histogram, prefix: str) -> dict[str, float]:
    """The µs figures (LATENCY_NAMES) of a histogram of ns samples; {} when it holds none."""
    if not h.count:
        return {}
    points = [float(n[1:]) for n in LATENCY_NAMES if n.startswith("p")]
    values = dict(zip((f"p{p:g}" for p in points), h.percentiles(points)))
    values.update({"min": float(h.min or 0), "max": float(h.max or 0), "mean": h.mean(), "stdev": h.stdev()})
    return {latency_key(prefix, name): values[name] / 1000.0 for name in LATENCY_NAMES}


def trial_ranges(trials: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """[min, max] across trials of every numeric per-trial figure (the figures summarize_trials takes)."""
    out: dict[str, list[float]] = {}
    keys = dict.fromkeys(k for t in trials for k, v in t.items() if isinstance(v, (int, float))
                         and not isinstance(v, bool))
    for key in keys:
        values = [t[key] for t in trials if isinstance(t.get(key), (int, float)) and not isinstance(t[key], bool)]
        out[key] = [min(values), max(values)]
    return out


def summarize_cell(trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A cell's summary from its trials (``{"metrics": {...}, "histograms": {prefix: histogram JSON}}``).

    Returns
      summary: every per-trial figure's median across trials, except the figures of each latency distribution
               that the trials kept a histogram of: those (LATENCY_NAMES) come from the pooled samples of all
               trials (the merged histogram): percentiles within 0.4 %, mean, min, max and stdev exact;
      spread:  (max - min) / median across trials of every per-trial figure (as before);
      range:   [min, max] across trials of every per-trial figure;
      pooled:  {prefix: {"samples": N, "trials": k, "keys": [summary keys pooled], "quantiles_ns": [...]}}, the
               quantiles at QUANTILE_POINTS of the pooled samples (CDF plots). Empty for trials without
               histograms (result files before histograms): their summary stays the median of per-trial figures.
    """
    figures = [t.get("metrics", {}) for t in trials]
    summary, spread = summarize_trials(figures)
    ranges = trial_ranges(figures)
    pooled: dict[str, dict[str, Any]] = {}
    parts: dict[str, list[Histogram]] = {}
    for t in trials:
        for prefix, data in (t.get("histograms") or {}).items():
            parts.setdefault(prefix, []).append(data if isinstance(data, Histogram) else Histogram.from_json(data))
    for prefix, hists in parts.items():
        merged = Histogram.merged(hists)
        if not merged.count:
            continue
        pooled_figures = histogram_figures(merged, prefix)
        summary.update(pooled_figures)
        pooled[prefix] = {"samples": merged.count, "trials": sum(1 for h in hists if h.count),
                          "keys": list(pooled_figures),
                          "quantiles_ns": [round(v) for v in merged.percentiles(QUANTILE_POINTS)]}
    return {"summary": summary, "spread": spread, "range": ranges, "pooled": pooled}


# -- comparing two runs: significance on per-trial figures ------------------------------------------------------
# Trials are the independent unit: each runs in fresh processes, while the samples inside one trial share its
# placement, cache state and neighbours. So every test below takes one figure per trial (e.g. its p50).

EXACT_LIMIT = 50_000  # permutations enumerated exactly; above this the normal approximation is accurate anyway


def _midranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mann-Whitney U of ``a`` (pairs with a > b, ties counting 1/2) and its two-sided p-value.

    Small samples (the usual 3-10 trials) get the exact permutation distribution, which is also exact with
    ties; larger ones the normal approximation with tie and continuity corrections.
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("Mann-Whitney U needs at least one value on each side")
    pooled = list(a) + list(b)
    ranks = _midranks(pooled)
    u = math.fsum(ranks[:n]) - n * (n + 1) / 2.0
    centre = n * m / 2.0
    observed = abs(u - centre)
    if math.comb(n + m, n) <= EXACT_LIMIT:
        from itertools import combinations

        total = extreme = 0
        offset = n * (n + 1) / 2.0
        for chosen in combinations(ranks, n):
            total += 1
            if abs(math.fsum(chosen) - offset - centre) >= observed - 1e-9:
                extreme += 1
        return u, extreme / total
    big_n = n + m
    counts: dict[float, int] = {}
    for v in pooled:
        counts[v] = counts.get(v, 0) + 1
    ties = math.fsum(t**3 - t for t in counts.values())
    variance = n * m / 12.0 * ((big_n + 1) - ties / (big_n * (big_n - 1)))
    if variance <= 0:
        return u, 1.0
    z = max(0.0, observed - 0.5) / math.sqrt(variance)
    return u, min(1.0, math.erfc(z / math.sqrt(2.0)))


def min_p_value(n: int, m: int) -> float:
    """The smallest two-sided p the exact Mann-Whitney test can give with n and m values (no ties)."""
    if n == 0 or m == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n + m, n))


def bootstrap_ratio_ci(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of median(b) / median(a); None if median(a) is always 0.

    ``seed`` makes it deterministic: the same inputs always give the same interval.
    """
    import random

    if not a or not b:
        raise ValueError("bootstrap needs at least one value on each side")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence} outside (0, 1)")
    rng = random.Random(seed)
    n, m = len(a), len(b)
    ratios = []
    for _ in range(resamples):
        ma = median([a[rng.randrange(n)] for _ in range(n)])
        mb = median([b[rng.randrange(m)] for _ in range(m)])
        if ma != 0:
            ratios.append(mb / ma)
    if not ratios:
        return None
    ratios.sort()
    tail = (1.0 - confidence) / 2.0 * 100.0
    return percentile(ratios, tail), percentile(ratios, 100.0 - tail)


def compare_trials(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05, resamples: int = 2000,
                   seed: int = 0) -> dict[str, object]:
    """Is B different from A? One figure per trial on each side.

    Returns ratio (median b / median a, None if median a is 0), p (Mann-Whitney, two-sided), ci (bootstrap
    interval of the ratio), significant (True/False, or None when there are too few trials for the test to
    ever reach ``alpha``) and reason (why significance is None).
    """
    if not a or not b:
        raise ValueError("compare_trials needs at least one trial on each side")
    ma, mb = median(a), median(b)
    out: dict[str, object] = {"n_a": len(a), "n_b": len(b), "median_a": ma, "median_b": mb,
                              "ratio": (mb / ma) if ma else None, "p": None, "ci": None,
                              "significant": None, "reason": None}
    floor = min_p_value(len(a), len(b))
    if floor >= alpha:
        need = min(k for k in range(2, 50) if min_p_value(k, k) < alpha)
        out["reason"] = (f"too few trials ({len(a)} vs {len(b)}): no difference can reach p < {alpha:g}; "
                         f"run both with --trials {need} or more")
        return out
    _, p = mann_whitney_u(a, b)
    out["p"] = p
    out["ci"] = bootstrap_ratio_ci(a, b, confidence=1.0 - alpha, resamples=resamples, seed=seed)
    out["significant"] = p < alpha
    return out
