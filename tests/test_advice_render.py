"""Advice objects and the one table renderer, from synthetic results (no processes)."""

from __future__ import annotations

import argparse

from synthetic import make_result

from ipclab.report import advice
from ipclab.report.commands import cmd_report, report_tables
from ipclab.report.tables import build_tables, pivot, render_run_tables, render_tables


def codes(items: list[advice.Advice]) -> list[str]:
    return [a.code for a in items]


def test_advice_objects_carry_code_cells_and_fix() -> None:
    result = make_result(trials=3, n=300, noise=0.6, metadata={"cpu_affinity": [0], "virtualization": "KVM"})
    result["interrupted"] = True
    items = advice.advise(result, report_tables(result, ["rtt_p99_us", "mb_s"]))
    assert codes(items) == ["interrupted", "vm", "cpus", "samples", "spread", "spread"]
    samples = items[3]
    assert samples.fix.startswith("rerun with --count 1000 or more") and "pipe 64 B" in samples.cells
    assert samples.text() == f"{samples.message}; {samples.fix}"
    assert all(a.fix for a in items)


def test_cell_warnings_are_objects_or_old_strings_and_spread_is_said_once() -> None:
    result = make_result(trials=5, n=2000, noise=0.001)
    cell = result["cells"][0]
    cell["warnings"] = [{"code": "spread", "message": "rtt_p50_us differs by 40% across trials"},
                        {"code": "corrupt", "message": "trial 1: 3 corrupt message(s)"},
                        "an old plain-string warning"]
    items = advice.advise(result, report_tables(result, ["rtt_p50_us"]))
    assert codes(items) == ["corrupt", "note"]  # the cell's spread is left to the per-metric advice
    assert items[0].text() == "pingpong pipe 64 B: trial 1: 3 corrupt message(s)"
    assert items[0].cells == ("pingpong pipe 64 B",)
    assert items[1].text() == "pingpong pipe 64 B: an old plain-string warning"


def test_run_and_report_share_the_engine() -> None:
    result = make_result(trials=1)
    assert "one_trial" in codes(advice.advise(result))
    assert advice.run_warnings(result) == advice.lines(advice.advise(result, build_tables(result)))
    assert advice.report_warnings(result, build_tables(result)) == advice.run_warnings(result)


def test_one_renderer_for_run_and_report(tmp_path, capsys) -> None:
    from ipclab import results

    result = make_result(trials=3)
    tables = build_tables(result)
    for fmt in ("table", "markdown", "github", "csv", "json"):
        assert render_run_tables(result, fmt) == render_tables(tables, fmt)
    assert "|:--" in render_run_tables(result, "markdown")
    path = tmp_path / "r.json"
    results.save(result, str(path))
    args = argparse.Namespace(result=str(path), metric="rtt_p50_us,rtt_p99_us,cpu_us_msg,mb_s,msg_s",
                              format="markdown", output=None, force=False, no_plots=True)
    assert cmd_report(args) == 0
    shown = capsys.readouterr().out
    assert render_tables(report_tables(result, args.metric.split(",")), "markdown") in shown


def test_a_figure_the_pattern_could_not_compute_is_an_explained_empty_cell() -> None:
    result = make_result(trials=2, patterns=("pingpong",))
    for cell in result["cells"]:
        for trial in cell["trials"]:
            trial["metrics"]["missing"] = {"rtt_p99_us": "too few round trips"}
        cell["summary"].pop("rtt_p99_us")
    (table,) = [t for t in build_tables(result) if t.metric.key == "rtt_p99_us"]  # shown, not dropped
    assert all(v is None for row in table.values for v in row)
    assert table.rows[0][1] == "- [1]" and table.notes == ["too few round trips"]
    assert pivot(result, "pingpong", "rtt_p50_us").notes == []
