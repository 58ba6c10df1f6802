"""Every figure honest: a cell's latency figures come from the pooled samples of all its trials, per-trial figures
are summarised as median and range, p75..p99.9 exist for every declared distribution, and every label says what
it counts. Fast tier: real sweeps through the Inline launcher and the loopback transport (no processes)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from faulty_transports import Wrapped, WrapsOneEnd
from synthetic import make_result

from ipclab import results, runner, stats
from ipclab.config import RunConfig
from ipclab.engine.inline import Inline
from ipclab.engine.supervise import Timing
from ipclab.patterns import PATTERNS, get_pattern
from ipclab.patterns.openloop import paced_metrics
from ipclab.report import compare, tables
from ipclab.report import metrics as catalogue
from ipclab.transports import get_transport
from ipclab.transports.loopback import LoopbackTransport

FAST = Timing(setup=5.0, exit_grace=0.05, peer_grace=0.01)
STALL_S = 0.050
STALL_TRIAL, STALL_AT = 2, 40  # the server's 40th read of trial 2 (past the 3 warm-up round trips)
TAILS = ("p75", "p90", "p95", "p99", "p99.9")


class _StallOnce(Wrapped):
    def recv_into(self, buf: memoryview) -> int:
        self.n += 1
        got = self.inner.recv_into(buf)
        if self.n == STALL_AT and self.trial == STALL_TRIAL:
            threading.Event().wait(STALL_S)  # one 50 ms stall: the client's round trip waits for its echo
        return got


class Stalling(WrapsOneEnd, LoopbackTransport):
    """Loopback whose echo server stalls 50 ms once, in trial 2 of the cell and never otherwise."""

    name = "loopback-stall"
    servers = 0

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Any:
        channel = super().connect(address, role, index)
        if role == "server":
            Stalling.servers += 1
            channel.trial = Stalling.servers
        return channel


Stalling.fault = _StallOnce


def sweep(transports: tuple[str, ...] = ("loopback",), patterns: tuple[str, ...] = ("pingpong",),
          **config: Any) -> dict[str, Any]:
    config.setdefault("count", 100)
    config.setdefault("warmup", 3)
    Stalling.servers = 0
    launcher = Inline()
    r = runner.Runner(RunConfig(transports=transports, patterns=patterns, sizes=(64,), **config), metadata={},
                      launcher=launcher, timing=FAST,
                      transports=lambda name: Stalling if name == Stalling.name else get_transport(name))
    result = r.run()
    results.validate(result)  # what the engine writes, the model reads back (histograms, range, pooled)
    return result


# -- point 2: pooled percentiles, max is the max, mean over all round trips -----------------------------------
def test_one_stall_in_one_trial_shows_in_the_cells_max_and_p999() -> None:
    (cell,) = sweep(("loopback-stall",), trials=3)["cells"]
    assert cell["status"] == "ok", cell["reason"]
    per_trial = [t["metrics"] for t in cell["trials"]]
    assert [m["rtt_max_us"] >= STALL_S * 1e6 for m in per_trial] == [False, True, False]  # the stall's trial
    s = cell["summary"]
    # Known answer: the pooled max is the stall; p99.9 of 300 round trips sits 0.701 of the way from the 299th
    # to the 300th (the stall), so at least 0.7 x 50 ms. A median of per-trial figures hid both.
    assert s["rtt_max_us"] == max(m["rtt_max_us"] for m in per_trial) >= STALL_S * 1e6
    assert s["rtt_p999_us"] >= 0.7 * STALL_S * 1e6
    assert s["rtt_p50_us"] < STALL_S * 1e6 / 10  # the middle is not moved by one stall
    # Mean over all 300 round trips (exact), not a median of the trials' means.
    total = sum(m["rtt_mean_us"] * m["round_trips"] for m in per_trial)
    assert s["rtt_mean_us"] == pytest.approx(total / sum(m["round_trips"] for m in per_trial), rel=1e-9)
    assert s["rtt_mean_us"] >= STALL_S * 1e6 / 300
    assert cell["pooled"]["rtt"]["samples"] == 300 and cell["pooled"]["rtt"]["trials"] == 3
    # The stored distribution (CDF plots) is the pooled one: its top is the stall.
    assert cell["pooled"]["rtt"]["quantiles_ns"][-1] == round(s["rtt_max_us"] * 1000)
    # Per-trial figures stay per trial, with their range across trials.
    assert cell["range"]["rtt_max_us"] == [min(m["rtt_max_us"] for m in per_trial), s["rtt_max_us"]]


def test_pooled_figures_are_the_histograms_of_the_pooled_samples() -> None:
    (cell,) = sweep(trials=3)["cells"]
    from ipclab.histogram import Histogram

    merged = Histogram.merged(Histogram.from_json(t["histograms"]["rtt"]) for t in cell["trials"])
    assert merged.count == sum(t["metrics"]["round_trips"] for t in cell["trials"]) == 300
    expected = stats.histogram_figures(merged, "rtt")
    assert {k: cell["summary"][k] for k in expected} == expected
    assert set(cell["pooled"]["rtt"]["keys"]) == set(expected)
    # The trial's own figures are exact over its samples; its histogram agrees within the bound.
    for t in cell["trials"]:
        h = Histogram.from_json(t["histograms"]["rtt"])
        assert h.value_at_percentile(99) == pytest.approx(t["metrics"]["rtt_p99_us"] * 1000, rel=0.004)


# -- point 3 (data): median and range of every per-trial figure -----------------------------------------------
def test_per_trial_figures_have_their_median_and_range() -> None:
    (cell,) = sweep(trials=3)["cells"]
    for key in ("msg_s", "cpu_us_msg", "round_trips", "rtt_p50_us"):
        values = [t["metrics"][key] for t in cell["trials"]]
        assert cell["range"][key] == [min(values), max(values)]
        if key not in cell["pooled"]["rtt"]["keys"]:
            assert cell["summary"][key] == stats.median(values)
    assert "spread" in cell  # kept for the code that reads it


def test_an_old_file_without_histograms_loads_renders_and_says_its_percentiles_are_medians() -> None:
    old = make_result(trials=3, patterns=("pingpong",))
    cell = old["cells"][0]
    assert "pooled" not in cell and "histograms" not in cell["trials"][0]
    assert catalogue.summary_basis(cell, "rtt_p99_us") == "median of per-trial figures"
    assert catalogue.summary_basis(cell, "msg_s") == "median"
    assert "pingpong" in tables.render_run_tables(old, "table")
    again = stats.summarize_cell(cell["trials"])
    assert again["pooled"] == {} and again["summary"] == cell["summary"]  # nothing to pool: today's medians
    (new,) = sweep(trials=2)["cells"]
    assert catalogue.summary_basis(new, "rtt_p99_us") == "pooled" and catalogue.summary_basis(new, "msg_s") == "median"


# -- point 9: p75, p90, p95, p99, p99.9 (and mean, max) for every declared distribution ------------------------
# Open-loop cells only (--rate) record schedule lag and service time: tests/test_rate*.py pool those.
OPEN_LOOP_ONLY = {m.key for m in paced_metrics("", "", "message")}
DISTRIBUTIONS = sorted({(name, m.key[: -len("_p50_us")]) for name in PATTERNS
                        for m in get_pattern(name).SPEC.metrics
                        if m.key.endswith("_p50_us") and m.key not in OPEN_LOOP_ONLY})


@pytest.mark.parametrize("pattern, prefix", DISTRIBUTIONS)
def test_every_distribution_declares_records_and_pools_its_tail(pattern: str, prefix: str) -> None:
    keys = [f"{prefix}_{n.replace('.', '')}_us" for n in (*TAILS, "mean", "max")]
    declared = {m.key: m for m in get_pattern(pattern).SPEC.metrics}
    assert all(k in declared and k in catalogue.METRICS for k in keys)
    assert [catalogue.PERCENTILES[k] for k in keys[:5]] == [75.0, 90.0, 95.0, 99.0, 99.9]
    result = sweep(patterns=(pattern,), trials=2, clients=2)
    (cell,) = result["cells"]
    assert cell["status"] == "ok", cell["reason"]
    assert all(k in t["metrics"] for t in cell["trials"] for k in keys)  # compare reads per-trial figures
    assert all(k in cell["pooled"][prefix]["keys"] and k in cell["summary"] for k in keys)
    assert tables.applicable(result, pattern, keys[0])  # report --metric / an experiment's metrics
    rows = compare.compare(result, result, keys).rows
    assert {r.metric.key for r in rows} == set(keys)


# -- point 4: every label says what it counts -----------------------------------------------------------------
def test_pingpong_counts_rate_cpu_and_loss_per_round_trip() -> None:
    for key in ("msg_s", "cpu_us_msg", "ctx_msg", "loss_pct"):
        m = catalogue.metric_for("pingpong", key)
        assert m.per == "round trip" and "round trip" in m.title, key
        assert catalogue.metric_for("stream", key).per == "message"
    result = sweep(trials=1)
    (cell,) = result["cells"]
    m = cell["trials"][0]["metrics"]
    assert m["msg_s"] == pytest.approx(1e6 / m["rtt_mean_us"])  # one per round trip: what the label says
    title = tables.pivot(result, "pingpong", "cpu_us_msg").title
    assert "CPU time per round trip (2 messages)" in title
    assert "round trips/s" in tables.pivot(result, "pingpong", "msg_s").title


def test_every_metric_says_what_one_unit_counts() -> None:
    assert all(m.per for m in catalogue.METRICS.values()), [k for k, m in catalogue.METRICS.items() if not m.per]
    assert all(m.per for m in catalogue.RELABELLED.values())
    relabelled = {(p, k) for p, k in catalogue.RELABELLED}
    assert {("pingpong", "msg_s"), ("reqrep", "msg_s"), ("connect", "cpu_us_msg"), ("burst", "msg_s")} <= relabelled


# -- the same known answer through the CLI, in real processes (a plug-in transport) ----------------------------
@pytest.mark.process
def test_a_stall_in_one_trial_shows_through_run_and_report(cli, tmp_path) -> None:
    import json
    import os

    from conftest import ROOT

    from ipclab.report.metrics import format_number

    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = {"PYTHONPATH": os.pathsep.join([ROOT, tests_dir]),
           "IPCLAB_EXTRA_TRANSPORTS": "stall=stall_transport:StallPipe",
           "IPCLAB_TEST_STALL": str(tmp_path / "servers")}
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "stall", "-p", "pingpong", "-s", "64", "-n", "100", "--warmup", "3", "--trials", "3",
               "-q", "-f", "csv", "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    (cell,) = json.loads(out.read_text())["cells"]
    s = cell["summary"]
    assert s["rtt_max_us"] >= STALL_S * 1e6 and s["rtt_p999_us"] >= 0.7 * STALL_S * 1e6
    assert cell["pooled"]["rtt"]["samples"] == 300
    report = cli("report", str(out), "--metric", "rtt_max_us,rtt_p999_us,rtt_p75_us,msg_s", env=env)
    assert report.returncode == 0, report.stderr
    assert format_number(s["rtt_max_us"]) in report.stdout and format_number(s["rtt_p999_us"]) in report.stdout
    assert "round trips/s" in report.stdout
