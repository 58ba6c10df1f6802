"""The two test tiers, enforced: a test not marked ``process`` may not start a process.

``python -m pytest -m "not process"`` is the fast tier (seconds, no child process); the process tier is marked
``@pytest.mark.process``. A marker that can be forgotten is no tier at all, so every unmarked test runs with
process creation (subprocess, multiprocessing, os.fork, os.posix_spawn) replaced by a function that fails the test
and names the marker to add. Loaded from conftest.py as a plug-in.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

MARK = "process"


class ProcessInFastTier(AssertionError):
    """An unmarked (fast-tier) test tried to start a process."""


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ProcessInFastTier(f"{what} in a fast-tier test: mark the test @pytest.mark.{MARK}")

    return refuse


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}: starts child processes (the process tier; -m 'not {MARK}' skips it)")


@pytest.fixture(autouse=True)
def _fast_tier_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker(MARK) is None:
        import _posixsubprocess

        monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("subprocess"))
        monkeypatch.setattr(_posixsubprocess, "fork_exec", _refuse("fork_exec (multiprocessing)"))
        monkeypatch.setattr(os, "fork", _refuse("os.fork"))
        if hasattr(os, "posix_spawn"):
            monkeypatch.setattr(os, "posix_spawn", _refuse("os.posix_spawn"))
    yield
