"""report/plot selections (--transport, --pattern, --size), --list-metrics, n in latency titles, CSV digits.

Fast tier: synthetic results, ``ipclab.cli.main`` in-process, no processes started.
"""

from __future__ import annotations

import csv
import io

import pytest
from synthetic import make_result

from ipclab import results
from ipclab.cli import main
from ipclab.report import plot
from ipclab.report.metrics import METRICS
from ipclab.report.tables import build_tables, render_csv


def save(tmp_path, result) -> str:
    path = str(tmp_path / "r.json")
    results.save(result, path)
    return path


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_report_selects_transports_patterns_and_sizes(tmp_path, capsys):
    path = save(tmp_path, make_result(sizes=(64, 4096, 65536), trials=2))
    assert main(["report", path, "--format", "csv", "--transport", "pipe,udp", "--pattern", "pingpong",
                 "--size", "64,64K"]) == 0
    rows = csv_rows(capsys.readouterr().out)
    assert rows
    assert {r["transport"] for r in rows} == {"pipe", "udp"}
    assert {r["pattern"] for r in rows} == {"pingpong"}
    assert {r["size_bytes"] for r in rows} == {"64", "65536"}


def test_report_selection_reaches_the_text_tables(tmp_path, capsys):
    path = save(tmp_path, make_result(trials=2))
    assert main(["report", path, "-t", "unix", "-s", "4K"]) == 0
    out = capsys.readouterr().out
    assert "unix" in out and "4 KiB" in out
    assert "pipe" not in out and "64 B" not in out


@pytest.mark.parametrize("flag, value, has", [
    ("--transport", "tcp", "pipe, unix, udp"),
    ("--pattern", "reqrep", "pingpong, stream"),
    ("--size", "8K", "64 B, 4 KiB"),
])
@pytest.mark.parametrize("command", ["report", "plot"])
def test_a_value_the_result_lacks_is_one_line_and_exit_2(tmp_path, capsys, command, flag, value, has):
    path = save(tmp_path, make_result(trials=2))
    args = [command, path, flag, value]
    if command == "plot":
        args += ["-o", str(tmp_path / "p.png")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ipclab: error: ")
    assert flag in err and has in err
    assert (value if flag != "--size" else "8 KiB") in err
    assert not (tmp_path / "p.png").exists()


def test_plot_takes_a_selection(tmp_path, capsys, monkeypatch):
    path = save(tmp_path, make_result(trials=2))
    seen = []
    real = plot.render

    def spy(result, kind, fmt="png"):
        seen.append({(c["transport"], c["pattern"], c["size_bytes"]) for c in result["cells"]})
        return real(result, kind, fmt)

    monkeypatch.setattr(plot, "render", spy)
    out = tmp_path / "p.png"
    assert main(["plot", path, "-o", str(out), "--transport", "pipe", "--size", "64"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert seen == [{("pipe", "pingpong", 64), ("pipe", "stream", 64)}]


def test_list_metrics_explains_every_metric(capsys):
    assert main(["report", "--list-metrics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    keyed = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    for key, metric in METRICS.items():
        line = keyed[key]
        assert metric.title in line
        assert ("higher" if metric.higher_is_better else "lower") in line
        assert (metric.unit or "-") in line and (metric.per or "-") in line
    assert "one-way latency" in keyed["owl_p50_us"]
    assert "request to last reply byte" in keyed["ttlb_p99_us"]
    assert "connections per second" in keyed["conn_s"]
    assert any(line.strip().endswith("pingpong: round trips per second (1 / mean round trip)") for line in lines)


def test_metric_help_states_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: each pattern's report tables" in out
    assert "--list-metrics" in out and "--transport" in out


def pool(cell, samples: int) -> None:
    cell["pooled"] = {"rtt": {"samples": samples, "trials": 3, "keys": ["rtt_p50_us", "rtt_p99_us"],
                              "quantiles_ns": []}}


def test_latency_title_gives_the_pooled_sample_count():
    result = make_result(patterns=("pingpong",), trials=3)
    for cell in result["cells"]:
        pool(cell, 3000)
    titles = [t.title for t in build_tables(result, ["rtt_p50_us", "cpu_us_msg"])]
    assert "n = 3000 round trips;" in titles[0]
    assert "n = " not in titles[1]  # not a latency distribution


def test_latency_title_gives_a_range_when_cells_differ():
    result = make_result(patterns=("pingpong",), trials=3)
    for i, cell in enumerate(result["cells"]):
        pool(cell, 900 if i == 0 else 3000)
    (table,) = build_tables(result, ["rtt_p99_us"])
    assert "n = 900–3000 round trips" in table.title


def test_csv_rounds_away_float_noise():
    result = make_result({"pipe": 10.0}, sizes=(64,), patterns=("pingpong",), trials=3)
    cell = result["cells"][0]
    cell["summary"]["rtt_p50_us"] = 21.652310000000003
    cell["range"] = {"rtt_p50_us": [0.1 + 0.2, 1234567.891]}
    (row,) = csv_rows(render_csv(build_tables(result, ["rtt_p50_us"])))
    assert (row["value"], row["min"], row["max"]) == ("21.6523", "0.3", "1234570.0")
    assert (row["trials"], row["placement"]) == ("3", "same CPU (1)")
