"""ipclab report / plot: every exporter's output checked structurally, warnings, -o safety, end to end."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from conftest import ROOT
from synthetic import add_na_cell, make_result

from ipclab import results
from ipclab.errors import ConfigError, IpclabError
from ipclab.report import advice, html, latex, plot
from ipclab.report.commands import report_tables
from ipclab.report.tables import build_tables, render_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def save(tmp_path, result, name="r.json"):
    path = tmp_path / name
    results.save(result, str(path))
    return str(path)


class PageParser(HTMLParser):
    """Collects tables (as lists of rows of cell text), images, links and tag names."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.captions: list[str] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._caption = []
        elif tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if key in a:
                self.refs.append(a[key])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "caption" and self._caption is not None:
            self.captions.append("".join(self._caption))
            self._caption = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)


# -- CSV ---------------------------------------------------------------------------------------------------
def test_csv_is_machine_clean_and_carries_the_medians_to_six_digits():
    result = make_result()
    add_na_cell(result, "pipe", 1 << 20, "too big, for the test")
    tables = build_tables(result, ["rtt_p50_us"])
    rows = list(csv.DictReader(io.StringIO(render_csv(tables))))
    assert set(rows[0]) == {"pattern", "metric", "unit", "transport", "size_bytes", "value", "status", "min", "max",
                            "loss_pct", "trials", "placement"}
    # 3 transports x 3 sizes (64, 4096 and the n/a 1 MiB column)
    assert len(rows) == 9
    summaries = {(c["transport"], c["size_bytes"]): c["summary"] for c in result["cells"] if c["status"] == "ok"
                 and c["pattern"] == "pingpong"}
    for row in rows:
        key = (row["transport"], int(row["size_bytes"]))
        if row["status"] == "ok":
            assert float(row["value"]) == pytest.approx(summaries[key]["rtt_p50_us"], rel=1e-5)
            assert len(row["value"].replace(".", "").lstrip("0")) <= 6  # six significant digits at most
            assert (row["trials"], row["placement"]) == ("5", "same CPU (1)")
        else:
            assert row["value"] == ""
    na = [r for r in rows if r["transport"] == "pipe" and r["size_bytes"] == str(1 << 20)]
    assert na[0]["status"] == "n/a"


# -- LaTeX -------------------------------------------------------------------------------------------------
def braces_balanced(text: str) -> bool:
    depth = 0
    for token in re.sub(r"\\[{}]", "", text):
        depth += token == "{"
        depth -= token == "}"
        if depth < 0:
            return False
    return depth == 0


def test_latex_uses_booktabs_and_escapes_names_and_units():
    result = make_result({"shm_ring": 5.0, "50%&co": 7.0, "pipe": 10.0})
    tables = build_tables(result, ["rtt_p50_us", "cpu_us_msg"])
    text = latex.render(result, tables, ["a warning with 100% and a_b"])
    body = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
    assert body.count(r"\begin{tabular}") == len(tables) == body.count(r"\end{tabular}")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert body.count(rule) == len(tables)
    assert body.count(r"\begin{table}") == body.count(r"\end{table}") == len(tables)
    assert r"shm\_ring" in body and r"50\%\&co" in body
    assert r"\ensuremath{\mu}s" in body and "µ" not in body
    assert braces_balanced(body)
    # Nothing special survives unescaped in the table rows.
    for line in body.splitlines():
        if line.strip().endswith(r"\\"):
            assert not re.search(r"(?<!\\)[_%&#$]", line.replace(" & ", " ")), line
    # Every row has as many cells as the header.
    header = next(line for line in body.splitlines() if line.strip().startswith("transport &"))
    rows = [line for line in body.splitlines() if line.strip().endswith(r"\\")]
    cols = header.count(" & ")
    assert all(r.replace(r"\&", "").count(" & ") == cols for r in rows if "tabular" not in r)
    # Warnings are comments, one line each.
    assert "% WARNING: a warning with 100% and a_b" in text


def test_latex_escape_neutralises_commands():
    out = latex.escape("\\input{/etc/passwd} $x$ ~ ^ # \x00 ±3 %")
    assert "\\input" not in out.replace("\\textbackslash{}input", "")
    assert braces_balanced(out)
    assert "\x00" not in out
    assert out.startswith("\\textbackslash{}input\\{/etc/passwd\\}")


# -- HTML --------------------------------------------------------------------------------------------------
def test_html_is_one_self_contained_page_with_tables_and_plots():
    result = make_result({"pipe": 10.0, "<script>alert(1)</script>": 12.0})
    result["metadata"]["virtualization"] = "KVM"
    tables = report_tables(result, None)
    plots = [("latency", plot.render(result, "latency")), ("cpu", plot.render(result, "cpu"))]
    page = html.render(result, tables, advice.report_warnings(result, tables), plots)
    parser = PageParser()
    parser.feed(page)
    parser.close()
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in parser.tags  # the hostile transport name is text, not a tag
    assert len(parser.tables) == len(tables) and parser.captions == [t.title for t in tables]
    first = parser.tables[0]
    assert first[0] == tables[0].columns and [r[0] for r in first[1:]] == [r[0] for r in tables[0].rows]
    assert "<script>alert(1)</script>" in [r[0] for r in first[1:]]
    assert len(parser.images) == 2
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert all(ref.startswith(("data:", "#")) for ref in parser.refs)  # no external assets
    assert "virtual machine" in page and "@media print" in page


def test_html_without_matplotlib_says_how_to_install(monkeypatch, tmp_path, capsys):
    from ipclab.report import commands

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(IpclabError, match=r"pip install 'ipclab\[plot\]'"):
        plot.require_matplotlib()
    plots, note = commands._html_plots(make_result())
    assert plots == [] and "pip install 'ipclab[plot]'" in note


# -- plots -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [k for k in plot.KINDS if k != "load"])  # load needs --rate cells: test_load_view
def test_every_plot_kind_is_a_png(kind):
    sizes = (64, 1024) if kind == "hist" else (64, 1024, 65536)  # hist: at most MAX_HIST_CELLS cells
    data = plot.render(make_result(sizes=sizes, trials=3), kind, "png")
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_svg_plot_is_well_formed_and_reproducible():
    result = make_result(trials=3)
    first = plot.render(result, "cdf", "svg")
    root = ET.fromstring(first)
    assert root.tag.endswith("svg")
    assert plot.render(result, "cdf", "svg") == first  # no timestamps or random ids


def test_plot_kind_without_data_is_a_config_error():
    with pytest.raises(ConfigError, match="stream throughput"):
        plot.render(make_result(patterns=("pingpong",), trials=2), "throughput")


# -- warnings ----------------------------------------------------------------------------------------------
def test_warnings_tell_the_user_what_to_do():
    result = make_result(trials=3, n=300, noise=0.6, metadata={"cpu_affinity": [0], "virtualization": "KVM"})
    result["cells"][0]["cpus"] = {"server": [0], "client0": [0], "client1": [0]}
    tables = report_tables(result, ["rtt_p99_us", "mb_s"])
    text = "\n".join(advice.report_warnings(result, tables))
    assert "needs at least 1000 samples" in text and "--count 1000" in text  # p99 from 300
    assert "trials disagree by more than 10%" in text and "--trials" in text
    assert "virtual machine (KVM)" in text
    assert "only 1 CPU(s) usable but cells ran 3 worker processes" in text


def test_a_clean_result_has_no_warnings():
    result = make_result(trials=5, n=2000, noise=0.001)
    assert advice.report_warnings(result, report_tables(result, ["rtt_p50_us", "rtt_p99_us", "mb_s"])) == []


def test_single_trial_warns_that_spread_is_unknown():
    result = make_result(trials=1)
    assert any("one trial per cell" in w for w in advice.report_warnings(result, report_tables(result, None)))


# -- the command -------------------------------------------------------------------------------------------
@pytest.mark.process
def test_report_formats_via_cli(cli, tmp_path):
    path = save(tmp_path, make_result(trials=3, n=300))
    md = cli("report", path, "--format", "markdown", check=True)
    assert "**pingpong: round trip, p50 (µs), lower is better" in md.stdout
    assert "| transport" in md.stdout and "**Warnings**" in md.stdout and "--count 1000" in md.stdout
    js = cli("report", path, "--format", "json", "--metric", "rtt_p50_us,mb_s", check=True)
    tables = json.loads(js.stdout)
    assert [(t["pattern"], t["metric"]) for t in tables] == [("pingpong", "rtt_p50_us"), ("stream", "mb_s")]
    assert "--count 1000" not in js.stderr  # p50 needs only 20 samples
    tex = cli("report", path, "--format", "latex", "-o", "-", check=True)
    assert r"\begin{tabular}" in tex.stdout


@pytest.mark.process
def test_report_unknown_metric_lists_known_ones(cli, tmp_path):
    path = save(tmp_path, make_result(trials=2))
    proc = cli("report", path, "--metric", "rtt_p5_us")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown metric 'rtt_p5_us'" in lines[0] and "rtt_p50_us" in lines[0]
    proc = cli("report", path, "--metric", "conn_s")  # known, but not recorded by these patterns
    assert proc.returncode == 2 and "not recorded" in proc.stderr and "rtt_p50_us" in proc.stderr


@pytest.mark.process
def test_output_file_is_never_overwritten_without_force(cli, tmp_path):
    path = save(tmp_path, make_result(trials=2))
    out = tmp_path / "report.md"
    out.write_text("my notes\n")
    proc = cli("report", path, "--format", "markdown", "-o", str(out))
    assert proc.returncode == 2 and "--force" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert out.read_text() == "my notes\n"
    cli("report", path, "--format", "markdown", "-o", str(out), "--force", check=True)
    assert out.read_text().startswith("_Measured 2026-01-01 with ipclab 0.1.0") and "**pingpong" in out.read_text()
    png = tmp_path / "p.png"
    png.write_bytes(b"keep")
    proc = cli("plot", path, "-o", str(png))
    assert proc.returncode == 2 and "--force" in proc.stderr and png.read_bytes() == b"keep"
    cli("plot", path, "-o", str(png), "--force", check=True)
    assert png.read_bytes().startswith(PNG_MAGIC)
    proc = cli("plot", path, "-o", str(tmp_path / "p.gif"))
    assert proc.returncode == 2 and ".png or .svg" in proc.stderr


@pytest.mark.process
def test_plot_without_matplotlib_is_one_clear_line(cli, tmp_path):
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    path = save(tmp_path, make_result(trials=2))
    proc = cli("plot", path, "-o", str(tmp_path / "x.png"), env={"PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"})
    assert proc.returncode == 1
    assert proc.stderr.strip() == "ipclab: error: plots need matplotlib, which is not installed: " \
                                  "pip install 'ipclab[plot]'"
    assert not (tmp_path / "x.png").exists()


@pytest.mark.process
def test_end_to_end_tiny_run_to_every_export(cli, tmp_path):
    run = tmp_path / "run.json"
    cli("run", "-t", "pipe", "-s", "64", "-n", "200", "-p", "pingpong", "-q", "-o", str(run), check=True)
    for fmt, name in (("markdown", "r.md"), ("latex", "r.tex"), ("csv", "r.csv"), ("html", "r.html")):
        cli("report", str(run), "--format", fmt, "-o", str(tmp_path / name), check=True)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8"))))
    assert {r["transport"] for r in rows} == {"pipe"} and all(float(r["value"]) > 0 for r in rows)
    assert r"\toprule" in (tmp_path / "r.tex").read_text()
    parser = PageParser()
    parser.feed((tmp_path / "r.html").read_text())
    assert parser.tables and parser.images
    for kind, name in (("latency", "l.png"), ("cdf", "c.svg")):
        cli("plot", str(run), "--kind", kind, "-o", str(tmp_path / name), check=True)
    assert (tmp_path / "l.png").read_bytes().startswith(PNG_MAGIC)
    assert ET.parse(tmp_path / "c.svg").getroot().tag.endswith("svg")


def test_markdown_and_latex_against_expected_text():
    result = make_result({"pipe": 10.0}, sizes=(64,), patterns=("pingpong",), trials=3)
    cell = result["cells"][0]
    cell["summary"]["rtt_p50_us"], cell["spread"]["rtt_p50_us"] = 10.4567, 0.3
    for trial, value in zip(cell["trials"], (9.0, 10.4567, 12.0)):
        trial["metrics"]["rtt_p50_us"] = value
    add_na_cell(result, "pipe", 70000, "datagram too big: 70000 > 65507 bytes")
    (table,) = build_tables(result, ["rtt_p50_us"])
    from ipclab.report.tables import render_text

    assert render_text(table, "github") == (
        "**pingpong: round trip, p50 (µs), lower is better; median of 3 trials; n = 2000 round trips per trial; "
        "same CPU (1)**\n\n"
        "| transport   |             64 B |   70000 B |\n"
        "|-------------|------------------|-----------|\n"
        "| pipe        | 10.5 (9.00–12.0) |   n/a [1] |\n\n"
        "[1] datagram too big: 70000 > 65507 bytes  \n"
        "(a–b): lowest–highest per-trial figure, where trials differ by over 10% of the median\n")
    assert latex.render_table(table) == (
        "\\begin{table}[htbp]\n  \\centering\n"
        "  \\caption{pingpong: round trip, p50 (\\ensuremath{\\mu}s), lower is better; median of 3 trials; "
        "n = 2000 round trips per trial; same CPU (1)}\n"
        "  \\label{tab:ipclab-pingpong-rtt-p50-us}\n  \\begin{tabular}{lrr}\n    \\toprule\n"
        "    transport & 64 B & 70000 B \\\\\n    \\midrule\n"
        "    pipe & 10.5 (9.00--12.0) & n/a [1] \\\\\n    \\bottomrule\n  \\end{tabular}\n"
        "  \\par\\smallskip\\footnotesize\n  [1] datagram too big: 70000 \\textgreater{} 65507 bytes\\par\n"
        "  (a--b): lowest--highest per-trial figure, where trials differ by over 10\\% of the median\\par\n"
        "\\end{table}\n")
