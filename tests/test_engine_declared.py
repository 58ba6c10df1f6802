"""The engine reads declarations, never names: no pattern of the registry is named in ipclab/engine or the runner
facade (the transport contract's ``connect`` method aside). Fast tier."""

from __future__ import annotations

import glob
import os
import re

import pytest
from conftest import ROOT

from ipclab.patterns import PATTERNS

ENGINE = sorted(glob.glob(os.path.join(ROOT, "ipclab", "engine", "*.py"))) + [
    os.path.join(ROOT, "ipclab", "runner.py")]


@pytest.mark.parametrize("path", ENGINE, ids=os.path.basename)
def test_no_pattern_is_named(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        text = f.read().replace(".connect(", ".<transport contract>(")
    named = [name for name in PATTERNS if re.search(re.escape(name), text)]  # lower case: not ConnectionError
    assert named == [], f"{os.path.relpath(path, ROOT)} names {named}"


@pytest.mark.parametrize("path", ENGINE, ids=os.path.basename)
def test_engine_modules_stay_small(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 400
