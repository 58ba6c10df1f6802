"""Statistics as pure functions over sequences of numbers: percentiles, spread, summaries.

No clocks, no I/O: everything here is tested deterministically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

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
    return math.ceil(10.0 / (1.0 - p / 100.0))


def summarize(values: Sequence[float]) -> dict[str, float]:
    """count, mean, min, p50, p90, p99, p99.9, max, stdev of a latency sample (any unit)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "mean": mean(ordered),
        "min": ordered[0],
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
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
