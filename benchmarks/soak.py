"""Soak: hundreds of short ipclab runs with random worker kills and runner interrupts; then prove that nothing
was left behind.

    python3 benchmarks/soak.py --iterations 200 --seconds 600 [--seed 1] [--transports pipe,unix,...]

Each iteration starts ``python -m ipclab run`` on 1-3 random cells (transport x pattern x size, small counts)
and, at a random moment, does one of:
    nothing      the run must exit 0
    kill-worker  SIGKILL one worker: exit 1 and a "killed by SIGKILL" reason (or 0 if it had already finished)
    sigint       SIGINT to the runner: exit 130, result saved with "interrupted": true (or 0 if finished)
    sigterm      same with SIGTERM: exit 143
    kill-runner  SIGKILL the runner: its workers must die with it (PR_SET_PDEATHSIG); what it left behind is
                 counted, then removed with ``ipclab clean``
After every run: its processes are gone and its private directory is gone (except kill-runner, which clean
must then remove); new /dev/shm and /dev/mqueue ``ipclab`` entries and SysV queues that survive a short
settling time are leftovers. Exit status 0 only if there are none (other programs' objects can appear while
we watch; every leftover is named so it can be checked).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTIONS = ("nothing", "kill-worker", "sigint", "sigterm", "kill-runner")
WEIGHTS = (3, 3, 2, 2, 1)
EXPECTED = {"nothing": {0}, "kill-worker": {0, 1}, "sigint": {0, 130}, "sigterm": {0, 143}, "kill-runner": {-9, 0}}


def snapshot() -> set[str]:
    shm = {f"shm:{p}" for p in glob.glob("/dev/shm/*") if "ipclab" in os.path.basename(p)}
    mq = {f"mq:{p}" for p in glob.glob("/dev/mqueue/*") if "ipclab" in os.path.basename(p)}
    sysv = set()
    try:
        with open("/proc/sysvipc/msg", encoding="ascii") as f:
            next(f)
            sysv = {f"sysv:{line.split()[1]}" for line in f}
    except (OSError, StopIteration):
        pass
    return shm | mq | sysv


def dirs_of(pids: set[int]) -> list[str]:
    out = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "ipclab-*")):
        try:
            with open(os.path.join(path, "run.json"), encoding="utf-8") as f:
                if json.load(f).get("pid") in pids:
                    out.append(path)
        except (OSError, ValueError, AttributeError):
            continue
    return out


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.add(pid)
        except psutil.Error:
            pass
    return out


def available(names: list[str] | None) -> list[str]:
    sys.path.insert(0, ROOT)
    from ipclab.transports import TRANSPORTS, get_transport

    chosen = names or list(TRANSPORTS)
    return [n for n in chosen if get_transport(n).unavailable_reason() is None]


def one_run(rng: random.Random, transports: list[str], action: str, workdir: str, env: dict[str, str]) -> dict:
    cells = rng.randint(1, 3)
    ts = ",".join(rng.sample(transports, min(cells, len(transports))))
    pattern = rng.choice(["pingpong", "stream", "pingpong,stream"])
    size = rng.choice(["16", "64", "1K", "4K"])
    count = rng.choice(["50", "200", "2000"])
    out = os.path.join(workdir, "r.json")
    args = [sys.executable, "-m", "ipclab", "run", "-t", ts, "-p", pattern, "-s", size, "-n", count,
            "--timeout", "20", "-q", "-f", "csv", "-o", out]
    if os.path.exists(out):
        os.unlink(out)
    before = snapshot()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    delay = rng.uniform(0.05, 1.2)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            seen |= {c.pid for c in psutil.Process(proc.pid).children()}
        except psutil.Error:
            pass
        time.sleep(0.01)
    acted = proc.poll() is None
    if acted:
        if action == "kill-worker":
            try:
                kids = psutil.Process(proc.pid).children()
            except psutil.Error:
                kids = []
            if kids:
                rng.choice(kids).send_signal(signal.SIGKILL)
            else:
                acted = False
        elif action in ("sigint", "sigterm"):
            proc.send_signal(signal.SIGINT if action == "sigint" else signal.SIGTERM)
        elif action == "kill-runner":
            try:
                seen |= {c.pid for c in psutil.Process(proc.pid).children()}
            except psutil.Error:
                pass
            proc.send_signal(signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return {"problem": f"runner hung ({ts} {pattern} {size})", "action": action}
    code = proc.returncode
    result: dict = {"action": action, "acted": acted, "code": code, "cells": ts.count(",") + 1}
    problems = []
    saved = None
    if os.path.exists(out):
        try:
            with open(out, encoding="utf-8") as f:
                saved = json.load(f)
        except ValueError as exc:
            problems.append(f"unreadable result file: {exc}")
    if action in ("sigint", "sigterm") and code in (-2, -15):
        # The signal beat ipclab's handlers (interpreter start-up) or came after main() returned: acceptable
        # only if nothing was measured yet or the run had completed.
        result["outside_handlers"] = True
        if saved is not None and (saved.get("interrupted") or not saved.get("finished")):
            problems.append(f"killed by signal {-code} with a partial result file")
    elif code not in EXPECTED[action] or (not acted and code != 0):
        problems.append(f"exit {code} after {action}: {err.strip()[-300:]}")
    if "Traceback" in err:
        problems.append(f"traceback: {err.strip()[-300:]}")
    if code in (130, 143) and saved is not None and saved.get("interrupted") is not True:
        problems.append("interrupted run not marked interrupted")
    if action == "kill-worker" and acted and code == 1 and "killed by SIGKILL" not in err:
        problems.append(f"worker kill not reported: {err.strip()[-300:]}")
    settle = time.monotonic() + 10
    while alive(seen) and time.monotonic() < settle:
        time.sleep(0.05)
    if alive(seen):
        problems.append(f"processes survived: {sorted(alive(seen))}")
    left = dirs_of({proc.pid})
    if action == "kill-runner" and acted:
        result["runner_leftover_dirs"] = len(left)
        result["killed_runner"] = proc.pid
    elif left:
        problems.append(f"private dir left: {left}")
    new = snapshot() - before
    settle = time.monotonic() + 3
    while new and time.monotonic() < settle:
        time.sleep(0.1)
        new = snapshot() - before
    if new:
        result["new_objects"] = sorted(new)
    result["problems"] = problems
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=600.0, help="stop starting new runs after this long")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--transports", help="comma-separated (default: every available one)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    transports = available(args.transports.split(",") if args.transports else None)
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # A private TMPDIR: the runs' directories (and what SIGKILLed runners leave there until the final clean)
    # never show up in the leak checks of test suites running beside us.
    private_tmp = tempfile.mkdtemp(prefix="soak-tmp-")
    env["TMPDIR"] = tempfile.tempdir = private_tmp
    start = time.monotonic()
    tally: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    problems: list[str] = []
    suspicious: set[str] = set()
    leftover_dirs = 0
    killed_runners: set[int] = set()
    cells = 0
    done = 0
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        for i in range(args.iterations):
            if time.monotonic() - start > args.seconds:
                break
            action = rng.choices(ACTIONS, WEIGHTS)[0]
            r = one_run(rng, transports, action, workdir, env)
            done += 1
            cells += r.get("cells", 0)
            note = " (finished first)" if not r.get("acted", True) else ""
            note = " (outside ipclab's handlers)" if r.get("outside_handlers") else note
            tally[f"{action}{note}"] += 1
            codes[str(r.get("code"))] += 1
            leftover_dirs += r.get("runner_leftover_dirs", 0)
            if "killed_runner" in r:
                killed_runners.add(r["killed_runner"])
            suspicious.update(r.get("new_objects", []))
            problems += [f"#{i} {action}: {p}" for p in r.get("problems", [])] + (
                [f"#{i}: {r['problem']}"] if "problem" in r else [])
        cleaned = subprocess.run([sys.executable, "-m", "ipclab", "clean"], env=env, capture_output=True, text=True,
                                 timeout=60)
    # Objects seen appearing during a run that still exist after the final clean are leftovers.
    remaining = sorted(o for o in suspicious if o in snapshot()) + dirs_of(killed_runners)
    remaining += [os.path.join(private_tmp, e) for e in os.listdir(private_tmp)]
    if not remaining:
        os.rmdir(private_tmp)
    elapsed = time.monotonic() - start
    print(f"soak: {done} runs ({cells} cell slots), {elapsed:.0f} s, transports {','.join(transports)}")
    for key, n in sorted(tally.items()):
        print(f"  {key:32} {n}")
    print(f"  exit codes: {dict(sorted(codes.items()))}")
    print(f"  private dirs left by SIGKILLed runners (removed by 'ipclab clean'): {leftover_dirs}")
    summary = [ln for ln in cleaned.stdout.splitlines() if ln.startswith(("removed ", "nothing")) and
               ("object(s)" in ln or ln.startswith("nothing"))]
    print(f"  ipclab clean: {summary[-1] if summary else cleaned.stdout.strip()[-200:]}")
    print(f"  IPC objects left after clean: {len(remaining)} {remaining if remaining else ''}")
    print(f"  problems: {len(problems)}")
    for p in problems[:20]:
        print(f"    {p}")
    return 0 if not problems and not remaining else 1


if __name__ == "__main__":
    sys.exit(main())
