"""--timeout bounds every phase, and a signal at any moment ends ipclab with 130/143 and one line.

End to end through ``python -m ipclab`` (process tier): a worker stuck in set-up fails after --timeout, not after
the fixed set-up limit, with a message that says "stuck", not "raise --timeout"; SIGINT/SIGTERM during the
interpreter's imports, inside a finaliser (where an exception used to be printed as "Exception ignored" and
lost) and after main() has returned all end with 130/143, one ``ipclab:`` line and nothing left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from test_faults import cells_of, fault_env

pytestmark = pytest.mark.process


def test_a_worker_stuck_in_setup_fails_after_timeout_not_the_setup_limit(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    gate = str(tmp_path / "gate")  # never opened: the gated server waits in connect() for a minute
    started = time.monotonic()
    proc = cli("run", "-t", "gated-pipe", "-p", "stream", "-s", "64", "-n", "100", "--timeout", "1", "-q",
               "-f", "csv", "-o", str(out), env=fault_env(gate=gate), timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    reason = cells_of(str(out))["stream", "gated-pipe"]["reason"]
    assert "did not start within 1 s (timed out in set-up" in reason, reason
    assert "raise --timeout" not in reason
    assert elapsed < 20, f"set-up took {elapsed:.0f} s with --timeout 1"  # the fixed limit was 30 s


# -- signals at any moment --------------------------------------------------------------------------------
# A sitecustomize (found on PYTHONPATH at interpreter start-up) that makes the signal arrive at an exact moment:
# while a given module is being imported ("import"), inside a finaliser during that import ("finaliser": the
# exception cannot leave a __del__), or after main() has returned ("exit": from an atexit function).
SITECUSTOMIZE = '''
import atexit, os, sys, time

SIG, WHEN, WHAT = int(os.environ["T_SIGNAL"]), os.environ["T_WHEN"], os.environ.get("T_MODULE", "")


def wait_for_the_handler():
    for _ in range(500):  # the handler runs during the sleep; 5 s at most
        time.sleep(0.01)


class Bomb:
    def __del__(self):
        os.kill(os.getpid(), SIG)
        n = 0
        for _ in range(100000):  # the handler runs here, inside the finaliser
            n += 1


class Trigger:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == WHAT:
            sys.meta_path.remove(Trigger)
            if WHEN == "finaliser":
                Bomb()
            else:
                os.kill(os.getpid(), SIG)
                wait_for_the_handler()
        return None


if WHEN == "exit":
    atexit.register(lambda: (os.kill(os.getpid(), SIG), wait_for_the_handler()))
else:
    sys.meta_path.insert(0, Trigger)
'''


def run_with_signal(tmp_path, signum: int, when: str, module: str = "", *args: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, str(site)]), T_SIGNAL=str(int(signum)), T_WHEN=when,
               T_MODULE=module)
    return subprocess.run([sys.executable, "-m", "ipclab", *(args or ("sysinfo",))], env=env, capture_output=True,
                          text=True, timeout=120, cwd=str(tmp_path))


def assert_one_line(proc: subprocess.CompletedProcess, signum: int) -> None:
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipclab: ") and name in lines[0], proc.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("module", ["ipclab.cli", "ipclab.cli.run"])  # before main(); inside main()'s imports
def test_a_signal_during_the_imports(tmp_path, signum: int, module: str) -> None:
    assert_one_line(run_with_signal(tmp_path, signum, "import", module), signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("module", ["ipclab.patterns.pingpong", "ipclab.transports.pipe"])
def test_a_signal_while_a_registry_imports_its_modules(tmp_path, signum: int, module: str) -> None:
    """The registries turn a module that fails to import into one "fix it or remove the file" line; a signal
    landing during such an import is the interrupt, not a broken module (soak: the error line and then the
    interrupt's, two lines)."""
    proc = run_with_signal(tmp_path, signum, "import", module, "list")
    assert "failed to import" not in proc.stderr and "cannot load" not in proc.stderr, proc.stderr
    assert_one_line(proc, signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_a_finaliser_is_not_swallowed(tmp_path, signum: int) -> None:
    """Before: "Exception ignored in: <function Bomb.__del__>", a traceback, and the command went on (exit 0)."""
    proc = run_with_signal(tmp_path, signum, "finaliser", "ipclab.cli.run")
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert_one_line(proc, signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_main_returned(tmp_path, signum: int) -> None:
    """Before: SIGTERM ended the process with -15 (main had restored the default disposition); SIGINT printed
    "Exception ignored in atexit callback" and exited 0. The run itself finished, saved and left nothing."""
    out = tmp_path / "r.json"
    proc = run_with_signal(tmp_path, signum, "exit", "", "run", "-t", "pipe", "-p", "pingpong", "-s", "64",
                           "-n", "50", "--trials", "1", "-q", "-f", "csv", "-o", str(out))
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode == 128 + signum, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"ipclab: interrupted by {signal.Signals(signum).name}"
    assert json.loads(out.read_text())["cells"][0]["status"] == "ok"
