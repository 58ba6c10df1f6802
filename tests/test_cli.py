"""`ipclab run/list/sysinfo`: runs end to end through `python -m ipclab`, as a user runs them (process tier);
list, sysinfo and help in-process through ``ipclab.cli.main`` (fast tier)."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from ipclab import results
from ipclab.cli import main

CORE = ["pipe", "unix", "tcp", "udp"]


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.process
def test_run_prints_tables_and_saves_json(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "--transport", "tcp,udp,pipe", "--size", "64,4K", "--count", "200", "-q", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "pingpong: round trip, p50 (µs)" in proc.stdout
    assert "stream: throughput at the consumer (MB/s)" in proc.stdout
    assert f"result saved to {out}" in proc.stdout
    result = _load(str(out))
    assert result["format"] == "ipclab-result" and result["format_version"] == results.FORMAT_VERSION
    meta = result["metadata"]
    for key in ("ipclab_version", "python_version", "kernel", "cpu_model", "cpu_count", "start_method",
                "pipe_size_bytes", "socket_buffers"):
        assert key in meta, key
    assert result["config"]["sizes"] == [64, 4096]
    cells = result["cells"]
    assert {(c["pattern"], c["transport"], c["size_bytes"]) for c in cells} == {
        (p, t, s) for p in ("pingpong", "stream") for t in ("tcp", "udp", "pipe") for s in (64, 4096)}
    for c in cells:
        assert c["status"] == "ok", c
        assert c["count"] == 200 and len(c["trials"]) == 1
        assert c["placement"]
        probe = c["trials"][0]["raw"]["server"]["probe"]
        assert probe["cpu_user_s"] >= 0 and probe["ctx_voluntary"] >= 0 and probe["maxrss_bytes"] > 0
    for c in cells:
        if c["pattern"] == "pingpong":
            s = c["summary"]
            assert 0 < s["rtt_min_us"] <= s["rtt_p50_us"] <= s["rtt_p99_us"] <= s["rtt_max_us"]
        else:
            m = c["trials"][0]["metrics"]
            assert m["sent"] == 200 and m["received"] + m["lost"] == 200
            if c["transport"] != "udp":
                assert m["received"] == 200 and m["mb_s"] > 0


@pytest.mark.process
@pytest.mark.parametrize("transport", CORE)
def test_each_core_transport_both_patterns(cli, tmp_path, transport) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", transport, "-s", "100", "-n", "300", "-q", "-o", str(out), "--verify")
    assert proc.returncode == 0, proc.stderr
    cells = _load(str(out))["cells"]
    assert [c["pattern"] for c in cells] == ["pingpong", "stream"]
    for c in cells:
        assert c["status"] == "ok" and c["trials"][0]["metrics"]["corrupt"] == 0


@pytest.mark.process
def test_size_a_transport_cannot_carry_is_na_not_a_crash(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "udp,pipe", "-s", "0,1M", "-p", "stream", "-n", "50", "-q", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    cells = {(c["transport"], c["size_bytes"]): c for c in _load(str(out))["cells"]}
    assert cells[("udp", 1048576)]["status"] == "n/a"
    assert "65507" in cells[("udp", 1048576)]["reason"]
    assert cells[("pipe", 0)]["status"] == "n/a" and "empty" in cells[("pipe", 0)]["reason"]
    assert cells[("pipe", 1048576)]["status"] == "ok"
    assert cells[("udp", 0)]["status"] == "ok"  # an empty datagram is a valid message
    assert "n/a [" in proc.stdout and "65507" in proc.stdout


@pytest.mark.process
def test_trials_median_and_fresh_processes(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "pipe", "-p", "pingpong", "-s", "64", "-n", "200", "-k", "3", "-q", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    (cell,) = _load(str(out))["cells"]
    rates = sorted(t["metrics"]["msg_s"] for t in cell["trials"])  # a per-trial figure: the median of 3
    assert len(rates) == 3 and cell["summary"]["msg_s"] == rates[1] and cell["range"]["msg_s"] == [rates[0], rates[2]]
    assert cell["pooled"]["rtt"]["samples"] == 600  # percentiles: the pooled round trips of all 3 trials
    assert "median of 3 trials" in " ".join(proc.stdout.split())  # a title may wrap between words


@pytest.mark.process
def test_format_json_to_stdout_matches_file(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "pipe", "-s", "64", "-n", "100", "-q", "-o", str(out), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == _load(str(out))
    assert str(out) in proc.stderr


@pytest.mark.process
def test_output_dash_prints_json_and_writes_nothing(cli, tmp_path) -> None:
    proc = cli("run", "-t", "pipe", "-s", "64", "-n", "100", "-q", "-o", "-", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cells"]
    assert not os.path.exists(tmp_path / "results")


@pytest.mark.process
def test_default_output_goes_to_results_dir(cli, tmp_path) -> None:
    proc = cli("run", "-t", "pipe", "-p", "pingpong", "-s", "64", "-n", "100", "-q", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    files = os.listdir(tmp_path / "results")
    assert len(files) == 1 and files[0].startswith("ipclab-") and files[0].endswith(".json")
    assert f"results/{files[0]}" in proc.stdout


@pytest.mark.process
def test_csv_and_markdown_formats(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "pipe,tcp", "-s", "64", "-n", "100", "-q", "-o", str(out), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert {r["transport"] for r in rows} == {"pipe", "tcp"}
    p50 = [r for r in rows if r["metric"] == "rtt_p50_us"]
    assert len(p50) == 2 and all(float(r["value"]) > 0 for r in p50)
    proc = cli("run", "-t", "pipe", "-s", "64", "-n", "100", "-q", "-o", str(out), "--force", "--format", "markdown")
    assert "| transport" in proc.stdout and "|:--" in proc.stdout


def test_list_shows_every_transport(capsys) -> None:
    assert main(["list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name in CORE:
        assert rows[name]["available"] is True
    assert rows["udp"]["reliable"] is False and rows["udp"]["max_message"] == 65507
    assert rows["tcp"]["reliable"] is True
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "transports available" in text and "65507" in text


def test_sysinfo(capsys) -> None:
    assert main(["sysinfo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cpu_count"] >= 1 and info["kernel"] and info["pipe_size_bytes"] > 0
    assert main(["sysinfo"]) == 0
    assert "kernel" in capsys.readouterr().out


def test_no_command_prints_help(capsys) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("run", "list", "sysinfo", "report", "plot", "compare", "clean", "serve"):
        assert command in out


@pytest.mark.process
def test_entry_point_is_the_package_main(cli) -> None:
    """`python -m ipclab` reaches ipclab.cli:main, the script entry point pyproject names."""
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("ipclab ")


def _fake_subcommand(monkeypatch, handler) -> None:
    """A subcommand module registered as a new one is: the module, and one line in SUBCOMMANDS."""
    import sys
    import types

    import ipclab.cli

    module = types.ModuleType("fake_subcommand")

    def add_parser(subparsers) -> None:
        p = subparsers.add_parser("hello", help="a subcommand only this test knows")
        p.add_argument("--name", default="world")
        p.set_defaults(handler=handler)

    module.add_parser = add_parser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_subcommand", module)
    monkeypatch.setattr(ipclab.cli, "SUBCOMMANDS", (*ipclab.cli.SUBCOMMANDS, "fake_subcommand"))


def test_a_subcommand_is_one_module_and_one_line(monkeypatch, capsys) -> None:
    def hello(args) -> int:
        print(f"hello {args.name}")
        return 3

    _fake_subcommand(monkeypatch, hello)
    assert main(["hello", "--name", "ipclab"]) == 3
    assert capsys.readouterr().out == "hello ipclab\n"
    assert main([]) == 2 and "a subcommand only this test knows" in capsys.readouterr().out


@pytest.mark.parametrize("error, code", [("config", 2), ("worker", 1), ("bug", None)])
def test_the_cli_alone_turns_errors_into_exit_codes(monkeypatch, capsys, error, code) -> None:
    from ipclab.errors import ConfigError, WorkerError

    def fail(args) -> int:
        if error == "config":
            raise ConfigError("--name: 'x' is not a name")
        if error == "worker":
            raise WorkerError("client killed by SIGKILL")
        raise ZeroDivisionError("a bug")

    _fake_subcommand(monkeypatch, fail)
    if code is None:  # anything else is a bug: it keeps its traceback
        with pytest.raises(ZeroDivisionError):
            main(["hello"])
        return
    assert main(["hello"]) == code
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("ipclab: error: ")
