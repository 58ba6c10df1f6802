"""A mergeable log-linear histogram of non-negative integer samples (ns) with bounded relative error.

Why: a cell's percentiles must come from the pooled samples of all its trials, but a trial's raw samples (up to
MAX_SAMPLES of them) are too big to keep. Each trial keeps this histogram instead; merging is adding counts.

Buckets (HdrHistogram's layout with 128 sub-buckets per power of two): values below 256 have a bucket each (exact);
a value v >= 256 with ``shift = v.bit_length() - 8`` lands in bucket ``(shift << 7) + (v >> shift)``, which holds
the 2**shift values starting at ``(v >> shift) << shift`` (at least 128 bucket widths above 0). A bucket is read
as its midpoint, so a value read back is off by at most half a width: a relative error <= 1/256 (0.4 %).
Count, sum, sum of squares, min and max are kept exactly beside the buckets: the mean, standard deviation, min and
max are exact, and so are p0 and p100.

Percentiles follow numpy's default (linear interpolation between the two order statistics around rank
(n-1)*p/100), each order statistic read from its bucket: the result is within 0.4 % of numpy's on the samples.

JSON form (``to_json``), compact and validated by ``from_json``:
    {"sub_bits": 7, "count": N, "min": ns, "max": ns, "sum": ns, "sum2": ns^2,
     "buckets": [index0, count0, delta1, count1, ...]}    # bucket indexes as deltas from the previous one
Negative samples (never expected from a monotonic clock) count in bucket 0; min keeps their exact value.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

SUB_BITS = 7  # 128 sub-buckets per power of two: relative error <= 1/256
_TOP = SUB_BITS + 1  # values below 2**_TOP have a bucket each
MAX_RELATIVE_ERROR = 1.0 / (1 << _TOP)


def bucket_of(value: int) -> int:
    """The bucket index of a sample."""
    if value < 0:
        return 0
    shift = value.bit_length() - _TOP
    if shift <= 0:
        return value
    return (shift << SUB_BITS) + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """(lowest, highest) value a bucket holds."""
    if index < (1 << _TOP):
        return index, index
    shift = (index >> SUB_BITS) - 1
    low = (index - (shift << SUB_BITS)) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of integer samples in log-linear buckets; exact count, sum, sum of squares, min and max."""

    __slots__ = ("counts", "count", "total", "total2", "min", "max")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.total2 = 0
        self.min: int | None = None
        self.max: int | None = None

    @classmethod
    def of(cls, samples: Iterable[int]) -> Histogram:
        """A histogram of ``samples`` (an array('q') of ns is the usual input). Distinct values are counted first
        in C (Counter), so the Python work scales with distinct values, not samples."""
        h = cls()
        h.add_counts(Counter(samples))
        return h

    def add_counts(self, values: dict[int, int]) -> None:
        """Record ``count`` samples of each ``value``."""
        counts = self.counts
        for value, n in values.items():
            value = int(value)
            if n <= 0:
                continue
            b = bucket_of(value)
            counts[b] = counts.get(b, 0) + n
            self.count += n
            self.total += value * n
            self.total2 += value * value * n
            if self.min is None or value < self.min:
                self.min = value
            if self.max is None or value > self.max:
                self.max = value

    def record(self, value: int, n: int = 1) -> None:
        self.add_counts({value: n})

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other``'s samples to this histogram (returns self)."""
        for b, n in other.counts.items():
            self.counts[b] = self.counts.get(b, 0) + n
        self.count += other.count
        self.total += other.total
        self.total2 += other.total2
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max
        return self

    @classmethod
    def merged(cls, parts: Iterable[Histogram]) -> Histogram:
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    # -- reading ------------------------------------------------------------------------------------------
    def mean(self) -> float:
        if not self.count:
            raise ValueError("mean of an empty histogram")
        return self.total / self.count

    def stdev(self) -> float:
        """Sample standard deviation (n-1), exact (from the exact sums); 0 below two samples."""
        n = self.count
        if n < 2:
            return 0.0
        # Exact integer arithmetic first: the float of a difference of huge sums would lose the small variance.
        return math.sqrt(max(0, n * self.total2 - self.total * self.total) / (n * (n - 1)))

    def _cumulative(self) -> tuple[list[int], list[int]]:
        indexes = sorted(self.counts)
        ends, running = [], 0
        for b in indexes:
            running += self.counts[b]
            ends.append(running)  # order statistics [ends[k-1], ends[k]) lie in bucket indexes[k]
        return indexes, ends

    def _order_statistic(self, i: int, indexes: Sequence[int], ends: Sequence[int]) -> float:
        """The i-th smallest sample (0-based), read from its bucket: exact for the first and the last."""
        assert self.min is not None and self.max is not None
        if i <= 0:
            return float(self.min)
        if i >= self.count - 1:
            return float(self.max)
        low, high = bucket_bounds(indexes[bisect_right(ends, i)])
        return min(max((low + high) / 2.0, self.min), self.max)

    def percentiles(self, ps: Iterable[float]) -> list[float]:
        """The values at each percentile (0..100), numpy's linear interpolation, within 0.4 % of the exact."""
        if not self.count:
            raise ValueError("percentile of an empty histogram")
        indexes, ends = self._cumulative()
        out = []
        for p in ps:
            if not 0.0 <= p <= 100.0:
                raise ValueError(f"percentile {p} outside 0..100")
            rank = (self.count - 1) * p / 100.0
            lo = math.floor(rank)
            v_lo = self._order_statistic(lo, indexes, ends)
            frac = rank - lo
            v = v_lo if frac == 0 else v_lo + (self._order_statistic(lo + 1, indexes, ends) - v_lo) * frac
            out.append(v)
        return out

    def value_at_percentile(self, p: float) -> float:
        return self.percentiles([p])[0]

    # -- JSON ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        flat: list[int] = []
        previous = 0
        for b in sorted(self.counts):
            flat += (b - previous, self.counts[b])
            previous = b
        return {"sub_bits": SUB_BITS, "count": self.count, "min": self.min, "max": self.max, "sum": self.total,
                "sum2": self.total2, "buckets": flat}

    @classmethod
    def from_json(cls, data: Any) -> Histogram:
        """The histogram ``to_json`` wrote; ValueError (saying what is wrong) for anything else."""
        if not isinstance(data, dict):
            raise ValueError("histogram is not an object")
        if data.get("sub_bits") != SUB_BITS:
            raise ValueError(f"histogram sub_bits {data.get('sub_bits')!r} is not {SUB_BITS}")
        for key in ("count", "sum", "sum2"):
            if not _int(data.get(key)) or data[key] < 0 and key != "sum":
                raise ValueError(f"histogram {key!r} is not a whole number")
        flat = data.get("buckets")
        if not isinstance(flat, list) or len(flat) % 2 or not all(_int(v) and v >= 0 for v in flat):
            raise ValueError("histogram 'buckets' is not a list of (index delta, count) whole numbers")
        h = cls()
        index = 0
        for k in range(0, len(flat), 2):
            index += flat[k]
            if k and not flat[k] or not flat[k + 1]:
                raise ValueError("histogram 'buckets' repeats a bucket or holds an empty one")
            h.counts[index] = flat[k + 1]
        h.count, h.total, h.total2 = data["count"], data["sum"], data["sum2"]
        if sum(h.counts.values()) != h.count:
            raise ValueError("histogram bucket counts do not add up to its count")
        if h.count:
            if not (_int(data.get("min")) and _int(data.get("max")) and data["min"] <= data["max"]):
                raise ValueError("histogram 'min'/'max' are not whole numbers with min <= max")
            h.min, h.max = data["min"], data["max"]
        elif data.get("min") is not None or data.get("max") is not None:
            raise ValueError("an empty histogram has a min or max")
        return h


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
