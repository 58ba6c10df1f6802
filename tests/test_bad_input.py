"""Hostile and wrong input, through the real CLI: every case exits 2 with exactly one stderr line
``ipclab: error: ...`` (no traceback, nothing started, nothing leaked). Files a case needs are written to a
temporary directory and named ``{d}/NAME`` in its arguments.

The cases run ``ipclab.cli.main`` in-process (fast tier: a refused input starts nothing); those that need an
environment variable read at import time run ``python -m ipclab`` (process tier)."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from ipclab.cli import main
from ipclab.config import check_output_path
from ipclab.errors import ConfigError

BAD_BYTES = os.fsdecode(b"\xff\xfe")  # a non-UTF-8 file name, as the shell would pass it
GOOD_CELL = {"pattern": "pingpong", "transport": "pipe", "size_bytes": 64, "status": "ok", "reason": None,
             "trials": [{"trial": 1, "metrics": {"rtt_p50_us": 10.0}}], "summary": {"rtt_p50_us": 10.0},
             "spread": {}, "warnings": []}
GOOD = {"format": "ipclab-result", "format_version": 1, "metadata": {}, "config": {}, "cells": [GOOD_CELL]}

FILES: dict[str, bytes] = {
    "binary.toml": bytes(range(256)),
    "nul.toml": b"trials = 1\x00\n",
    "bad.toml": b"this is = = not toml\n",
    "trials-str.toml": b'trials = "3"\n',
    "huge-size.toml": b'sizes = ["100G"]\n',
    "billion.toml": b"trials = 1000000000\n",
    "unknown-key.toml": b"bogus = 1\n",
    "count-duration.toml": b"count = 5\nduration = 1.0\n",
    "empty-sizes.toml": b"sizes = []\n",
    "verify-str.toml": b'verify = "yes"\n',
    "transport-int.toml": b'transports = ["pipe", 3]\n',
    "size-bool.toml": b"sizes = [true]\n",
    "size-float.toml": b"sizes = 64.5\n",
    "table.toml": b"[run]\ntrials = 1\n",
    "neg-timeout.toml": b"timeout = -1\n",
    "big.toml": b"# " + b"x" * (1024 * 1024 + 10) + b"\n",
    "file": b"just a file\n",
    "r-binary.json": bytes(range(256)),
    "r-notjson.json": b"{this is not json",
    "r-array.json": b"[1, 2, 3]",
    "r-deep.json": b"[" * 100000,
    "r-empty.json": b"",
    "r-format.json": json.dumps({**GOOD, "format": "pcap"}).encode(),
    "r-future.json": json.dumps({**GOOD, "format_version": 99}).encode(),
    "r-cells.json": json.dumps({**GOOD, "cells": "x"}).encode(),
    "r-size.json": json.dumps({**GOOD, "cells": [{**GOOD_CELL, "size_bytes": "64"}]}).encode(),
    "r-negsize.json": json.dumps({**GOOD, "cells": [{**GOOD_CELL, "size_bytes": -5}]}).encode(),
    "r-summary.json": json.dumps({**GOOD, "cells": [{**GOOD_CELL, "summary": {"rtt_p50_us": "fast"}}]}).encode(),
    "r-spread.json": json.dumps({**GOOD, "cells": [{**GOOD_CELL, "spread": {"rtt_p50_us": "wide"}}]}).encode(),
    "r-spread-list.json": json.dumps({**GOOD, "cells": [{**GOOD_CELL, "spread": [1]}]}).encode(),
    "r-reason.json": json.dumps({**GOOD, "cells": [{**GOOD_CELL, "status": "failed", "reason": ["x"]}]}).encode(),
    "r-trial.json": json.dumps({**GOOD, "cells": [{**GOOD_CELL, "trials": ["x"]}]}).encode(),
    "r-utf16.json": json.dumps(GOOD).encode("utf-16"),
    "good.json": json.dumps(GOOD).encode(),
}

EXTRA = "IPCLAB_EXTRA_TRANSPORTS"

# (id, argv, expected text in the error line, extra environment)
CASES: list[tuple[str, list[str], str, dict[str, str] | None]] = [
    # transports and patterns
    ("unknown-transport", ["run", "-t", "tcpp"], "did you mean 'tcp'?); known: pipe, unix, tcp", None),
    ("empty-transport", ["run", "-t", ""], "--transport", None),
    ("blank-item", ["run", "-t", "pipe,,tcp"], "empty item", None),
    ("non-utf8-transport", ["run", "-t", BAD_BYTES], "unknown transport", None),
    ("unknown-pattern", ["run", "-p", "pingpongg"], "did you mean 'pingpong'?", None),
    # sizes
    ("size-100G", ["run", "-s", "100G"], "above the limit", None),
    ("size-negative", ["run", "-s", "-5"], "negative", None),
    ("size-12Q", ["run", "-s", "12Q"], "cannot read size '12Q'", None),
    ("size-empty", ["run", "-s", ""], "--size", None),
    ("size-float", ["run", "-s", "1e3"], "cannot read size", None),
    ("size-list-blank", ["run", "-s", "64,,4K"], "empty item", None),
    ("size-5000-digits", ["run", "-s", "9" * 5000], "cannot read size '99999", None),
    # counts, trials, durations
    ("count-0", ["run", "-n", "0"], "--count: 0 is out of range", None),
    ("count-negative", ["run", "-n", "-3"], "--count", None),
    ("count-billion", ["run", "-n", "1000000000"], "out of range", None),
    ("count-text", ["run", "-n", "abc"], "not a whole number", None),
    ("count-fraction", ["run", "-n", "1.5"], "not a whole number", None),
    ("trials-0", ["run", "-k", "0"], "--trials: 0 is out of range", None),
    ("trials-billion", ["run", "-k", "1000000000"], "--trials", None),
    ("duration-negative", ["run", "-d", "-1"], "--duration", None),
    ("duration-nan", ["run", "-d", "nan"], "--duration", None),
    ("duration-inf", ["run", "-d", "inf"], "--duration", None),
    ("count-and-duration", ["run", "-n", "5", "-d", "1"], "both given", None),
    ("warmup-negative", ["run", "--warmup", "-1"], "--warmup", None),
    ("seed-negative", ["run", "--seed", "-1"], "--seed", None),
    ("seed-huge", ["run", "--seed", str(2**70)], "--seed", None),
    ("timeout-0", ["run", "--timeout", "0"], "--timeout", None),
    ("timeout-huge", ["run", "--timeout", "1e12"], "--timeout", None),
    ("pin-cpu", ["run", "--pin", "9999"], "--pin", None),
    ("pin-word", ["run", "--pin", "bogus"], "--pin", None),
    ("clients-0", ["run", "--clients", "0"], "--clients", None),
    ("clients-huge", ["run", "--clients", "100000"], "--clients", None),
    ("format", ["run", "-f", "xml"], "invalid choice: 'xml'", None),
    ("unknown-flag", ["run", "--bogus"], "unrecognized arguments", None),
    ("unknown-command", ["frob"], "invalid choice: 'frob'", None),
    # output paths
    ("output-missing-dir", ["run", "-o", "/nonexistent-ipclab/x.json"], "does not exist", None),
    ("output-readonly-dir", ["run", "-o", "/proc/x.json"], "not writable", None),
    ("output-file-as-dir", ["run", "-o", "{d}/file/x.json"], "is a file, not a directory", None),
    ("output-is-dir", ["run", "-o", "{d}"], "is a directory", None),
    ("output-non-utf8", ["run", "-o", "{d}/" + BAD_BYTES + ".json"], "not valid UTF-8", None),
    # experiment files
    ("exp-missing", ["run", "-e", "{d}/missing.toml"], "cannot read", None),
    ("exp-directory", ["run", "-e", "{d}"], "cannot read", None),
    ("exp-non-utf8-path", ["run", "-e", "{d}/" + BAD_BYTES + ".toml"], "not valid UTF-8", None),
    ("exp-binary", ["run", "-e", "{d}/binary.toml"], "not UTF-8 text", None),
    ("exp-nul", ["run", "-e", "{d}/nul.toml"], "NUL", None),
    ("exp-not-toml", ["run", "-e", "{d}/bad.toml"], "not valid TOML", None),
    ("exp-too-big", ["run", "-e", "{d}/big.toml"], "larger than", None),
    ("exp-wrong-type", ["run", "-e", "{d}/trials-str.toml"], "trials-str.toml:1: trials = '3' has the wrong type",
     None),
    ("exp-huge-size", ["run", "-e", "{d}/huge-size.toml"], "above the limit", None),
    ("exp-billion-trials", ["run", "-e", "{d}/billion.toml"], "out of range", None),
    ("exp-unknown-key", ["run", "-e", "{d}/unknown-key.toml"], "unknown key 'bogus'", None),
    ("exp-count-duration", ["run", "-e", "{d}/count-duration.toml"], "both given", None),
    ("exp-empty-sizes", ["run", "-e", "{d}/empty-sizes.toml"], "empty", None),
    ("exp-verify-str", ["run", "-e", "{d}/verify-str.toml"], "wrong type", None),
    ("exp-transport-int", ["run", "-e", "{d}/transport-int.toml"], "unknown transport 3", None),
    ("exp-size-bool", ["run", "-e", "{d}/size-bool.toml"], "wrong type", None),
    ("exp-size-float", ["run", "-e", "{d}/size-float.toml"], "wrong type", None),
    ("exp-table", ["run", "-e", "{d}/table.toml"], "unknown key 'run'", None),
    ("exp-neg-timeout", ["run", "-e", "{d}/neg-timeout.toml"], "timeout", None),
    # the transport plug-in variable
    ("extra-malformed", ["run"], EXTRA, {EXTRA: "bogus"}),
    ("extra-shadows-builtin", ["run"], "built-in", {EXTRA: "pipe=faulty_transports:FlipTransport"}),
    ("extra-missing-module", ["run", "-t", "zz"], "cannot load", {EXTRA: "zz=no_such_module_ipclab:X"}),
    ("extra-wrong-name", ["run", "-t", "wrongname"], "register it under that name",
     {EXTRA: "wrongname=faulty_transports:FlipTransport"}),
]

HAVE_REPORT = importlib.util.find_spec("ipclab.report.commands") is not None
RESULT_FILES = ["r-binary", "r-notjson", "r-array", "r-deep", "r-empty", "r-format", "r-future", "r-cells",
                "r-size", "r-negsize", "r-summary", "r-spread", "r-spread-list", "r-reason", "r-trial", "r-utf16"]
for _name in RESULT_FILES:
    CASES.append((f"report-{_name}", ["report", f"{{d}}/{_name}.json"], "ipclab result", None))
for _name in ("r-binary", "r-deep", "r-future", "r-summary"):  # compare loads through the same code: a sample
    CASES.append((f"compare-{_name}", ["compare", "{d}/good.json", f"{{d}}/{_name}.json"], "ipclab result", None))
CASES += [
    ("report-missing", ["report", "{d}/missing.json"], "cannot read", None),
    ("report-directory", ["report", "{d}"], "cannot read", None),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("badinput")
    for name, data in FILES.items():
        (d / name).write_bytes(data)
    return str(d)


def test_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


def _check(code: int, out: str, err: str, expect: str) -> None:
    lines = err.splitlines()
    assert code == 2, (code, err[-2000:])
    assert "Traceback" not in err
    assert len(lines) == 1, lines
    assert lines[0].startswith("ipclab: error: "), lines
    assert expect in lines[0], lines[0]
    assert out == "", out[:500]


def _skip_without_report(argv: list[str]) -> None:
    if argv[0] in ("report", "compare") and not HAVE_REPORT:
        pytest.skip("ipclab report/compare not present yet")


IN_PROCESS = [c for c in CASES if c[3] is None]
WITH_ENV = [c for c in CASES if c[3] is not None]


@pytest.mark.parametrize("case_id, argv, expect, env", IN_PROCESS, ids=[c[0] for c in IN_PROCESS])
def test_bad_input(capsys, files: str, case_id: str, argv: list[str], expect: str, env: None) -> None:
    _skip_without_report(argv)
    code = main([a.replace("{d}", files) for a in argv])  # an uncaught exception here is the traceback case
    out, err = capsys.readouterr()
    _check(code, out, err, expect)


@pytest.mark.process
@pytest.mark.parametrize("case_id, argv, expect, env", WITH_ENV, ids=[c[0] for c in WITH_ENV])
def test_bad_input_from_environment(cli, files: str, case_id: str, argv: list[str], expect: str,
                                    env: dict[str, str]) -> None:
    _skip_without_report(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    full_env = {**env, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), here])}
    proc = cli(*[a.replace("{d}", files) for a in argv], env=full_env, timeout=60)
    _check(proc.returncode, proc.stdout, proc.stderr, expect)


@pytest.mark.process
def test_size_zero_is_an_na_cell_not_an_error(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "pipe", "-p", "stream", "-s", "0,64", "-n", "20", "-q", "-f", "csv", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    with open(out, encoding="utf-8") as f:
        cells = {c["size_bytes"]: c for c in json.load(f)["cells"]}
    assert cells[0]["status"] == "n/a" and "empty message" in cells[0]["reason"]
    assert cells[64]["status"] == "ok"


def test_output_probe_is_real_not_access(tmp_path) -> None:
    """Root passes access() on read-only places; the probe must really try to create a file."""
    with pytest.raises(ConfigError, match="not writable"):
        check_output_path("/proc/ipclab.json")
    assert check_output_path(str(tmp_path / "ok.json")) == str(tmp_path / "ok.json")
    assert os.listdir(tmp_path) == []  # the probe left nothing behind


@pytest.mark.process
def test_default_results_dir_that_cannot_be_made(cli, tmp_path) -> None:
    """No --output and ./results is a file: one line naming the fix, exit 2, no traceback."""
    (tmp_path / "results").write_text("not a directory")
    proc = cli("run", "-t", "pipe", "-s", "64", "-n", "20", "-q", cwd=str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "pass --output PATH" in proc.stderr
