"""The latency-vs-load view of open-loop (--rate) cells: the load table in every report format, the saturated
mark, size pivots / compare / select that keep rates apart, and ``plot --kind load``.

Fast tier: synthetic results (tests/synthetic_load.py), ``ipclab.cli.main`` in-process, no processes started.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os

import pytest
from conftest import ROOT
from synthetic import make_result
from synthetic_load import RATES, load_result

from ipclab import results
from ipclab.cli import main
from ipclab.report import compare, load, plot
from ipclab.report.metrics import format_number
from ipclab.report.tables import build_tables, pivot


def save(tmp_path, result, name: str = "r.json") -> str:
    path = str(tmp_path / name)
    results.save(result, path)
    return path


def cell(result, transport: str, rate: float | None, pattern: str = "pingpong", size: int = 64):
    return next(c for c in result["cells"] if c["pattern"] == pattern and c["transport"] == transport
                and c["size_bytes"] == size and c.get("rate") == rate)


def load_table(tables):
    return next(t for t in tables if t.rates and t.metric.key == "rtt_p50_us")


def parse_text_table(text: str, title_word: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header and rows (by first column) of the simple-format table under the title containing the word."""
    block = text.split(title_word, 1)[1].split("\n\n", 2)[1]
    lines = [ln for ln in block.splitlines() if ln.strip() and not set(ln.strip()) <= {"-", " "}]
    header = lines[0].split()
    rows = {}
    for line in lines[1:]:
        name = line.split()[0]
        rows[name] = [part.strip() for part in line[len(name):].split("  ") if part.strip()]
    return header, rows


# -- the table --------------------------------------------------------------------------------------------
def test_load_table_columns_are_offered_rates_in_order_then_max_and_cells_are_p50_p99():
    result = load_result(saturate_above=None)
    table = load_table(build_tables(result))
    assert table.columns == ["transport", "1k", "10k", "50k", "max"]
    assert table.rates == [*RATES, None]
    assert [r[0] for r in table.rows] == ["pipe", "tcp"]
    for r, name in enumerate(("pipe", "tcp")):
        for i, rate in enumerate(table.rates):
            s = cell(result, name, rate)["summary"]
            assert table.rows[r][i + 1].split(" [")[0] == f"{format_number(s['rtt_p50_us'])} / " \
                                                          f"{format_number(s['rtt_p99_us'])}"
            assert table.values[r][i] == pytest.approx(s["rtt_p50_us"])
            assert table.extra["rtt_p99_us"][r][i] == pytest.approx(s["rtt_p99_us"])
    # Latency grows with the offered load in the synthetic cells: the table keeps that order.
    assert table.values[0][0] < table.values[0][1] < table.values[0][2]
    # The title says what is counted: the pattern's distribution, from the intended send, pooled, n.
    assert "from the intended send time" in table.title and "p50 / p99 (µs) per round trip" in table.title
    assert "all samples of 2 trials pooled; n = 2000 round trips" in table.title
    assert any(text.startswith("max: closed loop") for text in table.legend)


def test_rows_name_the_size_when_there_are_several():
    table = load_table(build_tables(load_result(sizes=(64, 4096), saturate_above=None)))
    assert [r[0] for r in table.rows] == ["pipe 64 B", "pipe 4 KiB", "tcp 64 B", "tcp 4 KiB"]
    assert table.row_keys == [("pipe", 64), ("pipe", 4096), ("tcp", 64), ("tcp", 4096)]


def test_lag_table_gives_the_schedule_lag_of_each_open_loop_cell():
    result = load_result(saturate_above=None)
    lag = next(t for t in build_tables(result) if t.metric.key == "lag_p50_us")
    assert lag.columns == ["transport", "1k", "10k", "50k"]  # no max: a closed loop has no schedule
    s = cell(result, "tcp", 10000.0)["summary"]
    assert lag.rows[1][2] == f"{format_number(s['lag_p50_us'])} / {format_number(s['lag_p99_us'])}"
    assert "schedule lag" in lag.title and "harness's own error" in lag.title


@pytest.mark.parametrize("warn", [True, False])
def test_saturated_mark_iff_warning_or_achieved_rate_below_offered(warn):
    result = load_result(saturate_above=10000.0, warn=warn)
    table = load_table(build_tables(result))
    for r, name in enumerate(("pipe", "tcp")):
        for i, rate in enumerate(table.rates):
            text = table.rows[r][i + 1]
            if rate == 50000.0:
                achieved = cell(result, name, rate)["summary"]["achieved_msg_s"]
                assert text.endswith(f"{load.SATURATED_MARK} {load.format_rate(round(achieved))}/s"), text
            else:
                assert load.SATURATED_MARK not in text
    assert load.SATURATED_LEGEND in table.legend


def test_a_saturated_warning_alone_marks_the_cell_and_no_mark_means_no_legend():
    result = load_result(saturate_above=None)
    assert load.SATURATED_LEGEND not in load_table(build_tables(result)).legend
    cell(result, "pipe", 1000.0)["warnings"].append({"code": "saturated", "message": "could not keep up"})
    table = load_table(build_tables(result))
    assert table.rows[0][1].endswith(f"{load.SATURATED_MARK} 999/s")  # achieved 999 of 1000: the warning says
    assert load.SATURATED_MARK not in table.rows[1][1]
    assert load.SATURATED_LEGEND in table.legend


# -- every report format ----------------------------------------------------------------------------------
def test_report_text_and_markdown_show_the_load_table(tmp_path, capsys):
    result = load_result()
    path = save(tmp_path, result)
    assert main(["report", path]) == 0
    out = capsys.readouterr().out
    header, rows = parse_text_table(out, "from the intended send time")
    assert header == ["transport", "1k", "10k", "50k", "max"]
    p50 = cell(result, "pipe", 50000.0)["summary"]["rtt_p50_us"]
    assert rows["pipe"][2].startswith(f"{format_number(p50)} / ") and "*" in rows["pipe"][2]
    assert "*" not in rows["pipe"][0]
    assert main(["report", path, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    head = next(ln for ln in md.splitlines() if ln.startswith("| transport") and "max" in ln)
    assert [c.strip() for c in head.strip("|").split("|")] == ["transport", "1k", "10k", "50k", "max"]
    line = next(ln for ln in md.splitlines() if ln.startswith("| pipe") and " / " in ln)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[0] == "pipe" and cells[1] == rows["pipe"][0]


def test_report_csv_and_json_carry_rates_and_achieved(tmp_path, capsys):
    result = load_result()
    path = save(tmp_path, result)
    assert main(["report", path, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    sat = cell(result, "tcp", 50000.0)["summary"]
    by = {(r["metric"], r["transport"], r["rate"]): r for r in rows}
    assert float(by[("rtt_p99_us", "tcp", "50000.0")]["value"]) == pytest.approx(sat["rtt_p99_us"], rel=1e-5)
    assert float(by[("achieved_msg_s", "tcp", "50000.0")]["value"]) == pytest.approx(sat["achieved_msg_s"])
    assert by[("achieved_msg_s", "tcp", "50000.0")]["unit"] == "/s"
    assert float(by[("lag_p99_us", "pipe", "1000.0")]["value"]) == pytest.approx(
        cell(result, "pipe", 1000.0)["summary"]["lag_p99_us"], rel=1e-5)
    closed = [r for r in rows if r["metric"] == "rtt_p50_us" and r["rate"] == ""]
    assert closed and all(r["size_bytes"] == "64" for r in closed)  # size pivot rows and the max column
    assert main(["report", path, "--format", "json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    entry = next(t for t in tables if t.get("rates") and t["metric"] == "rtt_p50_us")
    assert entry["rates"] == [*RATES, None] and entry["rows"] == [["pipe", 64], ["tcp", 64]]
    assert entry["values"][1][1] == pytest.approx(cell(result, "tcp", 10000.0)["summary"]["rtt_p50_us"])


def test_report_latex_and_html_show_the_load_table(tmp_path, capsys):
    path = save(tmp_path, load_result())
    assert main(["report", path, "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert r"transport & 1k & 10k & 50k & max \\" in tex
    assert r"\label{tab:ipclab-pingpong-rtt-p50-us-load}" in tex
    assert tex.count(r"\label{tab:ipclab-pingpong-rtt-p50-us}") == 1  # the size pivot keeps its own label
    assert main(["report", path, "--format", "html", "--no-plots"]) == 0
    page = capsys.readouterr().out
    assert '<th scope="col" class="num">50k</th>' in page and '<th scope="col" class="num">max</th>' in page


def test_run_prints_the_load_table():
    from ipclab.cli.run import render_run_tables

    text = render_run_tables(load_result(), "table")
    header, rows = parse_text_table(text, "from the intended send time")
    assert header[-1] == "max" and set(rows) == {"pipe", "tcp"}


def test_a_result_without_open_loop_cells_has_no_load_table():
    assert not any(t.rates for t in build_tables(make_result()))


# -- pivots, compare, select keep rates apart -------------------------------------------------------------
def test_size_pivots_read_closed_loop_cells_only():
    result = load_result()
    table = pivot(result, "pingpong", "rtt_p50_us")
    assert table.columns == ["transport", "64 B"]
    assert table.values[0][0] == pytest.approx(cell(result, "pipe", None)["summary"]["rtt_p50_us"])
    only_open = load_result(closed=False)
    tables = build_tables(only_open)
    assert tables and all(t.rates for t in tables)  # no size pivot made of open-loop cells


def test_warnings_name_the_rate_of_an_open_loop_cell(tmp_path, capsys):
    path = save(tmp_path, load_result())
    assert main(["report", path]) == 0
    assert "pipe 64 B at 50k/s offered" in capsys.readouterr().out


def test_compare_matches_cells_by_rate():
    a = load_result(saturate_above=None)
    b = copy.deepcopy(a)
    for trial in cell(b, "tcp", 10000.0)["trials"]:
        trial["metrics"]["rtt_p50_us"] *= 2
    comp = compare.compare(a, b, ["rtt_p50_us"])
    rows = {(r.transport, r.rate): r for r in comp.rows if r.pattern == "pingpong"}
    assert set(rows) == {(t, r) for t in ("pipe", "tcp") for r in (*RATES, None)}
    assert rows[("tcp", 10000.0)].outcome["ratio"] == pytest.approx(2.0)
    assert rows[("tcp", 50000.0)].outcome["ratio"] == pytest.approx(1.0)
    assert rows[("tcp", None)].outcome["ratio"] == pytest.approx(1.0)
    text = compare.render_text(comp, "table")
    header = next(line for line in text.splitlines() if line.startswith("transport"))  # under the wrapped title
    assert header.split()[:3] == ["transport", "size", "rate"] and "10k/s" in text
    recs = {(r["transport"], r["rate"]): r for r in json.loads(compare.render_json(comp))["rows"]}
    assert recs[("tcp", 10000.0)]["ratio"] == pytest.approx(2.0)


def test_report_rate_selects_cells(tmp_path, capsys):
    path = save(tmp_path, load_result())
    assert main(["report", path, "--format", "csv", "--rate", "10k,50000"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {r["rate"] for r in rows} == {"10000.0", "50000.0"}
    assert main(["report", path, "--format", "csv", "--rate", "max"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and "rate" not in rows[0]  # closed-loop cells only: the CSV of a result without --rate
    assert {r["metric"] for r in rows} >= {"rtt_p50_us", "mb_s"} and "lag_p50_us" not in {r["metric"] for r in rows}


@pytest.mark.parametrize("command", ["report", "plot"])
@pytest.mark.parametrize("value, words", [("20k", ["20k", "1k, 10k, 50k, max"]), ("0", ["'0'", "above 0"]),
                                          ("fast", ["'fast'", "10k"])])
def test_a_rate_the_result_lacks_is_one_line_and_exit_2(tmp_path, capsys, command, value, words):
    path = save(tmp_path, load_result())
    args = [command, path, "--rate", value] + (["-o", str(tmp_path / "p.png")] if command == "plot" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("ipclab: error: --rate: ")
    assert all(w in err for w in words) and "Traceback" not in err


# -- plot --kind load -------------------------------------------------------------------------------------
def draw(result):
    from matplotlib.figure import Figure

    fig = Figure()
    plot._DRAW["load"](fig, result, plot._colors(result))
    return fig


def test_load_plot_draws_p50_and_p99_per_transport_against_achieved_rate():
    result = load_result()
    fig = draw(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() in ("-", "--")]
    colors = plot._colors(result)
    for name in ("pipe", "tcp"):
        mine = [ln for ln in lines if ln.get_color() == colors[name]]
        solid = next(ln for ln in mine if ln.get_linestyle() == "-")
        dashed = next(ln for ln in mine if ln.get_linestyle() == "--")
        achieved = [cell(result, name, r)["summary"]["achieved_msg_s"] for r in RATES]
        assert list(solid.get_xdata()) == pytest.approx(achieved)  # x = achieved, not offered
        assert list(solid.get_ydata()) == pytest.approx([cell(result, name, r)["summary"]["rtt_p50_us"]
                                                         for r in RATES])
        assert list(dashed.get_ydata()) == pytest.approx([cell(result, name, r)["summary"]["rtt_p99_us"]
                                                          for r in RATES])
        crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x" and ln.get_color() == colors[name]]
        assert [list(c.get_xdata()) for c in crosses] == [[pytest.approx(achieved[-1])]]  # the saturated cell
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()][:4] == ["pipe", "tcp", "p50", "p99"]
    assert any("saturated" in t.get_text() for t in legend.get_texts())
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # outside the axes
    title = ax.get_title() + fig.get_suptitle()
    assert "intended send" in title and "p50" in title and "p99" in title and "n = 2000 round trips per cell" in title


def test_load_plot_shows_each_closed_loop_cell_at_its_own_rate():
    """The max cell beside each line: a dotted p50-p99 bar at its own rate (1 / mean round trip), so the picture
    shows what the closed loop measured next to what the open loop did."""
    result = load_result()
    ax = draw(result).axes[0]
    colors = plot._colors(result)
    for name in ("pipe", "tcp"):
        summary = cell(result, name, None)["summary"]
        (bar,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":" and ln.get_color() == colors[name]]
        assert list(bar.get_xdata()) == pytest.approx([summary["msg_s"]] * 2)
        assert list(bar.get_ydata()) == pytest.approx([summary["rtt_p50_us"], summary["rtt_p99_us"]])
    assert any("closed loop" in t.get_text() for t in ax.get_legend().get_texts())


def test_plot_kind_load_writes_a_png_and_is_the_default_for_open_loop_only(tmp_path):
    path = save(tmp_path, load_result())
    out = tmp_path / "load.png"
    assert main(["plot", path, "--kind", "load", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert plot.default_kind(load_result(closed=False)) == "load"
    assert plot.default_kind(load_result()) == "latency"


def test_plot_kind_load_without_open_loop_cells_is_one_line_and_exit_2(tmp_path, capsys):
    path = save(tmp_path, make_result())
    assert main(["plot", path, "--kind", "load", "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no open-loop cells" in err and "--rate" in err
    assert not (tmp_path / "p.png").exists()


def test_size_plots_ignore_open_loop_cells():
    result = load_result()
    series = plot.series(load.closed_loop(result), "pingpong", "rtt_p50_us")
    assert series["pipe"] == [(64, pytest.approx(cell(result, "pipe", None)["summary"]["rtt_p50_us"]))]
    assert plot.render(result, "latency", "png").startswith(b"\x89PNG")


def test_html_report_embeds_the_load_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = save(tmp_path, load_result())
    assert main(["report", path, "--format", "html"]) == 0
    assert "Latency vs achieved rate" in capsys.readouterr().out


def test_an_open_loop_cell_that_is_not_applicable_says_why():
    result = load_result(saturate_above=None)
    result["cells"].append({"pattern": "pingpong", "transport": "tcp", "size_bytes": 64, "rate": 200000.0,
                            "status": "n/a", "reason": "cannot keep 64 requests in flight", "trials": [],
                            "summary": {}, "spread": {}, "warnings": []})
    table = load_table(build_tables(result))
    assert table.columns == ["transport", "1k", "10k", "50k", "200k", "max"]
    text, number = table.rows[1][4].split(" [")
    assert text == "n/a" and table.notes[int(number.rstrip("]")) - 1] == "cannot keep 64 requests in flight"
    assert table.rows[0][4] == ""  # pipe was not run at that rate


def test_the_shipped_experiment_is_the_issue_sweep():
    """Checked with its own reader until --rate is in the option table (then test_experiment validates it)."""
    import tomllib

    from ipclab.experiment import schema
    from ipclab.report.select import parse_rate

    with open(os.path.join(ROOT, "experiments", "latency-under-load.toml"), "rb") as f:
        keys = tomllib.load(f)
    assert set(keys) - {"rates"} <= set(schema())
    assert [parse_rate(str(r)) for r in keys["rates"]] == [1000.0, 10000.0, 50000.0, None]
    assert keys["transports"] == ["pipe", "unix", "tcp", "shm", "posix-mq", "zmq-ipc"]
    assert keys["patterns"] == ["pingpong"] and keys["sizes"] == [64] and keys["duration"] > 0
    assert "coordinated omission" in keys["description"] and "intended send time" in keys["description"]
