"""ipclab compare and the statistics under it: deterministic synthetic runs, plus one real tiny run."""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import random

import pytest
from synthetic import make_result

from ipclab import results, stats
from ipclab.report import compare


# -- Mann-Whitney U ----------------------------------------------------------------------------------------
def brute_force_p(a, b):
    """Two-sided permutation p-value of U, counting pairs directly (independent of the rank code)."""
    def u_of(x, y):
        return sum((xi > yj) + 0.5 * (xi == yj) for xi in x for yj in y)

    pooled = list(a) + list(b)
    n, m = len(a), len(b)
    centre = n * m / 2
    observed = abs(u_of(a, b) - centre)
    hits = total = 0
    for chosen in itertools.combinations(range(n + m), n):
        x = [pooled[i] for i in chosen]
        y = [pooled[i] for i in range(n + m) if i not in chosen]
        total += 1
        hits += abs(u_of(x, y) - centre) >= observed - 1e-9
    return hits / total


def test_mann_whitney_matches_reference_values():
    # Reference values from scipy.stats.mannwhitneyu (exact and asymptotic methods).
    u, p = stats.mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8])
    assert u == 0 and p == pytest.approx(0.028571428571, rel=1e-9)
    rng = random.Random(1)
    a = [rng.gauss(0, 1) for _ in range(30)]
    b = [rng.gauss(0.5, 1) for _ in range(30)]
    u, p = stats.mann_whitney_u(a, b)  # C(60, 30) permutations: normal approximation
    assert u == 315 and p == pytest.approx(0.046755842392771, rel=1e-9)


@pytest.mark.parametrize("a,b", [([1, 1, 2, 3], [1, 2, 2, 4]), ([5, 5, 5], [5, 5, 6, 7]), ([3, 1, 2], [6, 5, 4, 4])])
def test_exact_p_with_ties_equals_brute_force(a, b):
    assert stats.mann_whitney_u(a, b)[1] == pytest.approx(brute_force_p(a, b))


def test_identical_samples_give_p_one():
    assert stats.mann_whitney_u([7.0] * 6, [7.0] * 6) == (18.0, 1.0)
    assert stats.mann_whitney_u([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])[1] == 1.0


def test_min_p_value_and_too_few_trials():
    assert stats.min_p_value(3, 3) == pytest.approx(0.1)
    assert stats.min_p_value(4, 4) == pytest.approx(2 / 70)
    out = stats.compare_trials([10, 10.1, 9.9], [20, 20.2, 19.8])
    assert out["significant"] is None and out["p"] is None and out["ratio"] == pytest.approx(2.0)
    assert "too few trials (3 vs 3)" in out["reason"] and "--trials 4" in out["reason"]


def test_bootstrap_is_deterministic_and_brackets_the_ratio():
    a = [10.0, 10.2, 9.9, 10.1, 10.05, 9.95]
    b = [20.1, 19.8, 20.3, 20.0, 19.9, 20.2]
    ci = stats.bootstrap_ratio_ci(a, b, seed=7)
    assert ci == stats.bootstrap_ratio_ci(a, b, seed=7)
    assert ci[0] <= 2.0 <= ci[1] and ci[1] - ci[0] < 0.1
    assert stats.bootstrap_ratio_ci([5.0] * 4, [5.0] * 4) == (1.0, 1.0)
    assert stats.bootstrap_ratio_ci([0.0, 0.0], [1.0, 2.0]) is None


# -- compare -----------------------------------------------------------------------------------------------
def rows_by(comp, metric):
    return {(r.pattern, r.transport, r.size): r for r in comp.rows if r.metric.key == metric}


def test_a_real_2x_difference_is_significant():
    a = make_result(trials=6, seed=1)
    b = make_result(trials=6, seed=2, factor=2.0)
    comp = compare.compare(a, b)
    p50 = rows_by(comp, "rtt_p50_us")
    assert len(p50) == 6
    for row in p50.values():
        assert row.outcome["significant"] is True
        assert row.outcome["ratio"] == pytest.approx(2.0, rel=0.05)
        assert row.outcome["ci"][0] > 1.5
        assert row.verdict().startswith("B worse")  # slower round trips are worse
    for row in rows_by(comp, "mb_s").values():  # half the throughput: also worse, the other way round
        assert row.outcome["significant"] is True and row.outcome["ratio"] < 0.6
        assert row.verdict().startswith("B worse")
    assert comp.warnings == []


def test_identical_runs_are_not_significant():
    a = make_result(trials=6, seed=1)
    comp = compare.compare(a, copy.deepcopy(a))
    assert comp.rows and all(r.outcome["significant"] is False for r in comp.rows)
    assert all(r.outcome["ratio"] == pytest.approx(1.0) for r in comp.rows)
    assert all(r.verdict().startswith("no significant difference") for r in comp.rows)


def test_same_machine_rerun_with_noise_is_not_significant():
    # Two runs drawn from the same distribution: no cell should be called different at this noise level.
    comp = compare.compare(make_result(trials=6, seed=3, noise=0.02), make_result(trials=6, seed=4, noise=0.02),
                           ["rtt_p50_us"])
    assert sum(bool(r.outcome["significant"]) for r in comp.rows) <= 1


def test_too_few_trials_says_so():
    comp = compare.compare(make_result(trials=3), make_result(trials=3, factor=2.0, seed=5))
    assert comp.rows and all(r.verdict() == "too few trials" for r in comp.rows)
    assert any("too few trials (3 vs 3)" in n for n in comp.notes)


def test_metadata_differences_are_warned():
    a = make_result(trials=2)
    b = make_result(trials=2, placement="cross CPUs (server 0, client 1)")
    b["metadata"].update(kernel="6.9.0-other", python_version="3.12.1", cpu_model="Other CPU",
                         ipclab_version="0.2.0")
    b["config"]["count"] = 5000
    text = "\n".join(compare.metadata_differences(a, b))
    for what in ("kernel differs", "Python version differs", "CPU model differs", "ipclab version differs",
                 "--count differs", "placement differs in 12 common cell(s)"):
        assert what in text
    assert compare.metadata_differences(a, copy.deepcopy(a)) == []


def test_cells_on_one_side_are_noted():
    a = make_result(trials=5, base={"pipe": 10.0, "unix": 18.0})
    b = make_result(trials=5, base={"pipe": 10.0, "tcp": 22.0})
    comp = compare.compare(a, b, ["rtt_p50_us"])
    assert {r.transport for r in comp.rows} == {"pipe"}
    assert any("only in A, e.g. pingpong unix" in n for n in comp.notes)
    assert any("only in B, e.g. pingpong tcp" in n for n in comp.notes)


def test_compare_csv_and_json_are_machine_readable():
    comp = compare.compare(make_result(trials=5), make_result(trials=5, factor=2.0, seed=9), ["rtt_p50_us"])
    rows = list(csv.DictReader(io.StringIO(compare.render_csv(comp))))
    assert len(rows) == 6
    for row in rows:
        assert row["significant"] == "true" and float(row["ratio"]) > 1.8 and float(row["p_value"]) < 0.05
        assert float(row["ci_low"]) <= float(row["ratio"]) <= float(row["ci_high"])
    doc = json.loads(compare.render_json(comp))
    assert len(doc["rows"]) == 6 and doc["rows"][0]["significant"] is True


# -- the command -------------------------------------------------------------------------------------------
@pytest.mark.process
def test_compare_cli_on_synthetic_files(cli, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    results.save(make_result(trials=5), str(a))
    slow = make_result(trials=5, factor=2.0, seed=11)
    slow["metadata"]["kernel"] = "5.15.0-elsewhere"
    results.save(slow, str(b))
    proc = cli("compare", str(a), str(b), "--metric", "rtt_p50_us", "--format", "markdown", check=True)
    assert proc.stdout.count("B worse") == 6
    assert "kernel differs: '6.1.0-test' (A) vs '5.15.0-elsewhere' (B)" in proc.stdout
    proc = cli("compare", str(a), str(b), "--format", "csv", check=True)
    assert "kernel differs" in proc.stderr and "kernel" not in proc.stdout  # CSV stays clean
    proc = cli("compare", str(a), str(b), "--alpha", "2")
    assert proc.returncode == 2 and "--alpha" in proc.stderr
    proc = cli("compare", str(a), str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "missing.json" in proc.stderr


@pytest.mark.process
def test_compare_cli_on_a_real_tiny_run(cli, tmp_path):
    run = tmp_path / "run.json"
    cli("run", "-t", "pipe", "-s", "64", "-n", "200", "-p", "pingpong", "-q", "-o", str(run), check=True)
    proc = cli("compare", str(run), str(run), check=True)
    assert "pipe" in proc.stdout and "too few trials" in proc.stdout and "--trials" in proc.stdout
    doc = json.loads(cli("compare", str(run), str(run), "--format", "json", check=True).stdout)
    assert {r["transport"] for r in doc["rows"]} == {"pipe"} and doc["warnings"] == []
    assert all(r["ratio"] == 1.0 and r["significant"] is None and r["trials_a"] == 1 for r in doc["rows"])
