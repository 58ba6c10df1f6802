"""Every figure honest (issue 11, points 1, 3 and 5): loss beside every figure of a lossy cell, the spread across
trials as a range (never a ±), percentiles on too few samples marked in their cell, one advice engine whose lines
are the same for run and report, each said once, and a busy machine detected.

Fast tier: real sweeps through the Inline launcher (a loopback that drops every 10th message by construction) and
synthetic results; the CLI known answer (a plug-in pipe transport that drops every 10th message) is process tier.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from typing import Any

import pytest
from conftest import ROOT
from synthetic import make_result

from ipclab import results
from ipclab.cli.run import render_run_tables, run_warnings
from ipclab.config import RunConfig
from ipclab.engine import sweep as engine
from ipclab.engine.inline import Inline
from ipclab.engine.supervise import Timing
from ipclab.report import advice, html, latex
from ipclab.report.commands import cmd_report, report_tables
from ipclab.report.tables import render_tables
from ipclab.transports import get_transport
from ipclab.transports.loopback import LoopbackTransport

FAST = Timing(setup=5.0, exit_grace=0.05, peer_grace=0.01)
TEXT_FORMATS = ("table", "markdown", "github")
QUIET = {"load_average": [0.0, 0.0, 0.0], "cpu_jiffies": {"total": 1000, "steal": 0}}


class DropTenth(LoopbackTransport):
    name = "loopback-drop10"
    reliable = False
    drop_every = 10  # by construction: a stream of 100 messages (no warm-up) loses exactly 10


def resolve(name: str) -> Any:
    return DropTenth if name == DropTenth.name else get_transport(name)


def sweep(transports: tuple[str, ...], patterns: tuple[str, ...], *, load: Any = None, metadata: Any = None,
          **config: Any) -> dict[str, Any]:
    config.setdefault("count", 100)
    config.setdefault("warmup", 0)
    launcher = Inline()
    probe = {"load": load} if load else {}  # without one, the machine's own load (advised only with a CPU count)
    runner = engine.Runner(RunConfig(transports=transports, patterns=patterns, sizes=(64,), **config),
                           metadata={} if metadata is None else metadata, launcher=launcher, timing=FAST,
                           transports=resolve, **probe)
    return runner.run()


def cell_of(text: str, row: str) -> list[str]:
    """The cells of the text-table row starting with ``row``."""
    for line in text.splitlines():
        if line.startswith(row + " ") or line.startswith(f"| {row} "):
            return [c.strip() for c in line.strip("|").split("  ") if c.strip()]
    raise AssertionError(f"no row {row!r} in\n{text}")


def report_text(result: dict[str, Any], tmp_path: Any, capsys: Any, fmt: str, metric: str | None = None) -> str:
    path = tmp_path / f"r-{fmt}.json"
    if not path.exists():
        results.save(result, str(path))
    args = argparse.Namespace(result=str(path), metric=metric, format=fmt, output=None, force=False, no_plots=True)
    assert cmd_report(args) == 0
    return str(capsys.readouterr().out)


# -- 1. loss is never hidden ---------------------------------------------------------------------------------
def test_a_lossy_stream_shows_exactly_its_loss_beside_every_figure_in_run_and_report(tmp_path, capsys) -> None:
    result = sweep((DropTenth.name, "loopback"), ("stream",))
    lossy, clean = result["cells"]
    assert lossy["summary"]["loss_pct"] == 10.0 and clean["summary"]["loss_pct"] == 0.0  # the known answer
    for fmt in TEXT_FORMATS:
        for text in (render_run_tables(result, fmt), report_text(result, tmp_path, capsys, fmt)):
            body = text.split("warnings:\n")[0].split("**Warnings**")[0]
            for table in body.split("stream: ")[1:]:
                if table.startswith("messages lost"):  # the delivery table: lost % / reordered / duplicated
                    assert "10.0 / 0 / 0" in table and "0 / 0 / 0" in table
                    continue
                assert ", 10.0% lost" in table, table  # throughput, msg/s, CPU...: each with its loss
                assert table.count("% lost") == 1 + ("N% lost" in table)  # the clean cell says nothing
                assert "N% lost: the cell lost messages" in table  # the legend, once under the table
    rows = list(csv.DictReader(io.StringIO(render_run_tables(result, "csv"))))
    mb = {r["transport"]: r for r in rows if r["metric"] == "mb_s"}
    assert float(mb[DropTenth.name]["loss_pct"]) == 10.0 and float(mb["loopback"]["loss_pct"]) == 0.0
    assert {r["metric"] for r in rows} >= {"loss_pct", "reordered", "duplicated"}
    (mb_json,) = [t for t in json.loads(render_run_tables(result, "json")) if t["metric"] == "mb_s"]
    assert mb_json["loss_pct"] == [[10.0], [0.0]]
    tables = report_tables(result, None)
    assert "10.0\\% lost" in latex.render(result, tables, [])
    assert "10.0% lost" in html.render(result, tables, [], [])


def test_a_lossy_fanin_shows_its_loss_beside_the_fairness_index() -> None:
    result = sweep((DropTenth.name,), ("fanin",), clients=2)
    (cell,) = result["cells"]
    assert cell["summary"]["loss_pct"] == 10.0
    # Threads under one lock rarely all send at once: give the trial the index the issue saw (0.998).
    cell["trials"][0]["metrics"].update(fair_jain=0.998)
    cell["trials"][0]["metrics"].pop("missing", None)
    cell["summary"]["fair_jain"] = 0.998
    text = render_run_tables(result, "table")
    fairness = text.split("fanin: fairness")[1].split("\n\n")[1]
    assert cell_of(fairness, DropTenth.name)[1] == "0.998, 10.0% lost"  # never a clean-looking Jain index


# -- 3. ranges, never a ± ------------------------------------------------------------------------------------
def spread_result() -> dict[str, Any]:
    """Three trials whose max round trips were 77, 50 863 and 212 µs (a stall in trial 2)."""
    result = make_result({"pipe": 10.0}, sizes=(64,), patterns=("pingpong",), trials=3, n=20000)
    cell = result["cells"][0]
    for trial, top in zip(cell["trials"], (77.0, 50863.0, 212.0)):
        trial["metrics"].update(rtt_max_us=top, rtt_p999_us=40.0)
    cell["summary"]["rtt_max_us"], cell["summary"]["rtt_p999_us"] = 212.0, 40.0
    return result


def test_the_spread_across_trials_is_a_range_explained_under_the_table(tmp_path, capsys) -> None:
    result = spread_result()
    for fmt in TEXT_FORMATS:
        text = report_text(result, tmp_path, capsys, fmt, "rtt_max_us")
        assert "212 (77.0–50863)" in text and "±" not in text
        assert text.count("(a–b): lowest–highest per-trial figure") == 1
    (table,) = report_tables(result, ["rtt_max_us"])
    assert table.ranges == [[(77.0, 50863.0)]]
    row = next(csv.DictReader(io.StringIO(render_tables([table], "csv"))))
    assert (float(row["min"]), float(row["max"])) == (77.0, 50863.0)
    assert "\\pm" not in latex.render(result, [table]) and "&plusmn;" not in html.render(result, [table], [], [])


# -- 5. one advice engine ------------------------------------------------------------------------------------
def test_ten_samples_mark_the_p99_in_its_cell_and_say_which() -> None:
    result = sweep(("loopback",), ("pingpong",), count=10)
    text = render_run_tables(result, "table")
    p99 = text.split("round trip, p99")[1].split("\n\n")
    assert cell_of(p99[1], "loopback")[1].endswith("[1]")
    assert p99[2].startswith("[1] p99 from 10 samples, fewer than the 1000 it needs")  # one trial: all it has
    p50 = text.split("round trip, p50")[1].split("\n\n")  # a p50 needs 20: 10 is too few for it as well
    assert cell_of(p50[1], "loopback")[1].endswith("[1]") and p50[2].startswith("[1] p50 from 10 samples")
    warned = [w for w in run_warnings(result) if "samples" in w]
    assert warned == ["pingpong: rtt_p99_us is a p99, which needs at least 1000 samples, but 1 cell(s) "
                      "have fewer (fewest: 10; marked in the tables): loopback 64 B; rerun with --count 1000 or "
                      "more, or with more --trials (percentiles pool every trial's samples)"]


def test_a_pooled_percentile_counts_the_samples_of_every_trial() -> None:
    """Three trials of 400 round trips: the p99 rests on 1200 pooled samples, enough; one trial of 400 is not."""
    pooled = render_run_tables(sweep(("loopback",), ("pingpong",), count=400, trials=3), "table")
    p99 = pooled.split("round trip, p99")[1].split("\n\n")
    assert not cell_of(p99[1], "loopback")[1].endswith("]")
    single = render_run_tables(sweep(("loopback",), ("pingpong",), count=400), "table")
    p99 = single.split("round trip, p99")[1].split("\n\n")
    assert cell_of(p99[1], "loopback")[1].endswith("[1]") and p99[2].startswith("[1] p99 from 400 samples")


def test_table_titles_say_which_figures_are_pooled_and_which_are_medians() -> None:
    text = render_run_tables(sweep(("loopback",), ("pingpong",), count=50, trials=3), "markdown")
    assert "pingpong: round trip, p99 (µs), lower is better; all samples of 3 trials pooled" in text
    assert "pingpong: CPU time per round trip (2 messages), all workers (µs), lower is better; median of 3 trials" \
        in text  # a per-trial figure: the median, with its range where the trials differ


def warning_lines(text: str) -> list[str]:
    """The warning lines of a text report ("  - ...") or a Markdown one ("- ...")."""
    block = text.split("warnings:\n")[-1] if "warnings:\n" in text else text.split("**Warnings**\n\n")[-1]
    return [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]


def test_run_and_its_report_print_identical_warning_lines(tmp_path, capsys) -> None:
    result = make_result(trials=3, n=300)
    for cell in result["cells"]:  # context switches are in report's tables only: they used to warn there alone
        for trial, ctx in zip(cell["trials"], (1.0, 2.0, 3.0)):
            trial["metrics"]["ctx_msg"] = ctx
    shown = run_warnings(result)
    assert any("ctx_msg" in w for w in shown) and any("--count 1000" in w for w in shown)
    for fmt in ("table", "markdown"):
        assert warning_lines(report_text(result, tmp_path, capsys, fmt)) == shown


def test_a_lossy_run_and_its_report_agree_and_name_the_lossy_cells(tmp_path, capsys) -> None:
    result = sweep((DropTenth.name, "loopback"), ("stream",))
    shown = run_warnings(result)
    assert shown == warning_lines(report_text(result, tmp_path, capsys, "table"))
    (loss,) = [w for w in shown if "lost" in w]
    assert loss.startswith("stream: messages lost, reordered or duplicated in 1 cell(s): loopback-drop10 64 B "
                           "(10.0%)")


def test_each_warning_appears_once_with_the_cells_it_concerns() -> None:
    result = make_result(trials=5, n=2000, noise=0.001, sizes=(64, 4096, 65536))
    message = "only 1 CPU available: cross-CPU placement impossible, both workers on CPU 0"
    for cell in result["cells"]:
        cell["warnings"] = [{"code": "placement", "message": message}]
    lines = [w for w in run_warnings(result) if message in w]
    assert lines == [f"pingpong pipe 64 B, pingpong pipe 4 KiB, pingpong pipe 64 KiB, pingpong unix 64 B and 14 "
                     f"more: {message}"]


def test_a_pinned_run_with_five_trials_is_not_told_to_add_trials_or_pin() -> None:
    result = make_result(trials=5, n=2000, noise=0.6)
    (spread,) = [a for a in advice.advise(result) if a.code == "spread" and a.message.startswith("stream")]
    assert "--trials" not in spread.fix and "pin" not in spread.fix.replace("pinned", "")
    assert spread.fix.startswith("the run was already pinned with 5 trials")
    result["config"].update(trials=3, pin="none")
    (spread,) = [a for a in advice.advise(result) if a.code == "spread" and a.message.startswith("stream")]
    assert "--trials 5" in spread.fix and "--pin" in spread.fix


def test_a_stall_in_one_trial_is_named() -> None:
    (stall,) = [a for a in advice.advise(spread_result()) if a.code == "stall"]
    assert stall.cells == ("pipe 64 B",)
    assert "trial 2: rtt_max_us 50863 µs vs rtt_p999_us 40.0 µs (1272x)" in stall.message


def test_a_busy_machine_is_recorded_at_start_and_end_and_advised() -> None:
    readings = iter([{"load_average": [5.5, 5.0, 4.0], "cpu_jiffies": {"total": 10_000, "steal": 100}},
                     {"load_average": [6.0, 5.0, 4.0], "cpu_jiffies": {"total": 12_000, "steal": 300}}])
    result = sweep(("loopback",), ("pingpong",), load=lambda: next(readings), metadata={"cpu_count": 2})
    meta = result["metadata"]
    assert meta["load_start"]["load_average"][0] == 5.5 and meta["load_end"]["cpu_jiffies"]["steal"] == 300
    found = {a.code: a.text() for a in advice.advise(result)}
    assert found["busy"].startswith("the machine was busy: load average 5.5 at the start and 6.0 at the end")
    assert found["steal"].startswith("the hypervisor took 10.0% of the CPU time during the run")
    quiet = sweep(("loopback",), ("pingpong",), load=lambda: dict(QUIET), metadata={"cpu_count": 2})
    assert not {"busy", "steal"} & {a.code for a in advice.advise(quiet)}


def test_the_load_probe_reads_this_machine() -> None:
    from ipclab.probes import machine_load

    reading = machine_load()
    assert len(reading["load_average"]) == 3
    assert reading["cpu_jiffies"]["total"] >= reading["cpu_jiffies"]["steal"] >= 0


# -- through the CLI: a plug-in transport that drops every 10th message ----------------------------------------
@pytest.mark.process
def test_the_cli_shows_the_known_loss_in_run_and_report_in_every_format(cli, tmp_path) -> None:
    tests = os.path.dirname(os.path.abspath(__file__))
    env = {"PYTHONPATH": os.pathsep.join([ROOT, tests]),
           "IPCLAB_EXTRA_TRANSPORTS": "drop10=lossy_transports:DropTransport"}
    out = tmp_path / "run.json"
    run = cli("run", "-t", "drop10,pipe", "-p", "stream", "-s", "64", "-n", "1000", "--warmup", "0", "-q",
              "-o", str(out), env=env, check=True)
    assert cell_of(run.stdout.split("throughput")[1], "drop10")[1].endswith(", 10.0% lost")
    assert "10.0 / 0 / 0" in run.stdout
    shown = [line.removeprefix("ipclab: warning: ") for line in run.stderr.splitlines()
             if line.startswith("ipclab: warning: ")]
    assert any("drop10 64 B (10.0%)" in w for w in shown)
    report = cli("report", str(out), env=env, check=True)
    assert report.stdout.count(", 10.0% lost") >= 3 and warning_lines(report.stdout) == shown
    for fmt, needle in (("markdown", "10.0% lost"), ("latex", "10.0\\% lost"), ("html", "10.0% lost")):
        assert needle in cli("report", str(out), "--format", fmt, env=env, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(cli("report", str(out), "--format", "csv", env=env, check=True).stdout)))
    assert {float(r["loss_pct"]) for r in rows if r["transport"] == "drop10" and r["metric"] == "mb_s"} == {10.0}
