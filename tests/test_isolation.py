"""Workers start with a clean import path: a module in the user's working directory never runs in a worker.

``python -m`` puts the current directory first on sys.path, so a ``socket.py`` in the directory ``ipclab run``
was started from used to be imported by every worker (a busy thread in one took pipe p50 from 7.5 us to 10 ms,
status ok). Plug-in transports named by IPCLAB_EXTRA_TRANSPORTS and found through PYTHONPATH must still load.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

TESTS = os.path.dirname(os.path.abspath(__file__))

# Writes a marker named after the importing process, then hands the importer the real socket module.
INTRUDER = '''\
import os, sys
_here = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(_here, "imported.%d" % os.getpid()), "w").close()
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules["socket"]
import socket as _real
sys.modules["socket"] = _real
'''


@pytest.mark.process
@pytest.mark.skipif(sys.version_info < (3, 11), reason="the runner itself needs -P to ignore the directory")
def test_a_module_in_the_working_directory_never_runs_in_a_worker(tmp_path) -> None:
    (tmp_path / "socket.py").write_text(INTRUDER)
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, TESTS]),
           "IPCLAB_EXTRA_TRANSPORTS": "chatty=faulty_transports:ChattyTransport"}
    # -P: the runner does not import from its directory either, so any marker comes from a worker.
    proc = subprocess.run([sys.executable, "-P", "-m", "ipclab", "run", "-t", "pipe,chatty", "-p", "pingpong",
                           "-s", "64", "--count", "50", "--trials", "1", "-q", "-o", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert glob.glob(str(tmp_path / "imported.*")) == []  # no worker imported the cwd's socket.py
    cells = json.loads(out.read_text())["cells"]
    assert [(c["transport"], c["status"]) for c in cells] == [("pipe", "ok"), ("chatty", "ok")]  # plug-in loaded


def test_worker_pythonpath_is_absolute_and_never_names_the_current_directory(monkeypatch, tmp_path) -> None:
    from ipclab.engine.launch import worker_argv, worker_env

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["", "plugins", str(tmp_path / "abs")]))
    entries = worker_env()["PYTHONPATH"].split(os.pathsep)
    assert all(os.path.isabs(p) for p in entries)
    assert entries[1:] == [str(tmp_path / "plugins"), str(tmp_path / "abs")]
    if sys.version_info >= (3, 11):
        assert "-P" in worker_argv()
