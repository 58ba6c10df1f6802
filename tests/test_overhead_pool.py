"""benchmarks/overhead.py --pool without measuring: runs saved with --json are pooled pair by pair (the median
of all their pairs, not a median of medians), cells only one file has are kept, and the report says how many
pairs it pooled. Fast tier."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import overhead  # noqa: E402


def _run(path: Any, cells: list[tuple[str, str, int, list[float]]]) -> str:
    saved = {"cells": [{"transport": t, "pattern": p, "size": s, "ipclab": [r * 100 for r in ratios],
                        "floor": [100.0] * len(ratios), "ratio": ratios, "ipclab_cpu": [1.0] * len(ratios),
                        "floor_cpu": [1.0] * len(ratios), "cpu_ratio": [1.0] * len(ratios)}
                       for t, p, s, ratios in cells],
             "reference": {}, "memcpy_mb_s": [40000.0], "failures": [], "argv": []}
    path.write_text(json.dumps(saved))
    return str(path)


def test_pool_takes_the_median_of_every_pair(tmp_path: Any, capsys: Any) -> None:
    a = _run(tmp_path / "a.json", [("pipe", "stream", 4096, [0.80, 0.81, 0.82]),
                                   ("tcp", "pingpong", 64, [1.20, 1.20, 1.20])])
    b = _run(tmp_path / "b.json", [("pipe", "stream", 4096, [0.95, 0.96, 0.97, 0.98, 0.99])])
    assert overhead.main(["--pool", f"{a},{b}", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "3/8 pairs pooled from 2 runs" in out
    # pipe: 8 pairs, median of (0.80 0.81 0.82 0.95 0.96 0.97 0.98 0.99) = 0.955 (medians of medians: 0.885)
    (row,) = [line for line in out.splitlines() if line.startswith("| pipe stream 4 KiB")]
    assert "0.80 / 0.95 / 0.99" in row or "0.80 / 0.96 / 0.99" in row
    assert "ok" in row
    (row,) = [line for line in out.splitlines() if line.startswith("| tcp pingpong 64 B")]
    assert "1.20 / 1.20 / 1.20" in row and "MISS (> 1.10)" in row


def test_pool_rejects_what_is_not_a_saved_run_in_one_line(tmp_path: Any, capsys: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}')
    for arg in (str(tmp_path / "missing.json"), str(bad)):
        assert overhead.main(["--pool", arg]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("overhead: --pool ") and "--json FILE" in err
        assert "Traceback" not in err
