"""Workers as real processes with the control channel on their stdin/stdout (``python -m ipclab.worker --stdio``),
the shape a launcher that runs workers on another host through a command will use. Process tier."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest
from conftest import ROOT, reap, stdin_eof_ends_it

from ipclab import runner
from ipclab.config import RunConfig
from ipclab.engine.launch import LocalProcess, WorkerSpec, worker_env
from ipclab.patterns import get_pattern
from ipclab.transports import get_transport
from ipclab.transports.base import CellSpec
from ipclab.transports.pipe import PipeTransport

pytestmark = pytest.mark.process


def test_a_sweep_over_stdio_workers() -> None:
    config = RunConfig(transports=("pipe", "unix"), patterns=("pingpong", "stream"), sizes=(64,), count=200,
                       warmup=5)
    result = runner.Runner(config, metadata={}, launcher=LocalProcess(stdio=True)).run()
    assert [c["status"] for c in result["cells"]] == ["ok"] * 4, [c["reason"] for c in result["cells"]]
    pingpong, _, stream, _ = result["cells"]
    assert pingpong["trials"][0]["metrics"]["round_trips"] == 200
    assert stream["trials"][0]["metrics"]["received"] == 200


def test_a_failing_stdio_worker_reports_its_one_line(monkeypatch) -> None:
    """The worker's stdout is the protocol: its ERROR reaches the runner whole, the cell fails, the sweep goes on.

    The transport class is found by the workers as module:Class (tests/faulty_transports.py on their path)."""
    import os

    from faulty_transports import RaiseTransport

    tests = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", tests + os.pathsep + os.environ.get("PYTHONPATH", ""))
    config = RunConfig(transports=("raise", "pipe"), patterns=("pingpong",), sizes=(64,), count=50)
    result = runner.Runner(config, metadata={}, launcher=LocalProcess(stdio=True),
                           transports=lambda name: RaiseTransport if name == "raise" else get_transport(name)
                           ).run()
    bad, good = result["cells"]
    assert bad["status"] == "failed" and good["status"] == "ok"
    assert bad["reason"] == "echo server failed: RuntimeError: faulty transport refuses to connect (deliberate)"
    assert "faulty_transports.py" in bad["traceback"]


def test_a_print_in_a_stdio_worker_never_reaches_the_protocol(monkeypatch) -> None:
    import os

    from faulty_transports import ChattyTransport

    tests = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", tests + os.pathsep + os.environ.get("PYTHONPATH", ""))
    config = RunConfig(transports=("chatty",), patterns=("pingpong",), sizes=(64,), count=50)
    result = runner.Runner(config, metadata={}, launcher=LocalProcess(stdio=True),
                           transports=lambda name: ChattyTransport).run()
    (cell,) = result["cells"]
    assert cell["status"] == "ok", cell["reason"]
    assert cell["trials"][0]["metrics"]["round_trips"] == 50


def _stdio_server(tmp: str) -> tuple:
    transport = PipeTransport(tmp, CellSpec(shape=get_pattern("pingpong").SPEC.shape, size=64, clients=1))
    address = transport.setup()
    handle = LocalProcess(stdio=True).start(WorkerSpec("server", "server", 0, "echo server",
                                                       transport.fds_for("server"), tmp))
    return transport, address, handle


def test_stdin_eof_ends_a_worker_mid_trial() -> None:
    """The runner's end closing (an ssh that dies) ends a worker even while it waits in the measured loop."""
    with tempfile.TemporaryDirectory(prefix="ipclab-test-") as tmp:
        transport, address, handle = _stdio_server(tmp)
        try:
            handle.channel.send({"type": "CONFIG", "transport": "pipe", "pattern": "pingpong", "address": address,
                                 "size": 64, "count": 100, "duration": None, "warmup": 0, "seed": 1,
                                 "verify": False, "reliable": True, "clients": 1, "role": "server", "index": 0,
                                 "cpus": None})
            assert handle.channel.recv(timeout=30)["type"] == "READY"
            handle.channel.send({"type": "START"})
            assert handle.channel.recv(timeout=30)["type"] == "STARTED"
            stdin_eof_ends_it(handle)  # blocked in its loop: no client will ever write
        finally:
            reap(handle)
            transport.teardown()


def test_stdin_eof_before_config_ends_a_worker() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "ipclab.worker", "--stdio"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=worker_env())
    out, err = proc.communicate(b"", timeout=30)
    assert proc.returncode == 1, err
    assert b"ControlClosed" in out  # its one-line ERROR, length-prefixed JSON on stdout


def test_the_worker_command_line_is_explained() -> None:
    proc = subprocess.run([sys.executable, "-m", "ipclab.worker"], capture_output=True, text=True, timeout=30,
                          env=worker_env(), cwd=ROOT)
    assert proc.returncode == 2 and "--stdio" in proc.stderr
