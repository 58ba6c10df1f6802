"""Start-up cost: a worker's interpreter + imports (target < 150 ms, no heavy optional modules), and a default run.

    python benchmarks/startup.py                 # workers of every available transport, 1 ping-pong each
    python benchmarks/startup.py --full-run      # also time a default `ipclab run` (target < 60 s)

Workers run for real: the runner spawns them through its normal path, but ``sys.executable`` is swapped for a
tiny wrapper that adds ``-X importtime`` and keeps each worker's import log, so the protocol, the CONFIG, the
transport's connect and the pattern are exactly those of a real run. Reported per transport:
    start-up  wall time of a fresh interpreter importing exactly the modules that worker imported (median)
    share     start-up minus ``python -c pass`` (bare): what ipclab's own imports cost
    trial     wall time of a one-round-trip trial: two workers started, connected, one message, torn down
    heavy     optional heavy modules the worker imported (must be none except its own transport's library)
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from ipclab.config import RunConfig  # noqa: E402
from ipclab.patterns import get_pattern  # noqa: E402
from ipclab.runner import Runner  # noqa: E402
from ipclab.transports import TRANSPORTS, get_transport  # noqa: E402

HEAVY = ("zmq", "psutil", "tabulate", "matplotlib", "rich", "posix_ipc", "sysv_ipc", "numpy")
# A transport may import its own library, and nothing else heavy.
OWN = {"zmq-ipc": "zmq", "zmq-tcp": "zmq", "posix-mq": "posix_ipc", "sysv-mq": "sysv_ipc"}
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _wall_ms(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return (time.perf_counter() - t0) * 1e3


def python_ms(code: str = "pass", n: int = 15) -> tuple[float, float]:
    """(median wall ms of ``python -c code``, median of its excess over ``python -c pass`` run just before).

    Bare and loaded interpreters alternate, so a machine that slows down for a while slows both."""
    walls, shares = [], []
    for _ in range(n):
        bare = _wall_ms("pass")
        wall = _wall_ms(code)
        walls.append(wall)
        shares.append(wall - bare)
    return statistics.median(walls), statistics.median(shares)


def import_all(modules: set[str]) -> str:
    """Code that imports exactly the modules a worker imported (in any order: each import is idempotent)."""
    names = sorted(m for m in modules if not m.startswith("_frozen") and m != "site")
    return (f"import importlib\nfor m in {names!r}:\n    try:\n        importlib.import_module(m)\n"
            "    except Exception:\n        pass\n")


def parse_importtime(path: str) -> tuple[float, set[str], list[tuple[int, str]]]:
    """(total import ms, every module imported, top-level (cumulative us, name) entries)."""
    total_us = 0
    modules: set[str] = set()
    top: list[tuple[int, str]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _LINE.match(line)
            if not m:
                continue
            modules.add(m.group(4))
            if len(m.group(3)) <= 1:  # one space after "|": a top-level import
                total_us += int(m.group(2))
                top.append((int(m.group(2)), m.group(4)))
    return total_us / 1e3, modules, sorted(top, reverse=True)


def probe_workers(name: str, logdir: str) -> dict:
    """One real 1-round-trip trial whose workers log their imports into ``logdir``."""
    wrapper = os.path.join(logdir, "python-importtime")
    with open(wrapper, "w", encoding="utf-8") as f:
        # The runner's own stderr file for the worker is replaced by the import log (fine for a benchmark).
        f.write(f'#!/bin/sh\nexec "{sys.executable}" -X importtime "$@" 2>"{logdir}/{name}-$$.log"\n')
    os.chmod(wrapper, 0o700)
    real = sys.executable
    sys.executable = wrapper
    try:
        shape = get_pattern("pingpong").SPEC.shape
        size = 64 if get_transport(name).not_applicable(shape, 64) is None else 0  # signal: empty only
        config = RunConfig(transports=(name,), patterns=("pingpong",), sizes=(size,), count=1, warmup=0, trials=1)
        t0 = time.perf_counter()
        (cell,) = Runner(config).run()["cells"]
        trial_ms = (time.perf_counter() - t0) * 1e3
    finally:
        sys.executable = real
    logs = sorted(glob.glob(os.path.join(logdir, f"{name}-*.log")))
    per_worker = [parse_importtime(p) for p in logs]
    heavy = sorted({m.split(".")[0] for _, mods, _ in per_worker for m in mods if m.split(".")[0] in HEAVY})
    modules = set().union(*(mods for _, mods, _ in per_worker)) if per_worker else set()
    return {"status": cell["status"], "reason": cell.get("reason"), "trial_ms": trial_ms, "modules": modules,
            "heavy": heavy, "top": [t for t in per_worker[0][2] if t[1].startswith("ipclab")][:6] if per_worker
            else []}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transports", "-t", default=None, help="comma list (default: every available one)")
    ap.add_argument("--full-run", action="store_true", help="also time a default `ipclab run` (target < 60 s)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print each worker's slowest top-level imports")
    args = ap.parse_args(argv)
    names = args.transports.split(",") if args.transports else list(TRANSPORTS)
    names = [n for n in names if get_transport(n).unavailable_reason() is None]
    bare, _ = python_ms()
    print(f"bare interpreter (python -c pass): {bare:.1f} ms, median of 15 (this sandbox's site-packages .pth "
          "files are part of it)\n")
    print(f"{'transport':<10} {'start-up ms':>11} {'ipclab share':>12} {'trial ms':>9}  heavy modules imported")
    failed = False
    with tempfile.TemporaryDirectory(prefix="ipclab-startup-") as logdir:
        for name in names:
            r = probe_workers(name, logdir)
            if r["status"] != "ok":
                print(f"{name:<10} failed: {r['reason']}")
                continue
            start, share = python_ms(import_all(r["modules"]))
            bad = [m for m in r["heavy"] if m != OWN.get(name)]
            failed |= bool(bad) or start >= 150
            print(f"{name:<10} {start:>11.1f} {share:>12.1f} {r['trial_ms']:>9.0f}  "
                  f"{', '.join(r['heavy']) or '-'}{'  <- NOT ALLOWED' if bad else ''}")
            if args.verbose:
                print("           slowest ipclab imports (-X importtime, cumulative): "
                      + ", ".join(f"{mod} {us / 1e3:.1f} ms" for us, mod in r["top"]))
    print("\nstart-up = wall time of a fresh interpreter importing exactly what that worker imported (target "
          "< 150 ms);\nipclab share = median of (start-up - bare) over alternating runs;\n"
          "trial = a whole 1-round-trip trial through the runner")
    if args.full_run:
        with tempfile.TemporaryDirectory(prefix="ipclab-startup-") as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ipclab", "run", "-q", "-o", os.path.join(tmp, "r.json")],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
        print(f"default `ipclab run`: {wall:.1f} s (target < 60 s)")
        failed |= wall >= 60
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
