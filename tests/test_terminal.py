"""What a user sees on an 80-100 column terminal: list, sysinfo, run/report/compare tables fit 100 columns
(measured on real output), titles wrap at word boundaries, placement marks with a legend, a progress bar that
stands still, help that explains, --format github as markdown, compare in LaTeX/HTML, serve's hints and its busy
line over a real socket."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import socket
import threading
import time
from html.parser import HTMLParser

import pytest
from conftest import ROOT
from synthetic import make_result

from ipclab import results
from ipclab.cli import main
from ipclab.cli.listing import render as render_list
from ipclab.cli.listing import transport_rows
from ipclab.cli.sysinfo import render as render_sysinfo
from ipclab.patterns import specs
from ipclab.progress import Progress
from ipclab.report.layout import fit
from ipclab.report.tables import build_tables, render_tables
from ipclab.servers.commands import _try_line, dialable
from ipclab.servers.conn import ServerConfig
from ipclab.servers.echo import EchoService
from ipclab.servers.loop import Server

WIDTH = 100
SAMPLE = os.path.join(ROOT, "results", "samples", "sweep.json")


@pytest.fixture(autouse=True)
def columns(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))


def too_wide(text: str, width: int = WIDTH) -> list[str]:
    return [line for line in text.splitlines() if len(line) > width]


def unwrapped(text: str) -> str:
    return " ".join(text.split())


# -- ipclab list / sysinfo --------------------------------------------------------------------------------
def test_list_fits_100_columns_and_names_every_transport(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert not too_wide(out)
    rows = transport_rows()
    firsts = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    for r in rows:
        assert r["name"] in firsts
        assert unwrapped(r["summary"]) in unwrapped(out)  # the mechanism, perhaps on wrapped lines
    udp = next(line for line in out.splitlines() if line.startswith("udp "))
    assert udp.split()[1:6] == ["yes", "no", "no", "yes", "65507"]


def test_list_explains_an_unavailable_transport_in_a_note() -> None:
    rows = copy.deepcopy(transport_rows())
    rows[0].update(available=False, unavailable_reason="posix_ipc is not installed: pip install posix_ipc")
    text = render_list(rows, 80)
    assert not too_wide(text, 80)
    assert re.search(rf"^{rows[0]['name']} +no \[1\]", text, re.M)
    assert "[1] posix_ipc is not installed: pip install posix_ipc" in text
    wide = render_list(transport_rows(), 250)  # room for everything: the mechanism on the row
    assert "mechanism" in wide.splitlines()[0] and len(wide.splitlines()) < len(text.splitlines())


def test_list_json_is_for_machines(capsys) -> None:
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == {r["name"] for r in transport_rows()}


def parse_sysinfo(text: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    group = ""
    for line in text.splitlines():
        if not line.startswith(" "):
            group = ""
        parts = line.split(None, 1)
        if len(parts) == 1:
            group = parts[0]
            continue
        key = f"{group}.{parts[0]}" if line.startswith("  ") and group else parts[0]
        facts[key] = parts[1]
    return facts


def test_sysinfo_in_human_units_with_the_facts_of_its_json(capsys) -> None:
    assert main(["sysinfo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert main(["sysinfo"]) == 0
    out = capsys.readouterr().out
    assert not too_wide(out)
    facts = parse_sysinfo(out)
    assert facts["kernel"] == info["kernel"] and facts["cpu_count"] == str(info["cpu_count"])
    assert "None" not in out and "\t" not in out
    assert facts["cpu_governor"] == (info["cpu_governor"] or "unknown")
    if info.get("memory_total_bytes"):
        assert facts["memory_total"] == f"{info['memory_total_bytes'] / 2**30:.2f} GiB"
    if info.get("load_average"):
        assert facts["load_average"].split()[:3] == [f"{v:.2f}" for v in info["load_average"]]
    tcp_rmem = info["socket_buffers"]["tcp_rmem"]
    if tcp_rmem:
        assert "\t" not in tcp_rmem and facts["socket_buffers.tcp_rmem"].startswith(tcp_rmem + " B")
    assert facts["pipe_size"].startswith(f"{info['pipe_size_bytes']} B")
    for key, value in info.items():  # every fact is on the screen, a group's members under it
        if isinstance(value, dict):
            assert all(f"{key}.{k.removesuffix('_bytes')}" in facts for k in value)
        else:
            assert key.removesuffix("_bytes") in facts


def test_sysinfo_text_says_unknown_for_what_the_machine_does_not_say() -> None:
    text = render_sysinfo({"cpu_governor": None, "load_average": [0.123456, 1.5, 2.0],
                           "memory_total_bytes": 3 * 2**30, "socket_buffers": {"tcp_rmem": "4096\t131072\t6291456"}},
                          WIDTH)
    facts = parse_sysinfo(text)
    assert facts == {"cpu_governor": "unknown", "load_average": "0.12 1.50 2.00 (1, 5, 15 min)",
                     "memory_total": "3 GiB", "socket_buffers.tcp_rmem": "4096 131072 6291456 B (min default max)"}


# -- tables --------------------------------------------------------------------------------------------------
def test_report_tables_fit_100_columns_and_titles_wrap_between_words(capsys) -> None:
    result = results.load(SAMPLE)
    tables = build_tables(result)
    text = render_tables(tables, "table")
    assert not too_wide(text)
    for t in tables:  # the title is on screen whole: its words, in order, none cut
        assert unwrapped(t.title) in unwrapped(text)
        for word in t.title.split():
            assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", text), word
    assert main(["report", SAMPLE]) == 0
    out = capsys.readouterr().out
    tables_part = out[out.index("\n\n"):out.index("warnings:") if "warnings:" in out else None]
    assert not too_wide(tables_part)


def test_a_row_placed_otherwise_is_marked_with_a_legend_line() -> None:
    result = make_result({"pipe": 10.0, "shm-spin": 2.0}, patterns=("pingpong",), trials=3)
    for cell in result["cells"]:
        if cell["transport"] == "shm-spin":
            cell["placement"] = "cross CPUs (server 0, client 1)"
    (table, *_) = build_tables(result)
    labels = [row[0] for row in table.rows]
    assert labels == ["pipe", "shm-spin ×"] and table.transports == ["pipe", "shm-spin"]
    assert "× = server and client on different CPUs (server 0, client 1)" in table.legend
    assert table.title.endswith("same CPU (1) unless marked")
    text = render_tables([table], "table")
    assert "[cross" not in text and "× = server and client on different CPUs" in text
    rows = list(csv.DictReader(io.StringIO(render_tables([table], "csv"))))
    assert {r["transport"] for r in rows} == {"pipe", "shm-spin"}
    assert {r["placement"] for r in rows if r["transport"] == "shm-spin"} == {"cross CPUs (server 0, client 1)"}
    assert json.loads(render_tables([table], "json"))[0]["transports"] == ["pipe", "shm-spin"]


def test_a_table_too_wide_puts_ranges_under_figures_then_splits_columns() -> None:
    columns = ["transport", *(f"{k} KiB" for k in range(5))]
    rows = [["shm", *("21237 (15888–28728)" for _ in range(5))], ["pipe", *("5.38" for _ in range(5))]]
    assert len(fit(columns, rows, 200)[0].splitlines()) == 4  # room enough: one line per row
    blocks = fit(columns, rows, WIDTH)
    assert all(not too_wide(b) for b in blocks) and len(blocks) == 1  # stacked: 5 narrow columns fit
    lines = blocks[0].splitlines()
    assert lines[2].split() == ["shm", *["21237"] * 5] and lines[3].split() == ["(15888–28728)"] * 5
    many = ["transport", *(f"{k} B" for k in range(20))]
    rows = [["shm", *("21237 (15888–28728)" for _ in range(20))]]
    blocks = fit(many, rows, WIDTH)
    assert len(blocks) > 1 and all(not too_wide(b) for b in blocks)
    headers = [b.splitlines()[0].split()[1::2] for b in blocks]  # "0 B 1 B ..." -> the sizes' numbers
    assert [n for h in headers for n in h] == [str(k) for k in range(20)]  # every column once, in order


# -- progress --------------------------------------------------------------------------------------------
class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_label_keeps_one_width_and_spells_out_the_trial() -> None:
    progress = Progress(stream=Tty(), label_width=len("pingpong unix-seqpacket 64 KiB"))
    progress("start", total=24, cells=12)
    texts = [progress.describe(label, 1, 2) for label in ("stream tcp 64 B", "pingpong unix-seqpacket 64 KiB",
                                                          "fanin pipe 1 MiB")]
    try:
        assert len({len(t) for t in texts}) == 1
        assert all(t.rstrip().endswith("trial 1/2") for t in texts)
        description = progress._bar.tasks[0].description if progress._bar else ""
        assert len(description) == len(texts[0])
        progress("trial", label="pingpong pipe 64 B", trial=2, trials=2)
        assert progress._bar.tasks[0].description.rstrip().endswith("trial 2/2")
    finally:
        progress.__exit__(None, None, None)
    one = Progress(stream=Tty(), label_width=20)
    one("start", total=3, cells=3)
    try:
        assert "trial" not in one.describe("pingpong pipe 64 B", 1, 1)  # one trial per cell: nothing to count
    finally:
        one.__exit__(None, None, None)


def test_plain_progress_lines_say_trial() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress("start", total=2, cells=1)
    progress("trial", label="pingpong pipe 64 B", trial=1, trials=2)
    assert stream.getvalue() == "ipclab: pingpong pipe 64 B (trial 1/2)\n"


# -- help ------------------------------------------------------------------------------------------------
def help_of(capsys, *command: str) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return str(capsys.readouterr().out)


@pytest.mark.parametrize("command", ["run", "list", "sysinfo", "report", "plot", "compare", "clean", "serve"])
def test_help_fits_100_columns(capsys, command) -> None:
    text = help_of(capsys, command)
    assert not too_wide(text), too_wide(text)


def test_list_and_sysinfo_help_describe_the_command(capsys) -> None:
    assert "whether it can run on this machine" in help_of(capsys, "list")
    assert "records about this machine in every result" in help_of(capsys, "sysinfo")


def test_run_help_explains_every_registered_pattern(capsys) -> None:
    text = help_of(capsys, "run")
    block = unwrapped(text.split("patterns (--pattern):")[1].split("examples:")[0])
    for spec in specs():
        assert f"{spec.name} {unwrapped(spec.summary)}" in block


@pytest.mark.parametrize("command", [("run",), ("report",), ("compare",)])
def test_format_help_states_its_default(capsys, command) -> None:
    text = unwrapped(help_of(capsys, *command))
    assert "--format FORMAT, -f FORMAT table (default)," in text


def test_bad_format_is_one_line_naming_the_value_and_the_choices(capsys) -> None:
    assert main(["report", SAMPLE, "--format", "word"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'word'" in err and "markdown" in err and "Traceback" not in err


# -- --format github, compare formats ---------------------------------------------------------------------
def test_github_is_markdown_with_a_note(capsys) -> None:
    assert main(["report", SAMPLE, "-f", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert main(["report", SAMPLE, "-f", "github"]) == 0
    out, err = capsys.readouterr()
    assert out == markdown and "-:|" in out  # numbers right-aligned, which tabulate's github table did not do
    assert "ipclab: note: --format github is --format markdown" in err


@pytest.fixture
def two_results(tmp_path) -> tuple[str, str]:
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    results.save(make_result(), a)
    results.save(make_result(factor=1.3, seed=2), b)
    return a, b


class Cells(HTMLParser):
    """Each table row as its cells' text (a cell's figure may be split into spans: joined with spaces)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.cell = False
            if self.rows and self.rows[-1]:
                self.rows[-1][-1] = " ".join(self.rows[-1][-1].split())

    def handle_data(self, data: str) -> None:
        if self.cell and self.rows:
            self.rows[-1][-1] += " " + data


def test_compare_writes_text_markdown_latex_and_html(capsys, two_results) -> None:
    a, b = two_results
    assert main(["compare", a, b]) == 0
    text = capsys.readouterr().out
    assert not too_wide(text) and "B worse" in text
    assert main(["compare", a, b, "-f", "latex"]) == 0
    latex = capsys.readouterr().out
    assert latex.count("\\begin{table}") == latex.count("\\end{table}") >= 2 and "\\toprule" in latex
    assert "95\\% CI" in latex and "B worse" in latex
    assert main(["compare", a, b, "-f", "html"]) == 0
    page = capsys.readouterr().out
    parser = Cells()
    parser.feed(page)
    header = parser.rows[0]
    assert header == ["transport", "size", "A", "B", "B/A", "95% CI", "verdict"]
    body = [r for r in parser.rows if r and r[0] != "transport"]
    assert body and all(len(r) == len(header) and r[-1] for r in body)
    assert any(r[-1].startswith("B worse") for r in body) and any(r[0] == "udp" for r in body)
    assert main(["compare", a, b, "-f", "markdown"]) == 0
    assert "| transport" in capsys.readouterr().out


# -- serve -------------------------------------------------------------------------------------------------
def test_hints_never_dial_a_wildcard() -> None:
    assert dialable("0.0.0.0") == "127.0.0.1" and dialable("::") == "::1" and dialable("10.1.2.3") == "10.1.2.3"
    echo = ServerConfig(service="echo", kind="tcp", host="0.0.0.0")
    assert _try_line(echo, "tcp 0.0.0.0:9000") == "nc -N 127.0.0.1 9000"
    udp = ServerConfig(service="echo", kind="udp", host="::")
    assert _try_line(udp, "udp [::]:9000") == "nc -u -w1 ::1 9000"
    when = ServerConfig(service="time", kind="udp")
    assert _try_line(when, "udp 127.0.0.1:13") == "echo | nc -u -w1 127.0.0.1 13"
    file = ServerConfig(service="file", kind="tcp")
    assert _try_line(file, "tcp 127.0.0.1:70") == "printf 'NAME\\n' | nc -N 127.0.0.1 70"


def test_an_echo_client_over_the_limit_reads_busy_then_end_of_stream() -> None:
    server = Server(ServerConfig(service="echo", kind="tcp", max_clients=1, idle_timeout=5.0, quiet=True),
                    EchoService())
    where = server.open()
    port = int(where.rpartition(":")[2])
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.serve_forever(stop_after=0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as first:
            first.sendall(b"hi")
            assert first.recv(10) == b"hi"  # the one slot is taken
            with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
                got = b""
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    chunk = second.recv(200)
                    if not chunk:
                        break
                    got += chunk
                assert got == b"ipclab: server busy (1 connection), try again later\n"
            first.sendall(b"still here")
            assert first.recv(20) == b"still here"  # the refusal did not disturb the client being served
    finally:
        stop.set()
        thread.join(5)
        server.close()
