"""``ipclab.load(path)`` and ``Result.to_pandas()``: the sample sweep as a data frame, one row per cell and trial,
units in the column names, figures equal to the file's; pandas imported only by to_pandas, and a hostile file is
one line, as in every command."""

from __future__ import annotations

import json
import math
import os
import sys

import pytest
from conftest import ROOT
from synthetic import make_result

import ipclab
from ipclab import model, results
from ipclab.errors import ConfigError

SAMPLE = os.path.join(ROOT, "results", "samples", "sweep.json")


@pytest.fixture(scope="module")
def sample() -> dict:
    with open(SAMPLE, encoding="utf-8") as f:
        return json.load(f)


def test_load_returns_the_typed_result_without_importing_pandas(monkeypatch, sample):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` fails from here on
    result = ipclab.load(SAMPLE)
    assert isinstance(result, model.Result) and "load" in ipclab.__all__
    assert len(result.cells) == len(sample["cells"]) and result.cells[0].transport == sample["cells"][0]["transport"]
    assert result.to_dict() == sample  # nothing lost or changed on the way in
    with pytest.raises(ImportError, match=r"pip install 'ipclab\[notebook\]'"):
        result.to_pandas()


def test_to_pandas_one_row_per_cell_and_trial_with_units_in_the_names(sample):
    pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install 'ipclab[notebook]')")
    df = ipclab.load(SAMPLE).to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == sum(max(1, len(c["trials"])) for c in sample["cells"])
    assert list(df.columns[:7]) == ["pattern", "transport", "size_bytes", "trial", "status", "placement", "reason"]
    for column in ("rtt_p50_us", "rtt_p99_us", "mb_s", "msg_s", "cpu_us_msg", "owl_p50_us", "rss_peak_bytes"):
        assert column in df.columns and df[column].dtype == "float64"
    assert not [c for c in df.columns if "quantiles" in c or c == "missing"]  # distributions stay in the model
    assert df["size_bytes"].dtype == "int64" and str(df["trial"].dtype) == "Int64"

    # Every figure is the file's: each trial of each cell, row for row.
    ok = df[df.status == "ok"]
    rows = iter(ok.itertuples(index=False))
    for cell in (c for c in sample["cells"] if c["status"] == "ok"):
        for trial in cell["trials"]:
            row = next(rows)._asdict()
            assert (row["pattern"], row["transport"], row["size_bytes"], row["trial"]) == \
                   (cell["pattern"], cell["transport"], cell["size_bytes"], trial["trial"])
            assert row["placement"] == cell["placement"]
            for key, value in trial["metrics"].items():
                if isinstance(value, (int, float)):
                    assert row[key] == value, (cell["transport"], key)

    # The median across trials is the summary the tables print (throughput: a median of per-trial figures).
    stream = ok[ok.pattern == "stream"].groupby(["transport", "size_bytes"]).mb_s.median()
    checked = 0
    for cell in (c for c in sample["cells"] if c["pattern"] == "stream" and c["summary"].get("mb_s")):
        checked += 1
        assert math.isclose(stream[(cell["transport"], cell["size_bytes"])], cell["summary"]["mb_s"], rel_tol=1e-9)
    assert checked > 40


def test_a_cell_without_trials_is_one_row_with_its_reason(sample):
    pytest.importorskip("pandas", reason="pandas is not installed (pip install 'ipclab[notebook]')")
    df = ipclab.load(SAMPLE).to_pandas()
    na = df[df.status == "n/a"]
    assert len(na) == sum(c["status"] == "n/a" for c in sample["cells"])
    assert na["trial"].isna().all() and na["rtt_p50_us"].isna().all()
    pipe0 = na[(na.transport == "pipe") & (na.size_bytes == 0) & (na.pattern == "pingpong")]
    assert list(pipe0.reason) == ["a byte stream cannot carry an empty message"]


def test_the_readme_example(tmp_path):
    """The README's notebook section, statement for statement."""
    pytest.importorskip("pandas", reason="pandas is not installed (pip install 'ipclab[notebook]')")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert 'ipclab.load("results/samples/sweep.json")' in readme and ".to_pandas()" in readme
    result = ipclab.load(SAMPLE)
    df = result.to_pandas()
    p50 = df[df.pattern == "pingpong"].groupby(["transport", "size_bytes"]).rtt_p50_us.median().unstack()
    with open(SAMPLE, encoding="utf-8") as f:
        pipe64 = next(c for c in json.load(f)["cells"]
                      if (c["pattern"], c["transport"], c["size_bytes"]) == ("pingpong", "pipe", 64))
    per_trial = sorted(t["metrics"]["rtt_p50_us"] for t in pipe64["trials"])
    assert p50.loc["pipe", 64] == pytest.approx(per_trial[len(per_trial) // 2])  # the median of the trials' p50s
    row = next(line for line in readme.splitlines() if line.startswith("| pipe "))  # the README's first table
    shown = float(row.split("|")[3])  # pipe, 64 B: the p50 of all trials' samples pooled
    assert p50.loc["pipe", 64] == pytest.approx(shown, rel=0.15)  # close to it, not the same figure
    assert math.isnan(p50.loc["pipe", 0])  # n/a: a byte stream cannot carry an empty message


def test_rate_columns_when_the_cells_have_an_offered_rate(tmp_path):
    pytest.importorskip("pandas", reason="pandas is not installed (pip install 'ipclab[notebook]')")
    data = make_result(patterns=("pingpong",), trials=2)
    for i, cell in enumerate(data["cells"]):
        cell["rate"] = 1000 * (i + 1)
    path = tmp_path / "rated.json"
    results.save(data, str(path))
    df = ipclab.load(str(path)).to_pandas()
    assert list(df.columns[:4]) == ["pattern", "transport", "size_bytes", "rate"]
    assert list(df.rate) == [1000 * (i + 1) for i, c in enumerate(data["cells"]) for _ in c["trials"]]


@pytest.mark.parametrize("content, words", [
    (b"\x80\x03}q\x00.", "not an ipclab result"),  # a pickle: never unpickled
    (b'{"format": "ipclab-result", "format_version": 2, "cells": [], "x": NaN}', "NaN"),
    (b"[" * 100000, "not an ipclab result"),
    (b'{"format": "ipclab-result", "format_version": 99, "cells": []}', "upgrade ipclab"),
    (b'{"format": "ipclab-result", "format_version": 2, "cells": [{"pattern": 1}]}', "cell 0"),
])
def test_a_hostile_file_is_one_line(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=words) as error:
        ipclab.load(str(path))
    assert "\n" not in str(error.value)


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # an open() for reading would wait for a writer forever
    with pytest.raises(ConfigError, match="FIFO"):
        ipclab.load(str(fifo))
