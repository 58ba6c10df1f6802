"""Where the shared-memory transports' microseconds go: the ring and slot channels against the hand-written floor.

    python benchmarks/shm_profile.py ops                     # cost of each Python-level step, one process
    python benchmarks/shm_profile.py pingpong -s 64 --reps 9 # floor / ring / slot / exchange round trips, one CPU
    python benchmarks/shm_profile.py stream -s 64K --reps 9  # floor / rings of several sizes, one CPU
    python benchmarks/shm_profile.py copy                    # the copy ceiling of a stream at 64 KiB and 1 MiB

Unlike overhead.py (the judge: the whole harness through the runner), this isolates the channel: the same loops
as benchmarks/floors.py (a fork, bound methods, no pattern, no header), over the floor's own mechanism
(floors_extra.py) or over an ipclab channel of this tree. Variants of one cell run alternately (A B C A B C ...)
and each is reported as the median of its per-repetition ratio to the first, so slow drifts of a loaded
machine cancel. ``ops`` and ``copy`` take the minimum of many short runs (the cost without interference).
"""

from __future__ import annotations

import argparse
import mmap
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this source tree's ipclab
sys.path.insert(0, HERE)

import floors  # noqa: E402
import floors_extra  # noqa: E402

from ipclab.config import parse_size  # noqa: E402
from ipclab.declarations import TrafficShape  # noqa: E402
from ipclab.transports.base import CellSpec  # noqa: E402
from ipclab.transports.ringwait import full_fence  # noqa: E402
from ipclab.transports.shm import ShmTransport  # noqa: E402

SLOT = TrafficShape(duplex=True, in_flight=1)  # what ping-pong declares: the slot protocol
RING = TrafficShape(duplex=True, in_flight=None)  # the same cell forced onto the ring
ONE_WAY = TrafficShape(duplex=False, in_flight=None)


def _channels(shape: TrafficShape, size: int, ring_bytes: int | None = None) -> tuple[Any, dict[str, Any]]:
    cls = ShmTransport if ring_bytes is None else type("Sized", (ShmTransport,), {"ring_bytes": ring_bytes})
    transport = cls(tempfile.mkdtemp(prefix="ipclab-prof-"), CellSpec(shape=shape, size=size))
    return transport, transport.setup()


def _done(transport: Any) -> None:
    """Undo the transport's objects, then remove its private directory (the transport leaves it to its maker)."""
    try:
        transport.teardown()
    finally:
        shutil.rmtree(transport.workdir, ignore_errors=True)


def pingpong_p50(variant: str, size: int, count: int, warmup: int, cpus: tuple[int, int]) -> float:
    """p50 round trip (us): ``floor`` (floors_extra), ``ring`` / ``slot`` channels in the floor's loops, or
    ``exchange``: the slot channel's exchange, one call per round trip and side (pingpong's hot loops)."""
    if variant == "floor":
        return float(floors_extra.shm_floor("pingpong", size, count, warmup, cpus, 1)["rtt_p50_us"])
    transport, address = _channels(RING if variant == "ring" else SLOT, size)
    payload = bytearray(random.Random(1).randbytes(size))

    def server() -> None:
        ch = ShmTransport.connect(dict(address), "server")
        rmv = memoryview(bytearray(size))
        if variant == "exchange":
            exchange = ch.exchange
            ch.recv_into(rmv)
            for _ in range(warmup + count - 1):
                exchange(rmv, rmv)
            ch.send(rmv)
        else:
            floors.pp_server(ch.send, ch.recv_into, rmv, warmup + count)
        ch.close()

    def client() -> array:
        ch = ShmTransport.connect(dict(address), "client")
        smv, rmv = memoryview(payload), memoryview(bytearray(size))
        if variant == "exchange":
            out = _exchange_client(ch.exchange, smv, rmv, count, warmup)
        else:
            out = floors.pp_client(ch.send, ch.recv_into, smv, rmv, count, warmup)
        ch.close()
        return out

    try:
        _, samples = floors.two_process(server, client, cpus)
    finally:
        _done(transport)
    return floors._p50_us(samples)


def _exchange_client(exchange: Callable[[memoryview, memoryview], int], smv: memoryview, rmv: memoryview,
                     count: int, warmup: int) -> array:
    """floors.pp_client with one exchange call per round trip."""
    clock = time.perf_counter_ns
    samples = array("q", bytes(8 * count))
    for _ in range(warmup):
        exchange(smv, rmv)
    for i in range(count):
        t0 = clock()
        exchange(smv, rmv)
        samples[i] = clock() - t0
    return samples


def stream_mb_s(variant: str, size: int, count: int, warmup: int, cpus: tuple[int, int]) -> float:
    """MB/s at the consumer: ``floor``, ``ring`` (setup()'s sizing) or ``ringNK`` (a ring of N KiB)."""
    if variant == "floor":
        return float(floors_extra.shm_floor("stream", size, count, warmup, cpus, 1)["mb_s"])
    ring_bytes = parse_size(variant[4:]) if variant != "ring" else None
    transport, address = _channels(ONE_WAY, size, ring_bytes)
    payload = bytearray(random.Random(1).randbytes(size))

    def consumer() -> tuple[int, int, int]:
        ch = ShmTransport.connect(dict(address), "server")
        out = floors.st_consumer(ch.recv_into, memoryview(bytearray(size)), count, warmup)
        ch.close()
        return out

    def producer() -> None:
        ch = ShmTransport.connect(dict(address), "client")
        send, smv = ch.send, memoryview(payload)
        for _ in range(warmup + count):
            send(smv)
        ch.close()

    try:
        got, _ = floors.two_process(consumer, producer, cpus)
    finally:
        _done(transport)
    return float(floors.stream_figures(size, *got)["mb_s"])


def alternate(fn: Callable[..., float], variants: list[str], size: int, count: int, warmup: int,
              cpus: tuple[int, int], reps: int, unit: str) -> None:
    """Run the variants alternately; print medians, per-pair ratios to the first, CPU-us per message."""
    values: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(reps):
        for v in variants:
            values[v].append(fn(v, size, count, warmup, cpus))
            cpu[v].append(floors.LAST_CPU_S[0] * 1e6 / (warmup + count))
    base = variants[0]
    print(f"{size} B, {count} messages, CPUs {cpus}, {reps} reps (ratio: median of per-rep ratios to {base})")
    for v in variants:
        ratios = [a / b for a, b in zip(values[v], values[base])]
        print(f"  {v:<10} {statistics.median(values[v]):10.2f} {unit:<5} ratio {statistics.median(ratios):.3f} "
              f"[{min(ratios):.3f}, {max(ratios):.3f}]   CPU-us/msg (both processes, set-up included) "
              f"median {statistics.median(cpu[v]):.2f}")


def best_ns(fn: Callable[[], None], n: int, repeat: int = 15) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def ops() -> None:
    """What each step of a hot path costs here, minus the empty loop (min of 15 runs of 20,000)."""
    n = 20000
    region = mmap.mmap(-1, 1 << 16)
    view = memoryview(region)
    hdr, data = view[:128].cast("Q"), view[128:]
    msg, buf = memoryview(bytearray(64)), memoryview(bytearray(64))
    fence, efd = full_fence(), os.eventfd(0)
    write, read = os.eventfd_write, os.eventfd_read
    hdr[3] = 1 << 40

    def call(m: memoryview) -> None:
        pass

    loops: dict[str, Callable[[], None]] = {}
    steps = {
        "header item load (small int)": "hdr[1]",
        "header item load (large int)": "hdr[3]",
        "header item store": "hdr[1] = 5",
        "64 B copy into a slice target": "data[8:72] = msg",
        "64 B copy from a fresh source view": "buf[:64] = data[8:72]",
        "64 B copy from a cached source view": "buf[:64] = src",
        "full fence (ringwait.full_fence)": "fence()",
        "eventfd write + read (no sleep)": "write(efd, 1); read(efd)",
        "Python call of a 1-arg function": "call(msg)",
        "perf_counter_ns": "clock()",
    }
    env = {"hdr": hdr, "data": data, "msg": msg, "buf": buf, "src": data[8:72], "fence": fence, "write": write,
           "read": read, "efd": efd, "call": call, "clock": time.perf_counter_ns, "n": n}
    for name, stmt in steps.items():
        exec(f"def f():\n    for _ in range(n):\n        {stmt}\n", env)  # a real loop, no lambda frame per step
        loops[name] = env["f"]
    exec("def f():\n    for _ in range(n):\n        pass\n", env)
    empty = best_ns(env["f"], n)
    print(f"one process, min of 15 x {n}; the empty loop ({empty:.1f} ns) subtracted")
    for name, fn in loops.items():
        print(f"  {name:<40} {best_ns(fn, n) - empty:7.1f} ns")
    os.close(efd)


def _copy_rates(size: int) -> dict[str, float]:
    """GB/s of one memcpy, of a copy into a ring, of a receive out of it into the caller's buffer, and of both
    in turn (a stream's message on one CPU), best of 40 runs of 8 messages at rotating ring positions."""
    ring_cap = max(1 << 20, 4 * size)
    ring = memoryview(mmap.mmap(-1, ring_cap, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)))
    src, dst = memoryview(bytearray(os.urandom(size))), memoryview(bytearray(size))
    spots = [(i % (ring_cap // size - 1)) * size + 8 for i in range(8)]  # records start 8 bytes in

    def memcpy() -> None:
        for _ in spots:
            dst[:] = src

    def copy_in() -> None:
        for p in spots:
            ring[p:p + size] = src

    def copy_out() -> None:
        for p in spots:
            dst[:] = ring[p:p + size]

    def both() -> None:
        for p in spots:
            ring[p:p + size] = src
            dst[:] = ring[p:p + size]

    fns = {"memcpy": memcpy, "into the ring": copy_in, "receive out of it": copy_out, "in + out": both}
    return {name: 8 * size / best_ns(fn, 1, 40) for name, fn in fns.items()}


def copy_ceiling() -> None:
    """A stream's two copies on one CPU (into the ring, out to the caller's buffer) against one memcpy."""
    for size in (64 * 1024, 1024 * 1024):
        rates = _copy_rates(size)
        one = rates["memcpy"]
        print(f"  {size >> 10:5d} KiB: " + ", ".join(f"{k} {v:5.1f} GB/s" for k, v in rates.items())
              + f"; in + out = {rates['in + out'] / one:.2f} x memcpy (the one-CPU ceiling of two copies)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["ops", "pingpong", "stream", "copy"])
    ap.add_argument("--size", "-s", default="64")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--count", type=int, default=None, help="messages per run (default: ipclab's auto count)")
    ap.add_argument("--cpus", default=None, help="S,C (default: the last CPU for both, like --pin auto)")
    ap.add_argument("--variants", default=None,
                    help="pingpong: floor,ring,slot,exchange; stream: floor,ring,ring256K,...")
    args = ap.parse_args(argv)
    if args.what == "ops":
        ops()
        return 0
    if args.what == "copy":
        copy_ceiling()
        return 0
    from ipclab.runner import auto_count, auto_warmup

    size = parse_size(args.size)
    count = args.count or auto_count(args.what, size)
    last = sorted(os.sched_getaffinity(0))[-1]
    cpus = tuple(int(c) for c in args.cpus.split(",")) if args.cpus else (last, last)
    if args.what == "pingpong":
        variants = (args.variants or "floor,ring,slot,exchange").split(",")
        alternate(pingpong_p50, variants, size, count, auto_warmup(count), cpus, args.reps, "us")  # type: ignore[arg-type]
    else:
        variants = (args.variants or "floor,ring,ring256K,ring1M,ring4M").split(",")
        alternate(stream_mb_s, variants, size, count, auto_warmup(count), cpus, args.reps, "MB/s")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
