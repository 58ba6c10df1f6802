"""What ipclab's harness costs: ipclab against hand-written floors (and C reference tools), A B A B ...

    python benchmarks/overhead.py                       # every transport ipclab lists, 64,4K,64K, 5 reps
    python benchmarks/overhead.py --quick               # 3 reps, 64 and 64K
    python benchmarks/overhead.py -t pipe,tcp -s 64 --reps 9 --json out.json
    python benchmarks/overhead.py -p stream --duration 0.5     # ipclab runs by duration (the floor by count)
    python benchmarks/overhead.py -p stream --markdown         # the ratio table as markdown (the README's)
    python benchmarks/overhead.py --pool a.json,b.json --markdown  # runs saved with --json, their pairs pooled

For every cell (transport x pattern x size) and repetition, ipclab runs the cell once through its runner API
(fresh worker interpreters, like ``ipclab run``), then the floor (benchmarks/floors.py, a fresh process)
does the same work with the same count, warm-up, payload and CPUs; the ratio of that adjacent pair is one
sample, so slow drifts of the machine cancel. Printed: medians of each side and min/median/max of the ratios,
against the targets of issue 13:
    ping-pong p50          ipclab / floor <= 1.10 on every transport
    stream MB/s 4K, 64K    ipclab / floor >= 0.90 on pipe, unix, tcp, shm, posix-mq, zmq-ipc (64 B: >= 0.80)
    shm stream 1M          ipclab / memcpy bandwidth >= 0.5
and the median of the per-pair ratios of CPU time per message (both processes, ipclab / floor): on a loaded
machine throughput swings with the scheduler, CPU time per message much less, so it says what the harness adds
even when the throughput ratio is noise.

With --duration, ipclab's trials run for that long (the duration loops: no clock read per message) and the
floor sends the count ipclab's policy would give: the ratio compares two rates.

Where the time goes (stream, per message, timing micro-loops of each loop's own work around a C call): the
old producer paid ~130 ns (struct.pack_into with a clock read per message), the old consumer ~210 ns (a clock
read, struct.unpack_from's tuple, the sequence test, the latency store); streamloops.py pays ~50 ns and
~55 ns (a store and a load of the sequence word, a test of its low bits; the clock and the latency store on 1
message in 16). A message of 64 B over a pipe costs ~1 us of CPU per side, so the rest is the mechanism.
Where iperf3 / sockperf are installed, they run in the same rotation: TCP 64 KiB stream (iperf3), TCP and
UDP 64 B ping-pong (sockperf), printed as ipclab / reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this source tree's ipclab, wherever we are run from
sys.path.insert(0, HERE)

import reference  # noqa: E402

from ipclab.config import KiB, MiB, RunConfig, format_size, parse_size  # noqa: E402
from ipclab.patterns import get_pattern  # noqa: E402
from ipclab.runner import Runner, auto_count, auto_warmup, choose_placement  # noqa: E402
from ipclab.transports import TRANSPORTS, get_transport  # noqa: E402

ALL = ("pipe", "unix", "tcp", "udp", "shm", "posix-mq", "zmq-ipc")
PP_MAX = 1.10
STREAM_MIN = 0.90  # at 4 KiB and 64 KiB
STREAM_MIN_SMALL = 0.80  # at 64 B
STREAM_TARGETED = ("pipe", "unix", "tcp", "shm", "posix-mq", "zmq-ipc")
MEMCPY_MIN = 0.5
HEADLINE = {"pingpong": "rtt_p50_us", "stream": "mb_s"}


def ipclab_figures(transport: str, pattern: str, size: int, count: int, warmup: int,
                   pin: str, duration: float | None = None) -> dict[str, float]:
    """value (headline figure), cpu_us_msg and ctx_msg (both workers) of one ipclab trial via the runner API
    (a trial of ``duration`` seconds instead of ``count`` messages when given)."""
    config = RunConfig(transports=(transport,), patterns=(pattern,), sizes=(size,),
                       count=None if duration else count, duration=duration, warmup=warmup,
                       pin=pin, trials=1, timeout=60)
    (cell,) = Runner(config).run()["cells"]
    if cell["status"] != "ok":
        raise RuntimeError(f"ipclab {pattern} {transport} {size}: {cell['status']}: {cell['reason']}")
    s = cell["summary"]
    return {"value": float(s[HEADLINE[pattern]]), "cpu_us_msg": float(s.get("cpu_us_msg") or 0.0),
            "ctx_msg": float(s.get("ctx_msg") or 0.0)}


def floor_figures(transport: str, pattern: str, size: int, count: int, warmup: int,
                  cpus: tuple[int, int] | None) -> dict[str, float]:
    """value, cpu_us_msg and ctx_msg (both processes) of one floor run in a fresh interpreter."""
    argv = [sys.executable, os.path.join(HERE, "floors.py"), transport, pattern, str(size), "--count", str(count),
            "--warmup", str(warmup), "--cpus", f"{cpus[0]},{cpus[1]}" if cpus else "none"]
    out = subprocess.run(argv, capture_output=True, timeout=120, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"floor {pattern} {transport} {size}: {out.stderr.strip()[-300:]}")
    got = json.loads(out.stdout)
    return {"value": float(got[HEADLINE[pattern]]), "cpu_us_msg": float(got["cpu_us_msg"]),
            "ctx_msg": float(got["ctx_msg"])}


def placement_cpus(transport: str, pattern: str, pin: str) -> tuple[int, int] | None:
    """The CPUs ipclab will give (server, client) for this cell: the floor and the tools get the same."""
    placed, _, _ = choose_placement(pin, get_transport(transport), pattern, ["server", "client"])
    if placed["server"] is None:
        return None
    return placed["server"][0], placed["client"][0]


def memcpy_mb_s(size: int = MiB, seconds: float = 0.3) -> float:
    """Bandwidth of one Python-level memcpy of ``size`` bytes (a memoryview slice assignment), MB/s.

    The same buffers every time (cache-resident, like a ring of a few 1 MiB slots): the fastest copy this
    machine does, so the shm target is a strict one.
    """
    src = memoryview(bytearray(os.urandom(size)))
    dst = memoryview(bytearray(size))
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        for _ in range(32):
            dst[:] = src
        best = max(best, 32 * size * 1e3 / (time.perf_counter_ns() - t0))
    return best


def cells_for(names: list[str], patterns: list[str], sizes: list[int]) -> list[tuple[str, str, int]]:
    out = []
    for pattern in patterns:
        for name in names:
            cls = get_transport(name)
            extra = [MiB] if name == "shm" and pattern == "stream" and MiB not in sizes else []
            for size in [*sizes, *extra]:
                if cls.not_applicable(get_pattern(pattern).SPEC.shape, size) is None:
                    out.append((name, pattern, size))
    return out


def spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def verdict(name: str, pattern: str, size: int, med: float) -> str:
    if pattern == "pingpong":
        return "ok" if med <= PP_MAX else f"MISS (> {PP_MAX:.2f})"
    if name in STREAM_TARGETED and size in (64, 4 * KiB, 64 * KiB):
        low = STREAM_MIN_SMALL if size == 64 else STREAM_MIN
        return "ok" if med >= low else f"MISS (< {low:.2f})"
    return "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transports", "-t", default=None, help=f"comma list (default: those of {','.join(ALL)} "
                    "that ipclab lists and can run)")
    ap.add_argument("--sizes", "-s", default="64,4K,64K")
    ap.add_argument("--patterns", "-p", default="pingpong,stream")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply ipclab's per-cell message count (both sides)")
    ap.add_argument("--pin", default="auto", help="ipclab --pin mode for both sides (auto, same, cross, none)")
    ap.add_argument("--quick", action="store_true", help="3 reps, sizes 64 and 64K, shorter reference runs")
    ap.add_argument("--no-reference", action="store_true", help="skip iperf3/sockperf")
    ap.add_argument("--duration", type=float, default=None, help="ipclab trials of this many seconds instead of "
                    "a count (the floor keeps the count)")
    ap.add_argument("--markdown", action="store_true", help="also print the ratio table as markdown")
    ap.add_argument("--json", default=None, help="also write every figure to this file")
    ap.add_argument("--pool", default=None, metavar="FILE[,FILE...]",
                    help="measure nothing: pool the pairs of earlier --json files (several runs of one cell: the "
                         "median of all their pairs) and print the same report")
    args = ap.parse_args(argv)
    if args.pool:
        try:
            return pool(args.pool.split(","), args)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            print(f"overhead: --pool {args.pool}: not files written by overhead.py --json ({detail}); "
                  "save runs with --json FILE first", file=sys.stderr)
            return 2
    if args.quick:
        args.reps, args.sizes = min(args.reps, 3), "64,64K"
    wanted = args.transports.split(",") if args.transports else [n for n in ALL if n in TRANSPORTS]
    names = [n for n in wanted if n in TRANSPORTS and get_transport(n).unavailable_reason() is None]
    for n in set(wanted) - set(names):
        print(f"overhead: skipping {n}: not registered or unavailable in ipclab", file=sys.stderr)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    cells = cells_for(names, args.patterns.split(","), sizes)
    tools = reference.available() if not args.no_reference else {}
    refs = []  # (label, ipclab cell, function)
    if tools.get("iperf3") and ("tcp", "stream", 64 * KiB) in cells:
        cpus = placement_cpus("tcp", "stream", args.pin)
        refs.append(("iperf3 tcp stream 64 KiB", ("tcp", "stream", 64 * KiB),
                     lambda c=cpus: reference.iperf3_stream(64 * KiB, 64 * MiB, c)["mb_s"]))
    if tools.get("sockperf") and tools.get("taskset"):
        secs = 1 if args.quick else 2
        for proto in ("tcp", "udp"):
            if (proto, "pingpong", 64) in cells:
                cpus = placement_cpus(proto, "pingpong", args.pin)
                refs.append((f"sockperf {proto} pingpong 64 B", (proto, "pingpong", 64),
                             lambda p=proto, c=cpus: reference.sockperf_pingpong(p, 64, secs, c)["rtt_p50_us"]))

    figures: dict[tuple[str, str, int], dict[str, list[float]]] = {
        c: {"ipclab": [], "floor": [], "ratio": [], "ipclab_cpu": [], "floor_cpu": [], "cpu_ratio": []}
        for c in cells}
    ref_figs: dict[str, dict[str, list[float]]] = {r[0]: {"ref": [], "ratio": []} for r in refs}
    memcpy: list[float] = []
    failures: list[str] = []
    t_start = time.monotonic()
    for rep in range(args.reps):
        memcpy.append(memcpy_mb_s())
        for cell in cells:
            name, pattern, size = cell
            count = max(2, round(auto_count(pattern, size) * args.scale))
            warmup = auto_warmup(count)
            try:
                fa = ipclab_figures(name, pattern, size, count, warmup, args.pin, args.duration)
                fb = floor_figures(name, pattern, size, count, warmup, placement_cpus(name, pattern, args.pin))
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                failures.append(f"rep {rep + 1}: {exc}")
                continue
            f = figures[cell]
            f["ipclab"].append(fa["value"])
            f["floor"].append(fb["value"])
            f["ratio"].append(fa["value"] / fb["value"])
            f["ipclab_cpu"].append(fa["cpu_us_msg"])
            f["floor_cpu"].append(fb["cpu_us_msg"])
            f["cpu_ratio"].append(fa["cpu_us_msg"] / fb["cpu_us_msg"] if fb["cpu_us_msg"] else float("nan"))
        for label, cell, fn in refs:
            try:
                value = fn()
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
                failures.append(f"rep {rep + 1}: {label}: {exc}")
                continue
            if figures[cell]["ipclab"]:
                ref_figs[label]["ref"].append(value)
                ref_figs[label]["ratio"].append(figures[cell]["ipclab"][-1] / value)
        print(f"overhead: rep {rep + 1}/{args.reps} done ({time.monotonic() - t_start:.0f} s)", file=sys.stderr)

    print_report(cells, figures, refs, ref_figs, memcpy, args)
    if args.markdown:
        print_markdown(cells, figures, args)
    for line in failures:
        print(f"failed: {line}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"cells": [{"transport": n, "pattern": p, "size": s, **figures[(n, p, s)]}
                                 for n, p, s in cells],
                       "reference": ref_figs, "memcpy_mb_s": memcpy, "failures": failures,
                       "argv": sys.argv[1:]}, fh, indent=1)
    return 0


def pool(paths: list[str], args: argparse.Namespace) -> int:
    """Print the report of several saved runs together: each cell's pairs (and memcpy, reference figures) from
    every file that has the cell, in file order; ``reps`` becomes the number of pairs pooled."""
    cells: list[tuple[str, str, int]] = []
    figures: dict[tuple[str, str, int], dict[str, list[float]]] = {}
    ref_figs: dict[str, dict[str, list[float]]] = {}
    memcpy: list[float] = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            saved = json.load(fh)
        for c in saved["cells"]:
            cell = (c["transport"], c["pattern"], int(c["size"]))
            if cell not in figures:
                cells.append(cell)
                figures[cell] = defaultdict(list)
            for k in ("ipclab", "floor", "ratio", "ipclab_cpu", "floor_cpu", "cpu_ratio"):
                figures[cell][k].extend(c.get(k, []))
        for label, r in saved.get("reference", {}).items():
            for k, values in r.items():
                ref_figs.setdefault(label, defaultdict(list))[k].extend(values)
        memcpy.extend(saved.get("memcpy_mb_s", []))
    pairs = sorted({len(f["ratio"]) for f in figures.values()})
    args.reps = "/".join(map(str, pairs)) + f" pairs pooled from {len(paths)} runs"  # the report's header
    refs = [(label, None, None) for label in ref_figs]
    print_report(cells, figures, refs, ref_figs, memcpy or [float("nan")], args)
    if args.markdown:
        print_markdown(cells, figures, args)
    return 0


def print_report(cells: list[tuple[str, str, int]], figures: dict, refs: list, ref_figs: dict,
                 memcpy: list[float], args: argparse.Namespace) -> None:
    window = f"duration {args.duration:g} s" if args.duration else f"count x{args.scale:g}"
    reps = args.reps if isinstance(args.reps, str) else f"{args.reps} reps"
    print(f"\nipclab / floor, {reps}, pin={args.pin}, {window} "
          "(ping-pong: p50 RTT us, lower is better; stream: MB/s at the consumer, higher is better)")
    head = (f"{'transport':<9} {'pattern':<8} {'size':>7} {'ipclab':>10} {'floor':>10}  {'ratio min/med/max':<20} "
            f"{'target':<13} {'CPU-us/msg ipclab floor':>23} {'CPU ratio':>9}")
    print(head)
    print("-" * len(head))
    for cell in cells:
        name, pattern, size = cell
        f = figures[cell]
        if not f["ratio"]:
            print(f"{name:<9} {pattern:<8} {format_size(size):>7} {'failed':>10}")
            continue
        lo, med, hi = spread(f["ratio"])
        print(f"{name:<9} {pattern:<8} {format_size(size):>7} {statistics.median(f['ipclab']):>10.2f} "
              f"{statistics.median(f['floor']):>10.2f}  {lo:.2f} / {med:.2f} / {hi:.2f}     "
              f"{verdict(name, pattern, size, med):<13} {statistics.median(f['ipclab_cpu']):>15.2f} "
              f"{statistics.median(f['floor_cpu']):>7.2f} {statistics.median(f['cpu_ratio']):>9.2f}")
    mc = statistics.median(memcpy)
    print(f"\nmemcpy (1 MiB memoryview slice assignment, cache-resident): median {mc:,.0f} MB/s "
          f"(min {min(memcpy):,.0f}, max {max(memcpy):,.0f})")
    shm = figures.get(("shm", "stream", MiB))
    if shm and shm["ipclab"]:
        ratios = [v / mc for v in shm["ipclab"]]
        lo, med, hi = spread(ratios)
        ok = "ok" if med >= MEMCPY_MIN else f"MISS (< {MEMCPY_MIN})"
        print(f"shm stream 1 MiB: ipclab {statistics.median(shm['ipclab']):,.0f} MB/s = "
              f"{lo:.2f} / {med:.2f} / {hi:.2f} x memcpy   {ok}")
    if refs:
        print("\nipclab / reference tool (same cell, same CPUs)")
        for label, _, _ in refs:
            r = ref_figs[label]
            if not r["ratio"]:
                print(f"{label:<28} failed")
                continue
            lo, med, hi = spread(r["ratio"])
            unit = "MB/s" if "stream" in label else "us p50 RTT"
            print(f"{label:<28} reference {statistics.median(r['ref']):>9.2f} {unit:<11} ratio "
                  f"{lo:.2f} / {med:.2f} / {hi:.2f}")
    else:
        print("\n(no reference tools: apt-get install iperf3 sockperf)")


def print_markdown(cells: list[tuple[str, str, int]], figures: dict, args: argparse.Namespace) -> None:
    """The ratio table as markdown: what the README's "What the harness costs" shows."""
    print("\n| cell | ipclab | floor | ratio (min / median / max) | CPU per message, ipclab / floor | target |")
    print("|---|---|---|---|---|---|")
    for cell in cells:
        name, pattern, size = cell
        f = figures[cell]
        if not f["ratio"]:
            continue
        lo, med, hi = spread(f["ratio"])
        unit = "µs p50" if pattern == "pingpong" else "MB/s"
        print(f"| {name} {pattern} {format_size(size)} | {statistics.median(f['ipclab']):,.2f} {unit} | "
              f"{statistics.median(f['floor']):,.2f} {unit} | {lo:.2f} / {med:.2f} / {hi:.2f} | "
              f"{statistics.median(f['cpu_ratio']):.2f} | {verdict(name, pattern, size, med)} |")


if __name__ == "__main__":
    sys.exit(main())
