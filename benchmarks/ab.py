"""Before/after: two ipclab source trees on the same cells, alternately (A B A B ...), through the CLI's JSON.

    python benchmarks/ab.py --a /tmp/before --b . -t pipe,unix,tcp -p pingpong -s 64 --reps 9

Each tree is a directory holding an ``ipclab`` package (a git worktree, or a copy with the files under test
swapped). ``python -m ipclab run ... --format json -o -`` runs from each tree with PYTHONPATH pointing at it
(the runner passes that path on to its workers), so both sides pay the same start-up and the same placement.
Printed per cell: the median headline figure of each side and min/median/max of the ratio b/a.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HEADLINE = {"pingpong": "rtt_p50_us", "stream": "mb_s"}


def run_tree(tree: str, argv: list[str]) -> dict[tuple[str, str, int], float]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    with tempfile.TemporaryDirectory(prefix="ipclab-ab-") as cwd:  # cwd must not shadow the tree's package
        out = subprocess.run([sys.executable, "-m", "ipclab", "run", *argv, "--format", "json", "-o", "-", "-q"],
                             capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{tree}: {out.stderr.strip()[-300:]}")
    result = json.loads(out.stdout)
    figures = {}
    for cell in result["cells"]:
        if cell["status"] == "ok":
            key = (cell["transport"], cell["pattern"], cell["size_bytes"])
            figures[key] = float(cell["summary"][HEADLINE[cell["pattern"]]])
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="tree A (before)")
    ap.add_argument("--b", required=True, help="tree B (after)")
    ap.add_argument("--transport", "-t", default="pipe,unix,tcp")
    ap.add_argument("--pattern", "-p", default="pingpong,stream")
    ap.add_argument("--size", "-s", default="64,64K")
    ap.add_argument("--pin", default="auto")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    run_argv = ["-t", args.transport, "-p", args.pattern, "-s", args.size, "--pin", args.pin]
    a_figs: dict[tuple[str, str, int], list[float]] = {}
    b_figs: dict[tuple[str, str, int], list[float]] = {}
    for rep in range(args.reps):
        for tree, figs in ((args.a, a_figs), (args.b, b_figs)):
            for key, value in run_tree(tree, run_argv).items():
                figs.setdefault(key, []).append(value)
        print(f"ab: rep {rep + 1}/{args.reps}", file=sys.stderr)
    print(f"\nA = {args.a}, B = {args.b}, {args.reps} reps; ratio = B / A "
          "(ping-pong p50 us: < 1 is faster; stream MB/s: > 1 is faster)")
    print(f"{'transport':<9} {'pattern':<8} {'size':>7} {'A median':>10} {'B median':>10}  ratio min/med/max")
    for key in sorted(a_figs):
        a, b = a_figs[key], b_figs.get(key, [])
        ratios = [y / x for x, y in zip(a, b)]
        if not ratios:
            continue
        print(f"{key[0]:<9} {key[1]:<8} {key[2]:>7} {statistics.median(a):>10.2f} {statistics.median(b):>10.2f}  "
              f"{min(ratios):.3f} / {statistics.median(ratios):.3f} / {max(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
