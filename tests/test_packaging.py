"""Installed, not cloned: the wheel and the sdist carry the experiments, and an installed ipclab runs one by name
from an empty folder; `run -e` prints the question, and `check` accepts the run and rejects it with a trial gone.

The wheel is built from a copy of the source tree (the worktree gets no build/ or egg-info), installed with
--no-deps into a fresh virtual environment that borrows the dependencies from this interpreter
(--system-site-packages), and run without this checkout on the path, so a missing data file fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from conftest import ROOT

from ipclab import catalog
from ipclab.check import check

pytestmark = pytest.mark.process

IGNORE = shutil.ignore_patterns(".git", "results", "__pycache__", "*.egg-info", "build", "dist", ".venv",
                                ".pytest_cache", ".ruff_cache", ".mypy_cache")


def _copy_source(tmp_path) -> str:
    src = str(tmp_path / "src")
    shutil.copytree(ROOT, src, symlinks=True, ignore=IGNORE)
    return src


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, **kwargs)
    assert proc.returncode == 0, f"{' '.join(argv)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _isolation_flags() -> list[str]:
    """Build offline with this interpreter's setuptools when it can make wheels by itself (>= 70.1, or the
    wheel package present); otherwise let pip fetch the build requirements from the package index."""
    try:
        import setuptools

        major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
        if (major, minor) >= (70, 1):
            return ["--no-build-isolation"]
        import wheel  # noqa: F401
    except (ImportError, ValueError):
        return []
    return ["--no-build-isolation"]


def test_the_wheel_carries_the_experiments_and_runs_one_by_name_from_an_empty_folder(tmp_path):
    src, dist, venv, empty = _copy_source(tmp_path), tmp_path / "dist", tmp_path / "venv", tmp_path / "empty"
    env = _clean_env()
    _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "-q", "-w", str(dist), *_isolation_flags()],
         env=env, cwd=str(tmp_path))
    (wheel,) = dist.glob("ipclab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        packaged = sorted(os.path.basename(n)[:-5] for n in z.namelist()
                          if n.startswith("ipclab/experiments/") and n.endswith(".toml"))
    assert packaged == catalog.shipped_names()

    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], env=env)
    python, ipclab = str(venv / "bin" / "python"), str(venv / "bin" / "ipclab")
    # pip comes from the borrowed site-packages and installs into the venv it runs in; --ignore-installed: an
    # ipclab of the same version in those site-packages (CI's `pip install '.[test]'`) must not satisfy it
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)], env=env)
    empty.mkdir()
    where = _run([python, "-c", "import ipclab; print(ipclab.__file__)"], env=env, cwd=str(empty)).stdout.strip()
    assert where.startswith(str(venv)), f"the venv imported ipclab from {where}, not from the installed wheel"

    listed = _run([ipclab, "experiments"], env=env, cwd=str(empty)).stdout
    for name in catalog.shipped_names():
        assert f"\n{name} " in f"\n{listed}"
    proc = _run([ipclab, "run", "-e", "same-core", "-q", "-t", "pipe", "-s", "64", "-n", "200", "-k", "1"],
                env=env, cwd=str(empty))
    assert proc.stdout.startswith("Question: Does it matter whether the two processes share a CPU?")
    result = json.loads((empty / "results" / "same-core.json").read_text())
    assert result["config"]["experiment"] == "same-core" and result["config"]["pin"] == "same"
    assert [c["status"] for c in result["cells"]] == ["ok"]


def test_the_sdist_carries_the_experiments(tmp_path):
    src = _copy_source(tmp_path)
    out = _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                "print(b.build_sdist(sys.argv[1]))", str(tmp_path / "sdist")], cwd=src, env=_clean_env())
    name = out.stdout.strip().splitlines()[-1]
    with tarfile.open(tmp_path / "sdist" / name) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for shipped in catalog.shipped_names():
        assert f"ipclab/experiments/{shipped}.toml" in members


def test_run_prints_the_question_and_check_accepts_the_run_but_not_with_a_trial_removed(cli, tmp_path):
    (tmp_path / "tiny.toml").write_text(
        'description = "tiny"\nquestion = "Is a pipe quick?"\nmetrics = ["rtt_p50_us"]\ntransports = ["pipe"]\n'
        'patterns = ["pingpong"]\nsizes = [64]\ncount = 200\ntrials = 4\npin = "same"\noutput = "results/t.json"\n')
    proc = cli("run", "-e", "tiny.toml", "-q", cwd=str(tmp_path), check=True)
    head = proc.stdout.splitlines()
    assert head[0] == "Question: Is a pipe quick?" and head[2].startswith("pingpong: round trip, p50")
    assert "p99" not in proc.stdout and "CPU time" not in proc.stdout  # only the metrics the experiment names
    result = json.loads((tmp_path / "results" / "t.json").read_text())
    experiment = catalog.open_experiment(str(tmp_path / "tiny.toml"))
    # a busy machine (load, the hypervisor's steal time) is a fact about where the test ran, not about the file:
    # everything else must pass
    from ipclab.check import _busy

    machine = _busy(result)
    assert [p for p in check(result, experiment) if p != machine] == []
    del result["cells"][0]["trials"][1]
    problems = check(result, experiment)
    assert any("3 trial(s), the experiment asks for at least 4" in p for p in problems)
