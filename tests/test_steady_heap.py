"""Workers keep the memory they free (engine.worker.steady_heap), and every cell counts minor page faults.

Known answer: the churn transport's consumer allocates a 64 KiB copy of each message and frees 16 at a time.
With glibc's default trimming each burst of frees returns the heap's top to the kernel and the next 16 copies
fault in all their pages again (measured: 14.0 faults per message, and a third of the throughput); a worker
with a steady heap faults only while the heap first grows, a few hundred pages over thousands of messages.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from typing import Any

import pytest

from ipclab.patterns.common import cpu_figures

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_faults_per_message_sum_every_worker() -> None:
    probe = {"cpu_user_s": 0.5, "cpu_sys_s": 0.5, "ctx_voluntary": 10, "ctx_involuntary": 0, "maxrss_bytes": 1}
    raw = {"server": {"probe": {**probe, "faults_minor": 300}}, "client": {"probe": {**probe, "faults_minor": 100}}}
    got = cpu_figures(raw, 200)
    assert got["faults_msg"] == 2.0 and got["ctx_msg"] == 0.1
    del raw["client"]["probe"]["faults_minor"]  # a probe from an older worker: no figure rather than a wrong one
    assert "faults_msg" not in cpu_figures(raw, 200)


@pytest.mark.process
@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_steady_heap_keeps_freed_memory() -> None:
    """In a fresh interpreter: 64 KiB blocks allocated and freed 16 at a time, twice. The second pass reuses
    the first pass's pages (no fault) with the steady heap; glibc's default trims and faults them in again."""
    code = """
import resource, sys
from ipclab.engine.worker import steady_heap
took = steady_heap() if sys.argv[1] == "steady" else None
def churn():
    kept = []
    for i in range(320):
        kept.append(b"\\x01" * 65536)
        if len(kept) == 16:
            kept.clear()
churn()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""
    out = {}
    for mode in ("steady", "default"):
        proc = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=60,
                              check=True)
        out[mode] = proc.stdout.split()
    assert out["steady"][0] == "True"
    assert int(out["steady"][1]) < 20  # 320 blocks of 16 pages: 5,120 page touches, none of them a fault
    assert int(out["default"][1]) > 1000  # the control: glibc's trimming does fault them in again


@pytest.mark.process
@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_worker_allocating_per_message_does_not_fault_per_message(cli: Any, tmp_path: Any) -> None:
    from conftest import ROOT

    env = {"PYTHONPATH": os.pathsep.join([ROOT, os.path.dirname(os.path.abspath(__file__))]),
           "IPCLAB_EXTRA_TRANSPORTS": "churn=churn_transport:ChurnPipe"}
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "churn", "-p", "stream", "-s", "64K", "--count", "2000", "--warmup", "20",
               "--trials", "1", "-q", "--format", "json", "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    (cell,) = json.loads(out.read_text())["cells"]
    assert cell["status"] == "ok", cell.get("reason")
    assert cell["summary"]["received"] == 2000
    # 14.0 per message without the steady heap; with it, none once the 16 copies' pages exist.
    assert cell["summary"]["faults_msg"] < 1.0
