"""The mergeable histogram against exact answers: numpy-free quantiles of the raw samples (stats.percentile)."""

from __future__ import annotations

import json
import random
from array import array

import pytest

from ipclab import stats
from ipclab.histogram import MAX_RELATIVE_ERROR, Histogram, bucket_bounds, bucket_of

POINTS = [0, 0.1, 1, 10, 25, 33.3, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100]


def _samples(seed: int) -> list[int]:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 17, 1000, 20_000])
    kind = seed % 4
    if kind == 0:  # latency-like: log-normal around 10 us
        return [int(rng.lognormvariate(9.2, 1.2)) for _ in range(n)]
    if kind == 1:  # small values: the exact buckets and the first octaves
        return [rng.randrange(0, 1000) for _ in range(n)]
    if kind == 2:  # a floor with rare 50 ms stalls
        return [rng.choice([5_000 + rng.randrange(300)] * 999 + [50_000_000]) for _ in range(n)]
    return [rng.randrange(0, 1 << 40) for _ in range(n)]  # huge, flat


def test_buckets_tile_the_integers_and_stay_within_the_error_bound() -> None:
    previous_high = -1
    for index in range(0, 128 * 60):
        low, high = bucket_bounds(index)
        assert low == previous_high + 1  # no gap, no overlap
        assert bucket_of(low) == index and bucket_of(high) == index
        assert (high - low) / 2 <= MAX_RELATIVE_ERROR * max(low, 1)  # a midpoint is within the bound
        previous_high = high
    assert MAX_RELATIVE_ERROR <= 0.01


@pytest.mark.parametrize("seed", range(24))
def test_percentiles_within_the_bound_of_the_exact_ones(seed: int) -> None:
    values = _samples(seed)
    h = Histogram.of(array("q", values))
    ordered = sorted(values)
    for p, got in zip(POINTS, h.percentiles(POINTS)):
        exact = stats.percentile(ordered, p)
        assert abs(got - exact) <= MAX_RELATIVE_ERROR * exact + 1e-9, (p, got, exact)
    assert h.value_at_percentile(0) == ordered[0] and h.value_at_percentile(100) == ordered[-1]
    assert h.count == len(values) and h.min == ordered[0] and h.max == ordered[-1]
    assert h.mean() == pytest.approx(stats.mean(ordered), rel=1e-12)
    assert h.stdev() == pytest.approx(stats.stdev(ordered), rel=1e-9, abs=1e-9)


def test_merge_is_the_histogram_of_the_pooled_samples() -> None:
    rng = random.Random(7)
    parts = [[int(rng.lognormvariate(9, 1)) for _ in range(rng.randrange(1, 3000))] for _ in range(4)]
    merged = Histogram.merged(Histogram.of(p) for p in parts)
    pooled = Histogram.of([v for p in parts for v in p])
    assert merged.to_json() == pooled.to_json()
    assert Histogram.merged([Histogram(), Histogram.of([5])]).to_json() == Histogram.of([5]).to_json()


def test_json_round_trip_is_compact_and_exact() -> None:
    rng = random.Random(3)
    h = Histogram.of(array("q", (int(rng.lognormvariate(9, 1)) for _ in range(100_000))))
    data = json.loads(json.dumps(h.to_json()))
    assert Histogram.from_json(data).to_json() == h.to_json()
    assert len(json.dumps(data)) < 20_000  # 100 000 samples: buckets, not samples
    empty = Histogram().to_json()
    assert Histogram.from_json(empty).count == 0
    with pytest.raises(ValueError):
        Histogram().value_at_percentile(50)


@pytest.mark.parametrize("change, why", [
    ({"count": 5}, "add up"),
    ({"sub_bits": 6}, "sub_bits"),
    ({"buckets": [3, 1, 0, 2]}, "repeats"),
    ({"buckets": [3, 0]}, "empty"),
    ({"buckets": [3]}, "buckets"),
    ({"count": True}, "count"),
    ({"min": None}, "min"),
    ({"max": 1}, "min"),
])
def test_from_json_rejects_what_to_json_never_writes(change: dict, why: str) -> None:
    good = Histogram.of([10, 20, 300]).to_json()
    with pytest.raises(ValueError, match=why):
        Histogram.from_json({**good, **change})
