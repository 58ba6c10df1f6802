"""Issue 12, Inputs: files a hostile user points ipclab at are refused in one line, at once, or shown harmlessly.

FIFOs and endless devices (read only regular files, with a size cap), result files with fields that crashed a
reader (null spread, huge integers, integer quantile lists and CPU lists, duplicate keys, NaN, unknown format
versions), escape sequences in names (neutralised before a terminal), spreadsheet formulas in CSV, a pattern
plug-in that raises at import. Everything runs ``ipclab.cli.main`` in-process (fast tier: nothing is started).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import signal
import time

import pytest
from synthetic import make_result

from ipclab import patterns
from ipclab.cli import main

BASE = make_result(trials=3)


@pytest.fixture
def alarm():
    """A read that blocks (a FIFO with no writer) fails the test after 5 s instead of hanging the suite."""
    def hung(signum, frame):
        raise TimeoutError("ipclab blocked reading the file")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _one_line_error(capsys, code: int, *expect: str) -> str:
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("ipclab: error: "), lines
    assert "Traceback" not in err
    for word in expect:
        assert word in lines[0], lines[0]
    return lines[0]


def _write(tmp_path, name: str, data: dict | str) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


# -- FIFOs and devices -----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["run", "-e", "{p}"], ["report", "{p}"], ["compare", "{p}", "{p}"],
                                  ["plot", "{p}", "-o", "{d}/x.png"], ["experiments", "show", "{p}"]],
                         ids=["run-e", "report", "compare", "plot", "experiments-show"])
def test_fifo_is_refused_at_once(capsys, tmp_path, alarm, argv) -> None:
    fifo = str(tmp_path / "x.fifo")
    os.mkfifo(fifo)
    if argv[0] == "plot":
        pytest.importorskip("matplotlib")
    start = time.monotonic()
    code = main([a.replace("{p}", fifo).replace("{d}", str(tmp_path)) for a in argv])
    assert time.monotonic() - start < 1.0
    _one_line_error(capsys, code, repr(fifo), "a FIFO", "not a regular file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("command", [["run", "-e"], ["report"], ["compare", "/dev/null"]])
def test_endless_devices_are_refused_at_once(capsys, alarm, device, command) -> None:
    start = time.monotonic()
    code = main([*command, device])
    assert time.monotonic() - start < 1.0
    _one_line_error(capsys, code, "not a regular file")


# -- fields that crashed a reader ------------------------------------------------------------------------
def _mutated(change) -> dict:
    data = copy.deepcopy(BASE)
    change(data)
    return data


HOSTILE = {
    "null-spread": (lambda d: d["cells"][0]["spread"].update(rtt_p50_us=None), "spread 'rtt_p50_us'"),
    "int-affinity": (lambda d: d["metadata"].update(cpu_affinity=5), "cpu_affinity"),
    "str-cpu-count": (lambda d: d["metadata"].update(cpu_count="4"), "cpu_count"),
    "huge-summary": (lambda d: d["cells"][0]["summary"].update(rtt_p50_us=10 ** 400), "summary 'rtt_p50_us'"),
    "huge-trial": (lambda d: d["cells"][0]["trials"][0]["metrics"].update(rtt_p50_us=10 ** 400), "rtt_p50_us"),
    "huge-size": (lambda d: d["cells"][0].update(size_bytes=10 ** 400), "size_bytes"),
    "int-quantiles": (lambda d: d["cells"][0]["trials"][0]["metrics"].update(rtt_quantiles_ns=5),
                      "rtt_quantiles_ns"),
    "version-0": (lambda d: d.update(format_version=0), "format_version 0"),
    "version-neg": (lambda d: d.update(format_version=-5), "format_version -5"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("command", ["report", "report-json", "compare", "plot-cdf"])
def test_hostile_result_fields_are_one_line(capsys, tmp_path, case, command) -> None:
    change, expect = HOSTILE[case]
    bad = _write(tmp_path, "bad.json", _mutated(change))
    good = _write(tmp_path, "good.json", BASE)
    argv = {"report": ["report", bad], "report-json": ["report", bad, "-f", "json"],
            "compare": ["compare", good, bad],
            "plot-cdf": ["plot", bad, "--kind", "cdf", "-o", str(tmp_path / "p.png")]}
    if command == "plot-cdf":
        pytest.importorskip("matplotlib")
    _one_line_error(capsys, main(argv[command]), "not a usable ipclab result", expect)


def test_nan_and_infinity_are_not_json(capsys, tmp_path) -> None:
    text = json.dumps(BASE).replace('"round_trips": 2000', '"round_trips": NaN', 1)
    assert "NaN" in text
    _one_line_error(capsys, main(["report", _write(tmp_path, "nan.json", text)]), "NaN is not a JSON number")
    text = json.dumps(BASE).replace('"round_trips": 2000', '"round_trips": -Infinity', 1)
    _one_line_error(capsys, main(["report", _write(tmp_path, "inf.json", text)]), "-Infinity")


def test_duplicate_keys_are_refused(capsys, tmp_path) -> None:
    # Two "cells": Python keeps the last, another reader the first: the file means two things.
    text = json.dumps(BASE).replace('{"format"', '{"cells": [], "format"', 1)
    _one_line_error(capsys, main(["report", _write(tmp_path, "dup.json", text)]), "duplicate key 'cells'")


def test_report_json_is_strict_json() -> None:
    # A figure a statistic could not compute (NaN) is null in `report -f json`, never the non-JSON NaN.
    from ipclab.report.metrics import METRICS
    from ipclab.report.tables import Table, render_tables

    table = Table("pingpong", METRICS["rtt_p50_us"], "t", ["transport", "64 B"], [64], [["pipe", "?"]],
                  [[float("nan")]])
    out = render_tables([table], "json")
    assert json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in report -f json"))[0]["values"] == \
        [[None]]


def test_strict_json_writes_null_for_non_finite() -> None:
    from ipclab.untrusted import strict_json

    assert json.loads(strict_json({"p": float("nan"), "r": [float("inf"), 1.5]})) == {"p": None, "r": [None, 1.5]}


# -- text from the file on a terminal, in a spreadsheet --------------------------------------------------
ESCAPES = "pipe\x1b[31mRED\x1b]0;owned\x07\x9b2J\u202e"


@pytest.mark.parametrize("fmt", ["table", "github", "markdown", "latex"])
def test_report_neutralises_escape_sequences(capsys, tmp_path, fmt) -> None:
    data = copy.deepcopy(BASE)
    data["cells"][0]["transport"] = ESCAPES
    data["cells"][0]["warnings"] = ["\x1b[2J cleared your screen"]
    assert main(["report", _write(tmp_path, "esc.json", data), "-f", fmt]) == 0
    out, err = capsys.readouterr()
    for text in (out, err):
        assert not any(ch in text for ch in "\x1b\x07\x9b\u202e"), repr(text[:300])
    assert "pipe\\x1b[31mRED" in out  # shown, escaped: the reader still sees what the file says


def test_compare_neutralises_escape_sequences(capsys, tmp_path) -> None:
    data = copy.deepcopy(BASE)
    for cell in data["cells"]:
        cell["transport"] = ESCAPES
    data["metadata"]["kernel"] = "6.1\x1b]8;;http://evil\x07link"
    a, b = _write(tmp_path, "a.json", BASE), _write(tmp_path, "b.json", data)
    assert main(["compare", a, b]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b]8;;http://evil" in out


@pytest.mark.parametrize("command", ["report", "compare"])
def test_csv_cells_never_start_a_formula(capsys, tmp_path, command) -> None:
    data = copy.deepcopy(BASE)
    for cell in data["cells"]:
        cell["transport"] = '=HYPERLINK("http://evil","x")' if cell["transport"] == "pipe" else cell["transport"]
    bad = _write(tmp_path, "f.json", data)
    argv = ["report", bad] if command == "report" else ["compare", bad, bad]
    assert main([*argv, "-f", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    cells = [c for row in rows for c in row]
    assert any("HYPERLINK" in c for c in cells)
    for c in cells:
        assert not c.startswith(("=", "+", "@")) and not (c.startswith("-") and not _is_number(c)), c


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# -- plug-ins ----------------------------------------------------------------------------------------------
def test_pattern_plugin_that_raises_at_import(tmp_path) -> None:
    from ipclab.errors import ConfigError

    (tmp_path / "zz_broken.py").write_text("raise RuntimeError('plug-in says no')\n")
    before = dict(patterns.PATTERNS)
    patterns.__path__.append(str(tmp_path))
    try:
        # A ConfigError (the CLI prints it as one line, exit 2) naming the file, what it raised and the fix.
        with pytest.raises(ConfigError, match=r"zz_broken\.py.*RuntimeError: plug-in says no.*remove the file"):
            patterns.refresh()
        assert before == patterns.PATTERNS  # the registry in use is left whole
    finally:
        patterns.__path__.remove(str(tmp_path))
        patterns.refresh()


def test_check_neutralises_escape_sequences(capsys, tmp_path) -> None:
    data = copy.deepcopy(BASE)
    data["cells"][0]["transport"] = ESCAPES
    code = main(["check", _write(tmp_path, "esc.json", data), "-e", "latency-vs-size"])
    out, err = capsys.readouterr()
    assert code == 1  # it does not follow the experiment; saying so must not hand the terminal escape codes
    assert not any(ch in out + err for ch in "\x1b\x07\x9b\u202e"), repr(out[:500])
    assert "\\x1b[31mRED" in out


def test_transport_plugin_that_raises_at_import(tmp_path, monkeypatch, capsys) -> None:
    """A plug-in named by IPCLAB_EXTRA_TRANSPORTS that raises while importing: one line, exit 2."""
    import importlib

    import ipclab.transports as transports

    (tmp_path / "zz_broken_transport.py").write_text("raise RuntimeError('plug-in says no')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(transports.EXTRA_ENV, "zz-broken=zz_broken_transport:Broken")
    try:
        importlib.reload(transports)
        code = main(["run", "-t", "zz-broken", "-p", "pingpong", "-s", "64", "-n", "10", "-q", "-o", "-"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert "zz_broken_transport:Broken (RuntimeError: plug-in says no)" in err and "Traceback" not in err
    finally:
        monkeypatch.delenv(transports.EXTRA_ENV)
        importlib.reload(transports)
