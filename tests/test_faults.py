"""Faults the runner survives, end to end through ``python -m ipclab``: a worker killed mid-cell or from outside,
a worker that hangs, one that raises, one that corrupts, Ctrl-C/SIGTERM to the runner, too few file
descriptors. Misbehaving transports come from tests/faulty_transports.py via IPCLAB_EXTRA_TRANSPORTS; every
test also passes the autouse leak check (no process, directory, segment or queue of ours survives)."""

from __future__ import annotations

import glob
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
from conftest import ROOT

from ipclab.patterns import get_pattern
from ipclab.transports import TRANSPORTS, get_transport

TESTS = os.path.dirname(os.path.abspath(__file__))
FAULTY = {
    "flip": "FlipTransport", "hang": "HangTransport", "raise": "RaiseTransport", "suicide": "SuicideTransport",
    "gated-unix": "Gated_unix", "gated-pipe": "Gated_pipe",
}


def fault_env(gate: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    plugins = dict(FAULTY, **(extra or {}))
    env = {
        "PYTHONPATH": os.pathsep.join([ROOT, TESTS]),
        "IPCLAB_EXTRA_TRANSPORTS": ",".join(f"{n}=faulty_transports:{c}" for n, c in plugins.items()),
    }
    if gate:
        env["IPCLAB_TEST_GATE"] = gate
    return env


def start(*args: str, env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ipclab", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(path: str, proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """Contents of ``path`` once it exists (the gated server is waiting); fails if the run ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, encoding="ascii") as f:
                return f.read()
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended ({proc.returncode}) before the gate: {err}")
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def run_dir_of(pid: int) -> str:
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "ipclab-*")):
        try:
            with open(os.path.join(path, "run.json"), encoding="utf-8") as f:
                if json.load(f)["pid"] == pid:
                    return path
        except (OSError, ValueError, KeyError):
            continue
    raise AssertionError(f"no run directory for pid {pid}")


def stderr_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("ipclab: warning:")]


def texts(warnings: list) -> list[str]:
    """A cell's warning texts, whether stored as objects {"code", "message"} or as plain strings."""
    return [w if isinstance(w, str) else w["message"] for w in warnings]


def cells_of(path: str) -> dict[tuple[str, str], dict]:
    with open(path, encoding="utf-8") as f:
        return {(c["pattern"], c["transport"]): c for c in json.load(f)["cells"]}


# -- a worker dies, hangs or raises: the cell fails with the reason, the sweep goes on, exit 1 ----------------
@pytest.mark.process
def test_worker_killed_mid_cell(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "suicide,pipe", "-p", "pingpong,stream", "-s", "64", "-n", "200", "--warmup", "0",
               "-q", "-f", "csv", "-o", str(out), env=fault_env())
    assert proc.returncode == 1, proc.stderr
    cells = cells_of(str(out))
    assert cells["pingpong", "suicide"]["status"] == "failed"
    assert cells["pingpong", "suicide"]["reason"].startswith("echo server killed by SIGKILL")
    assert cells["stream", "suicide"]["reason"].startswith("consumer killed by SIGKILL")
    assert cells["pingpong", "pipe"]["status"] == "ok" and cells["stream", "pipe"]["status"] == "ok"
    assert "ipclab: failed: stream suicide 64 B: consumer killed by SIGKILL" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.process
def test_worker_killed_from_outside(tmp_path) -> None:
    """SIGKILL from another process while the consumer sets up: the runner notices and goes on."""
    gate, out = str(tmp_path / "gate"), str(tmp_path / "r.json")
    proc = start("run", "-t", "gated-pipe,pipe", "-p", "stream", "-s", "64", "-n", "100", "-q", "-o", out,
                 env=fault_env(gate))
    try:
        victim = int(wait_for(gate + ".waiting", proc))
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 1, err
    cells = cells_of(out)
    assert cells["stream", "gated-pipe"]["reason"].startswith("consumer killed by SIGKILL")
    assert cells["stream", "pipe"]["status"] == "ok"
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE


@pytest.mark.process
def test_worker_that_hangs_is_timed_out(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "hang,pipe", "-p", "stream", "-s", "64", "-n", "5000", "--warmup", "0",
               "--timeout", "1", "-q", "-f", "csv", "-o", str(out), env=fault_env())
    assert proc.returncode == 1, proc.stderr
    cells = cells_of(str(out))
    assert cells["stream", "hang"]["status"] == "failed"
    assert "did not finish within 1 s" in cells["stream", "hang"]["reason"]
    assert cells["stream", "pipe"]["status"] == "ok"
    assert "ipclab: failed: stream hang 64 B:" in proc.stderr and "timed out" in proc.stderr


@pytest.mark.process
def test_worker_that_raises(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = cli("run", "-t", "raise", "-p", "stream", "-s", "64", "-n", "50", "-q", "-f", "csv", "-o", str(out),
               env=fault_env())
    assert proc.returncode == 1
    failures = [ln for ln in stderr_lines(proc.stderr) if ln.startswith("ipclab: failed:")]
    assert failures == ["ipclab: failed: stream raise 64 B: consumer failed: RuntimeError: faulty transport "
                        "refuses to connect (deliberate)"]
    assert "Traceback" not in proc.stderr
    cell = cells_of(str(out))["stream", "raise"]
    assert cell["traceback"].startswith("Traceback (most recent call last)")
    assert "faulty_transports.py" in cell["traceback"] and "RuntimeError" in cell["traceback"]


@pytest.mark.process
@pytest.mark.parametrize("verify", [True, False])
def test_corruption_is_counted_per_cell(cli, tmp_path, verify: bool) -> None:
    """The flip transport corrupts messages 0, 5, 10, ... of 50: --verify counts all 10, in every cell."""
    out = tmp_path / "r.json"
    args = ["run", "-t", "flip,pipe", "-p", "pingpong,stream", "-s", "100", "-n", "50", "--warmup", "0",
            "-q", "-f", "csv", "-o", str(out)]
    proc = cli(*args, *(["--verify"] if verify else []), env=fault_env())
    assert proc.returncode == 0, proc.stderr
    cells = cells_of(str(out))
    for pattern in ("pingpong", "stream"):
        flipped = cells[pattern, "flip"]["trials"][0]["metrics"]["corrupt"]
        if verify:
            assert flipped == 10, pattern
            assert "10 corrupt message(s)" in " ".join(texts(cells[pattern, "flip"]["warnings"]))
        else:
            assert 0 <= flipped <= 10, pattern  # sampled checks only
        assert cells[pattern, "pipe"]["trials"][0]["metrics"]["corrupt"] == 0
    if verify:
        assert "pingpong flip 100 B, stream flip 100 B: trial 1: 10 corrupt message(s)" in proc.stderr  # once


# -- the runner is interrupted: children end, objects go, partial results saved -----------------------------
@pytest.mark.process
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_runner_interrupted(tmp_path, signum: int, code: int) -> None:
    gate, out = str(tmp_path / "gate"), str(tmp_path / "r.json")
    proc = start("run", "-t", "pipe,gated-unix,tcp", "-p", "pingpong", "-s", "64", "-n", "100", "-q", "-o", out,
                 env=fault_env(gate))
    try:
        server = int(wait_for(gate + ".waiting", proc))
        workdir = run_dir_of(proc.pid)
        workers = [p.pid for p in psutil.Process(proc.pid).children()]
        assert server in workers and len(workers) == 2
        socket_files = glob.glob(os.path.join(workdir, "*.sock"))
        assert socket_files, os.listdir(workdir)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == code, err
    assert f"interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err
    with open(out, encoding="utf-8") as f:
        result = json.load(f)
    assert result["interrupted"] is True
    assert [(c["transport"], c["status"]) for c in result["cells"]] == [("pipe", "ok")]
    assert result["cells"][0]["trials"][0]["metrics"]["round_trips"] == 100
    assert not os.path.exists(workdir)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in workers)


# -- resources -----------------------------------------------------------------------------------------------
@pytest.mark.process
def test_too_many_open_files_names_the_limit(tmp_path) -> None:
    def low_nofile() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))

    proc = start("run", "-t", "pipe,unix", "-p", "pingpong", "-s", "64", "-n", "20", "-q", "-f", "csv",
                 "-o", str(tmp_path / "r.json"), env=fault_env(), preexec_fn=low_nofile)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = stderr_lines(err)
    assert lines and all("too many open files" in ln and "RLIMIT_NOFILE is 8" in ln and "ulimit -n" in ln
                         for ln in lines if ln.startswith("ipclab: failed:")), lines
    assert any(ln.startswith("ipclab: failed:") for ln in lines)


# -- private and 0600 ----------------------------------------------------------------------------------------
def _gated_names() -> list[str]:
    names = []
    for name in TRANSPORTS:
        cls = get_transport(name)
        if not cls.unavailable_reason() and cls.not_applicable(get_pattern("pingpong").SPEC.shape, 64) is None:
            names.append(name)
    return names


@pytest.mark.process
def test_live_run_objects_are_private(tmp_path) -> None:
    """While each transport's server waits in connect(), everything it and the runner created is 0600/0700."""
    names = _gated_names()
    gate, out = str(tmp_path / "gate"), str(tmp_path / "r.json")
    extra = {f"gated-{n}": f"Gated_{n.replace('-', '_')}" for n in names}
    proc = start("run", "-t", ",".join(f"gated-{n}" for n in names), "-p", "pingpong", "-s", "64", "-n", "20",
                 "--warmup", "0", "-q", "-f", "csv", "-o", out, env=fault_env(gate, extra))
    seen: dict[str, list[str]] = {}
    try:
        for name in names:
            server = int(wait_for(gate + ".waiting", proc))
            os.unlink(gate + ".waiting")
            workdir = run_dir_of(proc.pid)
            assert stat.S_IMODE(os.lstat(workdir).st_mode) == 0o700
            checked = seen.setdefault(name, [])
            for entry in os.listdir(workdir):
                mode = stat.S_IMODE(os.lstat(os.path.join(workdir, entry)).st_mode)
                assert mode == 0o600, f"{name}: {entry} has mode {mode:o}"
                checked.append(entry)
            # objects outside the directory, as the workers hold them (a segment may already be unlinked)
            for pid in [p.pid for p in psutil.Process(proc.pid).children()]:
                for fd in glob.glob(f"/proc/{pid}/fd/*"):
                    try:
                        target = os.readlink(fd)
                        st = os.stat(fd)
                    except OSError:
                        continue
                    if target.startswith(("/dev/shm/", "/dev/mqueue/")) or "ipclab" in target:
                        assert stat.S_IMODE(st.st_mode) == 0o600, f"{name}: {target} has mode {st.st_mode:o}"
                        checked.append(target)
            with open(f"{gate}.go.{server}", "w"):
                pass
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert all(any(e == "run.json" for e in seen[n]) for n in names)
    assert any(e.endswith(".stderr") for e in seen[names[0]])
    if "shm" in names:  # the segment itself was seen (through the workers' fds) and checked
        assert any(e.startswith("/dev/shm/") for e in seen["shm"]), seen["shm"]
    if "unix" in names:
        assert any(e.endswith(".sock") for e in seen["unix"]), seen["unix"]


def test_result_file_and_private_dir_modes(tmp_path) -> None:
    """The run record and the object records are 0600 from birth (os.open with a mode, not chmod later)."""
    from ipclab.transports.base import CellSpec
    from ipclab.transports.pipe import PipeTransport

    d = tempfile.mkdtemp(prefix="ipclab-")
    try:
        t = PipeTransport(d, CellSpec(get_pattern("pingpong").SPEC.shape, 64))
        old = os.umask(0)
        try:
            t.ledger.record("path", "/nonexistent/ipclab-x")
        finally:
            os.umask(old)
        assert stat.S_IMODE(os.stat(os.path.join(d, "objects.jsonl")).st_mode) == 0o600
    finally:
        import shutil

        shutil.rmtree(d)


# -- soak (not in the default suite) -------------------------------------------------------------------------
@pytest.mark.process
@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak(request) -> None:
    """benchmarks/soak.py: 100 runs with random kills and interrupts leave nothing behind."""
    if "soak" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long fault-injection run: select it with -m soak")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "soak.py"), "--iterations", "100",
                           "--seconds", "600"], capture_output=True, text=True, timeout=880)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "IPC objects left after clean: 0" in proc.stdout and "problems: 0" in proc.stdout


@pytest.mark.process
def test_runner_as_pid_1(tmp_path) -> None:
    """In a container without an init the runner is PID 1: its workers must not take that for a dead parent."""
    import shutil as _shutil

    unshare = _shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare not installed")
    probe = subprocess.run([unshare, "-p", "-f", "--mount-proc", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no PID namespaces here: {probe.stderr.decode(errors='replace').strip()}")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "r.json"
    proc = subprocess.run([unshare, "-p", "-f", "--mount-proc", sys.executable, "-m", "ipclab", "run", "-t", "pipe",
                           "-p", "pingpong", "-s", "64", "-n", "50", "-q", "-o", str(out)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    (cell,) = json.loads(out.read_text())["cells"]
    assert cell["status"] == "ok" and cell["trials"][0]["metrics"]["round_trips"] == 50


@pytest.mark.process
def test_interrupt_mid_cell_keeps_the_finished_trials() -> None:
    from ipclab.config import RunConfig
    from ipclab.runner import Runner

    def progress(event: str, **info: object) -> None:
        if event == "trial" and info["trial"] == 2:
            raise KeyboardInterrupt

    runner = Runner(RunConfig(transports=("pipe",), patterns=("pingpong",), sizes=(64,), count=50, warmup=5,
                              trials=3), progress=progress)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    (cell,) = runner.result["cells"]
    assert runner.result["interrupted"] is True
    assert len(cell["trials"]) == 1 and cell["summary"]["round_trips"] == 50
    assert "interrupted after 1 of 3 trials" in texts(cell["warnings"])
