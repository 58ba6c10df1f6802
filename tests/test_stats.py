"""Pure statistics: known answers."""

from __future__ import annotations

import pytest

from ipclab import stats


def test_percentile_linear_interpolation() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 100) == 4.0
    assert stats.percentile(values, 50) == 2.5
    assert stats.percentile(values, 25) == pytest.approx(1.75)
    with pytest.raises(ValueError):
        stats.percentile([], 50)


def test_summarize() -> None:
    s = stats.summarize(list(range(1, 101)))
    assert s["count"] == 100 and s["min"] == 1 and s["max"] == 100
    assert s["p50"] == pytest.approx(50.5) and s["mean"] == pytest.approx(50.5)
    assert s["p99"] == pytest.approx(99.01)


def test_spread_and_mad() -> None:
    assert stats.relative_spread([10, 11, 9]) == pytest.approx(0.2)
    assert stats.relative_spread([5]) == 0.0
    assert stats.mad([1, 2, 3, 4, 100]) == 1


def test_min_samples() -> None:
    assert stats.min_samples_for(99) == 1000
    assert stats.min_samples_for(99.9) == 10000
    assert stats.min_samples_for(50) == 20


def test_quantiles_cover_the_tail() -> None:
    q = stats.quantiles(sorted(range(1000)))
    assert q[0] == 0 and q[-1] == 999 and len(q) == len(stats.QUANTILE_POINTS)
    assert q == sorted(q)


def test_summary_takes_figures_from_every_trial() -> None:
    from ipclab.stats import summarize_trials

    summary, spread = summarize_trials([{"lost": 5}, {"lost": 1, "rtt_p50_us": 10.0}, {"lost": 0, "rtt_p50_us": 12.0}])
    assert summary == {"lost": 1, "rtt_p50_us": 11.0}
    assert spread["rtt_p50_us"] == pytest.approx(2 / 11)
