"""The typed result model (fast tier): lossless round trips of real and old files, and one-line refusals."""

from __future__ import annotations

import copy
import json
import math
import os

import pytest
from conftest import ROOT
from synthetic import add_na_cell, make_result

from ipclab import results
from ipclab.errors import ConfigError
from ipclab.model import FORMAT_VERSION, Cell, Result, Trial, Warning, warning_message

SAMPLE = os.path.join(ROOT, "tests", "data", "sweep-format1.json")  # a real sweep written by an older ipclab
CURRENT = os.path.join(ROOT, "results", "samples", "sweep.json")  # the README's sample, this format
CELL = {"pattern": "pingpong", "transport": "pipe", "size_bytes": 64, "status": "ok", "reason": None,
        "trials": [{"trial": 1, "metrics": {"rtt_p50_us": 10.0, "rtt_quantiles_ns": [1, 2.5]}}],
        "summary": {"rtt_p50_us": 10.0}, "spread": {}, "warnings": []}
MINIMAL = {"format": "ipclab-result", "format_version": 1, "metadata": {}, "config": {}, "cells": [CELL]}


def test_sample_round_trips_exactly() -> None:
    with open(SAMPLE, encoding="utf-8") as f:
        text = f.read()
    data = json.loads(text)
    result = Result.from_dict(data)
    assert result.to_dict() == data
    assert results.dumps(result) == text  # key order too: an old file is written back as it was read
    assert result.format_version == 1 and len(result.cells) == len(data["cells"])
    ok = [c for c in result.cells if c.status == "ok"]
    assert ok and all(isinstance(t, Trial) and t.metrics for c in ok for t in c.trials)
    assert all(isinstance(w, Warning) and w.code is None for c in result.cells for w in c.warnings)


def test_the_current_sample_round_trips_exactly() -> None:
    with open(CURRENT, encoding="utf-8") as f:
        text = f.read()
    data = json.loads(text)
    result = Result.from_dict(data)
    assert results.dumps(result) == text and result.format_version == 2
    assert any(c.pooled for c in result.cells)  # percentiles pooled over the trials
    assert all(isinstance(w, Warning) and w.code for c in result.cells for w in c.warnings)


@pytest.mark.parametrize("data", [MINIMAL, make_result()], ids=["minimal-v1", "synthetic"])
def test_other_results_round_trip(data) -> None:
    before = copy.deepcopy(data)
    assert Result.from_dict(data).to_dict() == before
    assert data == before  # from_dict does not touch its input


def test_na_cell_without_per_run_keys_round_trips() -> None:
    data = make_result()
    add_na_cell(data, "udp", 1 << 20, "too big for a datagram")
    assert Result.from_dict(data).to_dict() == data
    assert "count" not in Result.from_dict(data).to_dict()["cells"][-1]


def test_warnings_as_objects_and_as_old_strings() -> None:
    cell = {**CELL, "warnings": ["an old plain warning", {"code": "spread", "message": "rtt differs by 20%"}]}
    data = {**MINIMAL, "format_version": 2, "cells": [cell]}
    result = Result.from_dict(data)
    assert result.cells[0].warnings == [Warning("an old plain warning"), Warning("rtt differs by 20%", "spread")]
    assert result.to_dict() == data
    assert [warning_message(w) for w in cell["warnings"]] == ["an old plain warning", "rtt differs by 20%"]


def test_a_new_cell_writes_every_key_the_engine_writes() -> None:
    cell = Cell("stream", "tcp", 4096, trials=[Trial(1, {"mb_s": 812.5})], summary={"mb_s": 812.5},
                warnings=[Warning("busy machine", "load")])
    written = Result(created="2026-01-01T00:00:00+00:00", cells=[cell]).to_dict()
    assert written["format_version"] == FORMAT_VERSION and written["format"] == "ipclab-result"
    (c,) = written["cells"]
    assert list(c) == ["pattern", "transport", "size_bytes", "status", "reason", "count", "duration_s", "warmup",
                       "placement", "cpus", "trials", "summary", "spread", "range", "warnings"]
    assert c["warnings"] == [{"code": "load", "message": "busy machine"}]
    assert Result.from_dict(written).cells == [cell]


def _cell(**changes):
    return {**MINIMAL, "cells": [{**CELL, **changes}]}


BAD = {
    "not-an-object": ([1, 2], "missing \"format\""),
    "format": ({**MINIMAL, "format": "pcap"}, "missing \"format\""),
    "version-0": ({**MINIMAL, "format_version": 0}, "format_version"),
    "version-bool": ({**MINIMAL, "format_version": True}, "format_version"),
    "version-future": ({**MINIMAL, "format_version": FORMAT_VERSION + 1}, "newer than this ipclab"),
    "cells": ({**MINIMAL, "cells": {}}, "\"cells\" is not a list"),
    "interrupted": ({**MINIMAL, "interrupted": "no"}, "'interrupted'"),
    "metadata": ({**MINIMAL, "metadata": []}, "metadata is not an object"),
    "config-trials": ({**MINIMAL, "config": {"trials": "3"}}, "config 'trials'"),
    "config-sizes": ({**MINIMAL, "config": {"sizes": ["64"]}}, "config 'sizes'"),
    "status": (_cell(status="great"), "status 'great'"),
    "size": (_cell(size_bytes=64.0), "'size_bytes'"),
    "nan-summary": (_cell(summary={"rtt_p50_us": math.nan}), "summary 'rtt_p50_us' is not a number"),
    "inf-spread": (_cell(spread={"rtt_p50_us": math.inf}), "spread 'rtt_p50_us'"),
    "bool-summary": (_cell(summary={"rtt_p50_us": True}), "is not a number"),
    "nan-in-quantiles": (_cell(trials=[{"trial": 1, "metrics": {"q": [1, math.nan]}}]), "metrics 'q'"),
    "metric-string": (_cell(trials=[{"trial": 1, "metrics": {"mb_s": "fast"}}]), "metrics 'mb_s'"),
    "trial-number": (_cell(trials=[{"trial": "one"}]), "'trial'"),
    "trial-raw": (_cell(trials=[{"trial": 1, "raw": []}]), "raw is not an object"),
    "warning-object": (_cell(warnings=[{"code": 1, "message": "x"}]), "warning 0"),
    "warning-number": (_cell(warnings=[3]), "warning 0"),
    "count": (_cell(count="5"), "'count'"),
    "duration": (_cell(duration_s=math.inf), "'duration_s'"),
    "cpus": (_cell(cpus={"server": "0"}), "'cpus'"),
    "reason": (_cell(reason=["x"]), "'reason'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_fields_are_one_line_errors(name) -> None:
    data, words = BAD[name]
    with pytest.raises(ConfigError) as info:
        Result.from_dict(data, "r.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("'r.json' is not a usable ipclab result: ")
    assert words in message


def test_save_refuses_what_load_would_refuse(tmp_path) -> None:
    path = str(tmp_path / "r.json")
    with pytest.raises(ValueError, match="invalid result"):
        results.save(_cell(summary={"rtt_p50_us": "fast"}), path)
    assert not os.path.exists(path) and not os.listdir(tmp_path)
    results.save(MINIMAL, path)
    assert results.load(path) == MINIMAL
    assert results.load_result(path) == Result.from_dict(MINIMAL)
    results.save(results.load_result(path), path)  # a Result is written through its to_dict
    assert results.load(path) == MINIMAL
