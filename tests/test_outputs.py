"""Issue 12, Outputs: ``run -o`` never harms what the user points at, and never loses what it measured.

The path is checked completely before the first cell (device nodes, FIFOs, existing results without --force,
NAME_MAX, a trailing slash, a parent that is a file, unwritable directories, a default results/ that is
read-only or someone else's); a save that fails mid-sweep keeps the measurements where the message says; temp
files of a killed save are found for ``ipclab clean``. The sweep is a stand-in (``Sweep``) that fails the test
if it is started when it should not be: nothing here starts a process except the one marked test.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from synthetic import make_result

from ipclab import results
from ipclab.cli import main

RESULT = make_result(trials=1, patterns=("pingpong",), base={"pipe": 10.0}, sizes=(64, 4096))
ARGS = ["run", "-t", "pipe", "-s", "64,4K", "-p", "pingpong", "-q"]


class Sweep:
    """Stands in for the engine's Runner: calls on_cell after each of RESULT's cells, as the engine does."""

    started = 0

    def __init__(self, config, *, on_cell=None, **kwargs) -> None:
        self.on_cell = on_cell
        self.result = {**copy.deepcopy(RESULT), "cells": []}
        self.progress = None

    def run(self):
        type(self).started += 1
        for cell in RESULT["cells"]:
            self.result["cells"].append(copy.deepcopy(cell))
            if self.on_cell:
                try:
                    self.on_cell(self.result)
                except BaseException:
                    self.result["interrupted"] = True  # as the engine does
                    raise
        return self.result


@pytest.fixture
def sweep(monkeypatch):
    Sweep.started = 0
    monkeypatch.setattr("ipclab.runner.Runner", Sweep)
    return Sweep


def _refused(capsys, code: int, *expect: str) -> str:
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("ipclab: error: --output: "), lines
    for word in expect:
        assert word in lines[0], lines[0]
    return lines[0]


# -- what is at the target -----------------------------------------------------------------------------
def _device(path: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own: the real one is not risked


@pytest.mark.parametrize("kind", ["device", "fifo", "socket"])
def test_a_target_that_is_not_a_regular_file_is_refused(capsys, tmp_path, sweep, kind) -> None:
    path = str(tmp_path / "target")
    if kind == "device":
        _device(path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        import socket

        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
    before = os.stat(path)
    _refused(capsys, main([*ARGS, "-o", path, "--force"]), repr(path),
             {"device": "device", "fifo": "FIFO", "socket": "socket"}[kind])
    after = os.stat(path)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert sweep.started == 0


def test_an_existing_result_is_kept_without_force(capsys, tmp_path, sweep) -> None:
    path = tmp_path / "run.json"
    path.write_text("precious\n")
    _refused(capsys, main([*ARGS, "-o", str(path)]), "already exists", "--force")
    assert path.read_text() == "precious\n" and sweep.started == 0
    assert main([*ARGS, "-o", str(path), "--force"]) == 0
    assert len(results.load(str(path))["cells"]) == 2


def test_a_target_replaced_by_a_fifo_during_the_run_is_not_renamed_over(tmp_path) -> None:
    path = str(tmp_path / "run.json")
    os.mkfifo(path)
    with pytest.raises(OSError, match="FIFO"):
        results.save(RESULT, path)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert os.listdir(tmp_path) == ["run.json"]  # no temp file left either


# -- the path, checked before the first cell ------------------------------------------------------------
@pytest.mark.parametrize("case, expect", [
    ("long-name", "NAME_MAX"),
    ("trailing-slash", "ends in '/'"),
    ("parent-is-file", "is a file, not a directory"),
    ("read-only-dir", "not writable"),
])
def test_a_bad_path_is_refused_before_the_first_cell(capsys, tmp_path, sweep, case, expect) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "ro").mkdir(mode=0o555)
    path = {"long-name": str(tmp_path / ("x" * 300 + ".json")), "trailing-slash": str(tmp_path / "new") + "/",
            "parent-is-file": str(tmp_path / "file" / "run.json"),
            "read-only-dir": str(tmp_path / "ro" / "r.json")}[case]
    _refused(capsys, main([*ARGS, "-o", path]), expect)
    assert sweep.started == 0


@pytest.mark.parametrize("case, expect", [("read-only", "read-only"), ("not-ours", "another user"),
                                          ("a-file", "not a directory"), ("a-symlink", "symbolic link")])
def test_the_default_results_dir_is_checked_before_the_first_cell(capsys, tmp_path, monkeypatch, sweep, case,
                                                                  expect) -> None:
    monkeypatch.chdir(tmp_path)
    if case == "read-only":
        os.mkdir("results", 0o555)
    elif case == "not-ours":
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root")
        os.mkdir("results", 0o777)
        os.chown("results", 65534, 65534)
    elif case == "a-file":
        open("results", "w").close()
    else:
        os.mkdir("elsewhere")
        os.symlink("elsewhere", "results")
    _refused(capsys, main(ARGS), "results/", expect, "--output PATH")
    assert sweep.started == 0
    assert not os.path.isdir("results") or os.listdir("results") == []


# -- a save that fails mid-sweep --------------------------------------------------------------------------
def test_a_full_disk_mid_sweep_keeps_the_measurements(capsys, tmp_path, monkeypatch, sweep) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "rescue"))
    os.mkdir(tmp_path / "rescue")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = str(out_dir / "run.json")
    real = results.save
    calls = []

    def disk_full_after_one(result, path):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(result, path)

    monkeypatch.setattr(results, "save", disk_full_after_one)
    code = main([*ARGS, "-o", target])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("ipclab: error: cannot save the result to ") and "No space left" in lines[0]
    (rescued,) = os.listdir(tmp_path / "rescue")
    where = str(tmp_path / "rescue" / rescued)
    assert where in lines[0]
    kept = results.load(where)
    assert len(kept["cells"]) == 2 and kept["interrupted"] is True  # both cells, though the second save failed
    assert len(results.load(target)["cells"]) == 1  # the last good save is intact
    assert os.listdir(out_dir) == ["run.json"]
    os.unlink(where)  # (a rescued result is meant to stay; the leak check counts ipclab-* files in TMPDIR)


# -- temp files of an interrupted save, for `ipclab clean` ------------------------------------------------
def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_stale_temp_files_are_those_no_live_process_writes(tmp_path) -> None:
    from ipclab import outputs

    def touch(name: str, age: float = 0.0) -> str:
        path = tmp_path / name
        path.write_text("{")
        if age:
            os.utime(path, (time.time() - age, time.time() - age))
        return str(path)

    dead = touch(f".ipclab-{_dead_pid()}-abc123_x.json.tmp")
    touch(f".ipclab-{os.getpid()}-abc123_x.json.tmp")  # a live writer: ours
    old = touch(".ipclab-k2j4_8xy.json.tmp", age=2 * 3600)  # an older ipclab's name, long abandoned
    touch(".ipclab-k2j4_9xy.json.tmp")  # same, but it could still be being written
    touch("notes.json.tmp")
    touch(f".ipclab-{_dead_pid()}-abc.json")
    assert outputs.stale_temp_files(str(tmp_path)) == sorted([dead, old])
    if os.geteuid() == 0:
        os.chown(dead, 65534, 65534)  # another user's: not ours to remove
        assert outputs.stale_temp_files(str(tmp_path)) == [old]


@pytest.mark.process
def test_a_save_killed_midway_leaves_a_temp_file_clean_finds(tmp_path) -> None:
    from ipclab import outputs

    target = str(tmp_path / "run.json")
    code = ("import json, os, sys, time\n"
            "from ipclab import results\n"
            "os.replace = lambda *a: time.sleep(60)  # stop between the write and the rename\n"
            f"results.save(json.loads(sys.stdin.read()), {target!r})\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(__file__))])}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(json.dumps(RESULT).encode())
        proc.stdin.close()
        deadline = time.monotonic() + 30
        while not os.listdir(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        (name,) = os.listdir(tmp_path)
        assert name.startswith(f".ipclab-{proc.pid}-") and name.endswith(".json.tmp")
        assert outputs.stale_temp_files(str(tmp_path)) == []  # the writer is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert outputs.stale_temp_files(str(tmp_path)) == [str(tmp_path / name)]
    from ipclab import cleanup

    todo = cleanup.plan(result_dirs=(str(tmp_path),))  # ipclab clean knows it: a path it removes
    assert ("path", str(tmp_path / name)) in todo.objects
    cleanup.clean(result_dirs=(str(tmp_path),), out=open(os.devnull, "w"))  # noqa: SIM115
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", ["report", "compare", "plot"])
def test_report_compare_plot_never_write_into_a_fifo_or_device(capsys, tmp_path, command) -> None:
    # With --force, `-o FIFO` used to open the FIFO and block for a reader (or write into a device as root).
    source = tmp_path / "r.json"
    source.write_text(json.dumps(RESULT))
    target = str(tmp_path / "out.png")
    os.mkfifo(target)
    argv = {"report": ["report", str(source)], "compare": ["compare", str(source), str(source)],
            "plot": ["plot", str(source)]}[command]
    signal.signal(signal.SIGALRM, lambda *a: pytest.fail("blocked opening the FIFO"))
    signal.alarm(5)
    try:
        code = main([*argv, "-o", target, "--force"])
    finally:
        signal.alarm(0)
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("ipclab: error: -o: ") and "FIFO" in err and len(err.splitlines()) == 1
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
