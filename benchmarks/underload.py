"""Latency under load against a reference: ipclab's open-loop tcp and udp ping-pong against ``sockperf ul``.

    python benchmarks/underload.py                          # tcp, udp at 1000, 10000, 50000/s; 2 s; 3 rounds
    python benchmarks/underload.py --rates 1000,20000 --seconds 3 --rounds 5 --cpus 0,1

For each protocol and rate, ipclab runs ``python -m ipclab run -t PROTO -p pingpong --rate R -s SIZE -d SECONDS
--pin S,C`` (through its CLI, reading the JSON it saves) and sockperf runs ``sockperf ul --mps R --reply-every 1
--full-rtt`` against ``sockperf sr``, server on CPU S and client on CPU C for both (sockperf under taskset). The two
tools alternate (A B, then B A in the next round) so a drift of the machine hits both alike; each figure is the
median over rounds. Printed: p50 / p99 of both, the ratio ipclab / sockperf (target: p50 ratio <= TARGET) and
ipclab's schedule lag (actual minus intended send: the harness's own error) and achieved rate.

Read the ratio knowing what each tool times: ipclab's latency runs from the *intended* send time (coordinated-
omission safe), sockperf's from the actual send; ipclab's service time (from the actual send) is printed too. A
sockperf server this script starts is killed by its pid in a ``finally``. Needs sockperf
(``sudo apt-get install sockperf``) and ipclab with ``--rate``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import reference  # noqa: E402

TARGET = 1.3  # ipclab's p50 may be at most this many times sockperf's
_ANSI = re.compile(rb"\x1b\[[0-9;]*m")
_PCT = re.compile(rb"percentile (\d+\.\d+) =\s*([0-9.]+)")
_VALID = re.compile(rb"\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)")
_OBS = re.compile(rb"Total (\d+) observations")
FIGURES = ("rtt_p50_us", "rtt_p99_us", "service_p50_us", "lag_p50_us", "lag_p99_us", "achieved_msg_s")


class BenchError(RuntimeError):
    """A tool did not run or said nothing usable: one line for the user."""


def parse_sockperf(output: bytes) -> dict[str, float]:
    """p50, p99 (µs), observations and the achieved send rate of ``sockperf ul`` output (colour codes ignored)."""
    text = _ANSI.sub(b"", output)
    pct = {float(p): float(v) for p, v in _PCT.findall(text)}
    valid = _VALID.search(text)
    if 50.0 not in pct or 99.0 not in pct or not valid:
        raise BenchError(f"sockperf gave no percentiles: {text.decode(errors='replace')[-300:]!r}")
    seconds, sent = float(valid.group(1)), int(valid.group(2))
    obs = _OBS.search(text)
    return {"rtt_p50_us": pct[50.0], "rtt_p99_us": pct[99.0], "samples": float(obs.group(1)) if obs else 0.0,
            "achieved_msg_s": sent / seconds if seconds > 0 else 0.0}


def ipclab_figures(result: dict[str, Any], proto: str, rate: float) -> dict[str, float]:
    """The open-loop cell of ``proto`` at ``rate`` in an ipclab result: its FIGURES (absent ones left out)."""
    for cell in result.get("cells", []):
        offered = cell.get("rate")
        if cell.get("transport") == proto and isinstance(offered, (int, float)) and abs(offered - rate) < 1e-6:
            if cell.get("status") != "ok":
                raise BenchError(f"ipclab {proto} at {rate:g}/s: {cell.get('status')}: {cell.get('reason')}")
            summary = cell.get("summary", {})
            return {k: float(summary[k]) for k in FIGURES if isinstance(summary.get(k), (int, float))}
    raise BenchError(f"the ipclab result has no open-loop {proto} cell at {rate:g}/s (is --rate merged?)")


def run_ipclab(proto: str, rate: float, size: int, seconds: float, cpus: tuple[int, int] | None) -> dict[str, float]:
    root = os.path.dirname(HERE)
    env = dict(os.environ, PYTHONPATH=root)  # this source tree's ipclab, passed on to its workers
    with tempfile.TemporaryDirectory(prefix="ipclab-underload-") as cwd:
        path = os.path.join(cwd, "r.json")
        argv = [sys.executable, "-m", "ipclab", "run", "-t", proto, "-p", "pingpong", "--rate", f"{rate:g}",
                "-s", str(size), "-d", f"{seconds:g}", "-o", path, "-q",
                "--pin", f"{cpus[0]},{cpus[1]}" if cpus else "auto"]
        out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=seconds * 4 + 120)
        if out.returncode not in (0, 1) or not os.path.exists(path):
            raise BenchError(f"ipclab run failed ({out.returncode}): {out.stderr.strip()[-300:]}")
        with open(path, encoding="utf-8") as f:
            return ipclab_figures(json.load(f), proto, rate)


def run_sockperf(proto: str, rate: float, size: int, seconds: float, cpus: tuple[int, int] | None) -> dict[str, float]:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    port = reference._free_port(kind)
    flag = ["--tcp"] if proto == "tcp" else []
    s_cpu, c_cpu = cpus if cpus else (None, None)
    server = subprocess.Popen(reference._pinned(s_cpu, ["sockperf", "sr", *flag, "-i", reference.HOST,
                                                        "-p", str(port)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # sockperf's server prints nothing machine-readable when ready
        argv = reference._pinned(c_cpu, ["sockperf", "ul", *flag, "-i", reference.HOST, "-p", str(port),
                                         "-m", str(size), "-t", f"{seconds:g}", f"--mps={rate:.0f}",
                                         "--reply-every=1", "--full-rtt"])
        out = subprocess.run(argv, capture_output=True, timeout=seconds + 30)
        return parse_sockperf(out.stdout + out.stderr)
    finally:
        reference._stop(server)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for r in runs for k in r}
    return {k: statistics.median(r[k] for r in runs if k in r) for k in keys}


def table(rows: list[tuple[str, float, dict[str, float], dict[str, float]]]) -> str:
    """The printed comparison: one line per (protocol, rate)."""
    head = ["proto", "rate/s", "ipclab p50/p99 (µs)", "service p50", "sockperf p50/p99", "p50 ratio", "p99 ratio",
            "lag p50/p99 (µs)", "achieved ipclab/sockperf"]
    body = [head]
    for proto, rate, mine, ref in rows:
        def pair(d: dict[str, float], a: str, b: str) -> str:
            return f"{d.get(a, float('nan')):.1f} / {d.get(b, float('nan')):.1f}"

        r50 = mine.get("rtt_p50_us", float("nan")) / ref["rtt_p50_us"] if ref.get("rtt_p50_us") else float("nan")
        r99 = mine.get("rtt_p99_us", float("nan")) / ref["rtt_p99_us"] if ref.get("rtt_p99_us") else float("nan")
        verdict = "ok" if r50 <= TARGET else "OVER"
        body.append([proto, f"{rate:g}", pair(mine, "rtt_p50_us", "rtt_p99_us"),
                     f"{mine.get('service_p50_us', float('nan')):.1f}", pair(ref, "rtt_p50_us", "rtt_p99_us"),
                     f"{r50:.2f} {verdict}", f"{r99:.2f}", pair(mine, "lag_p50_us", "lag_p99_us"),
                     f"{mine.get('achieved_msg_s', float('nan')):.0f} / {ref.get('achieved_msg_s', float('nan')):.0f}"])
    widths = [max(len(r[i]) for r in body) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in body]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]]) + (
        f"\n\nratio = ipclab / sockperf (target p50 ratio <= {TARGET}); ipclab from the intended send time, "
        "sockperf and ipclab's service time from the actual send; lag = ipclab's schedule lag (its own error)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protos", default="tcp,udp", help="tcp, udp or both (default: tcp,udp)")
    p.add_argument("--rates", default="1000,10000,50000", help="offered rates per second (default: 1000,10000,50000)")
    p.add_argument("--size", type=int, default=64, help="message size in bytes (default: 64)")
    p.add_argument("--seconds", type=float, default=2.0, help="per run (default: 2)")
    p.add_argument("--rounds", type=int, default=3, help="alternated rounds per cell; median taken (default: 3)")
    p.add_argument("--cpus", default=None, help="server,client CPUs for both tools (default: the first two usable)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",")]
        protos = [p for p in args.protos.split(",") if p]
        if any(r <= 0 for r in rates) or not set(protos) <= {"tcp", "udp"} or args.rounds < 1 or args.seconds <= 0:
            raise ValueError
    except ValueError:
        print("underload: error: --rates must be numbers above 0, --protos tcp and/or udp, --rounds >= 1, "
              "--seconds > 0", file=sys.stderr)
        return 2
    tools = reference.available()
    if not tools["sockperf"]:
        print("underload: error: sockperf is not installed; sudo apt-get install sockperf", file=sys.stderr)
        return 2
    usable = sorted(os.sched_getaffinity(0))
    cpus = (tuple(int(c) for c in args.cpus.split(",")) if args.cpus else
            (usable[0], usable[1]) if len(usable) >= 2 and tools["taskset"] else None)
    rows = []
    try:
        for proto in protos:
            for rate in rates:
                mine: list[dict[str, float]] = []
                ref: list[dict[str, float]] = []
                for i in range(args.rounds):  # A B, B A, A B ...: a drift of the machine hits both tools alike
                    order = ("ipclab", "sockperf") if i % 2 == 0 else ("sockperf", "ipclab")
                    for tool in order:
                        run = run_ipclab if tool == "ipclab" else run_sockperf
                        (mine if tool == "ipclab" else ref).append(
                            run(proto, rate, args.size, args.seconds, cpus))  # type: ignore[arg-type]
                rows.append((proto, rate, median_of(mine), median_of(ref)))
                print(f"  {proto} at {rate:g}/s done", file=sys.stderr)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"underload: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.size} B, {args.seconds:g} s per run, median of {args.rounds} alternated rounds; "
          f"CPUs (server, client): {cpus or 'unpinned'}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
