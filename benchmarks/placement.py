"""Stream placement study: is one CPU per side (ipclab's auto) faster and steadier than both on one CPU?

    python benchmarks/placement.py                      # pipe,unix,tcp x 64,64K, 7 reps
    python benchmarks/placement.py -t pipe -s 64K --reps 11 --floor

Runs ipclab's stream cell with ``--pin same`` and ``--pin cross`` alternately (same, cross, same, cross...)
and prints, per placement, the median MB/s, min..max, and the relative spread (max-min)/median that ipclab
itself warns about above 10 %. With --floor the hand-written floor runs the same two placements too, to tell
the mechanism's behaviour from the harness's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from overhead import floor_figures, ipclab_figures, placement_cpus  # noqa: E402

from ipclab.config import format_size, parse_size  # noqa: E402
from ipclab.runner import auto_count, auto_warmup  # noqa: E402

MODES = ("same", "cross")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transports", "-t", default="pipe,unix,tcp")
    ap.add_argument("--sizes", "-s", default="64,64K")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply ipclab's per-cell message count")
    ap.add_argument("--floor", action="store_true", help="also run the floors in both placements")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sides = ["ipclab", "floor"] if args.floor else ["ipclab"]
    cells = [(t, parse_size(s)) for t in args.transports.split(",") for s in args.sizes.split(",")]
    figs: dict[str, list[float]] = {}
    t0 = time.monotonic()
    for rep in range(args.reps):
        for name, size in cells:
            count = max(2, round(auto_count("stream", size) * args.scale))
            warmup = auto_warmup(count)
            for mode in MODES:
                for side in sides:
                    if side == "ipclab":
                        f = ipclab_figures(name, "stream", size, count, warmup, mode)
                    else:
                        f = floor_figures(name, "stream", size, count, warmup, placement_cpus(name, "stream", mode))
                    for key in ("value", "cpu_us_msg", "ctx_msg"):
                        figs.setdefault(f"{side}|{name}|{size}|{mode}|{key}", []).append(f[key])
        print(f"placement: rep {rep + 1}/{args.reps} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    print(f"\nstream MB/s by placement, {args.reps} reps, count x{args.scale:g} (spread = (max-min)/median)")
    head = (f"{'side':<7} {'transport':<9} {'size':>7} {'placement':<9} {'median':>10} {'min':>10} {'max':>10} "
            f"{'spread':>6} {'CPU-us/msg':>10} {'ctx/msg':>7}")
    print(head)
    print("-" * len(head))
    for side in sides:
        for name, size in cells:
            for mode in MODES:
                key = f"{side}|{name}|{size}|{mode}"
                v = figs[f"{key}|value"]
                med = statistics.median(v)
                print(f"{side:<7} {name:<9} {format_size(size):>7} {mode:<9} {med:>10.1f} {min(v):>10.1f} "
                      f"{max(v):>10.1f} {(max(v) - min(v)) / med:>6.0%} "
                      f"{statistics.median(figs[key + '|cpu_us_msg']):>10.2f} "
                      f"{statistics.median(figs[key + '|ctx_msg']):>7.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figs, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
