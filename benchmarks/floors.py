"""Floors: the least a Python program can do for each mechanism, to measure what ipclab's harness adds.

    python benchmarks/floors.py TRANSPORT PATTERN SIZE [--count N] [--warmup W] [--cpus S,C]

prints one JSON line: ``{"rtt_p50_us": ...}`` for pingpong, ``{"mb_s": ...}`` for stream. The work is
ipclab's: the same payload bytes (seeded), the same count and warm-up, the client (ping-pong) timing every
round trip with perf_counter_ns, the consumer (stream) timing first-to-last message, the server/consumer on
CPU S and the client/producer on CPU C. What the floor leaves out is exactly the harness: no header, no
sequence check, no closures between the loop and the C call, no control protocol (a fork, not two fresh
interpreters talking JSON). Each loop calls bound C methods directly and completes short reads only when the
kernel split a message. OS objects are anonymous, unlinked before the fork or in Linux's abstract socket
namespace, and the child dies with its parent (PR_SET_PDEATHSIG), so a killed floor leaks nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import signal
import socket
import struct
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

Loop = Callable[..., Any]


def _fill(r: Callable[[memoryview], int], mv: memoryview, got: int) -> None:
    """Complete a message the kernel delivered in pieces (only large messages on byte streams)."""
    size = len(mv)
    while got < size:
        n = r(mv[got:])
        if not n:
            raise EOFError("peer closed")
        got += n


# -- generic loops over bound C methods: w(buffer) sends, r(buffer) -> bytes received ------------------------
def pp_client(w: Loop, r: Loop, smv: memoryview, rmv: memoryview, count: int, warmup: int) -> array:
    size = len(rmv)
    clock = time.perf_counter_ns
    samples = array("q", bytes(8 * count))
    for _ in range(warmup):
        w(smv)
        n = r(rmv)
        if n != size:
            _fill(r, rmv, n)
    for i in range(count):
        t0 = clock()
        w(smv)
        n = r(rmv)
        if n != size:
            _fill(r, rmv, n)
        samples[i] = clock() - t0
    return samples


def pp_server(w: Loop, r: Loop, rmv: memoryview, total: int) -> None:
    size = len(rmv)
    for _ in range(total):
        n = r(rmv)
        if n != size:
            _fill(r, rmv, n)
        w(rmv)


def st_producer(w: Loop, smv: memoryview, total: int) -> None:
    for _ in range(total):
        w(smv)


def st_consumer(r: Loop, rmv: memoryview, count: int, warmup: int) -> tuple[int, int, int]:
    size = len(rmv)
    clock = time.perf_counter_ns
    for _ in range(warmup + 1):
        n = r(rmv)
        if n != size:
            _fill(r, rmv, n)
    first = clock()
    for _ in range(count - 1):
        n = r(rmv)
        if n != size:
            _fill(r, rmv, n)
    return count, first, clock()


def st_consumer_lossy(r: Loop, rmv: memoryview, count: int, warmup: int) -> tuple[int, int, int]:
    """UDP: count datagrams until an empty one (the end marker) or the 1 s receive timeout."""
    clock = time.perf_counter_ns
    got = first = last = 0
    while True:
        try:
            n = r(rmv)
        except BlockingIOError:
            break
        if not n:
            break
        last = clock()
        if not got:
            first = last
        got += 1
    return got, first, last


def _rcvtimeo(sock: socket.socket, seconds: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, 0))


# -- mechanisms: each returns (server_endpoint, client_endpoint) factories run after the fork ---------------
# An endpoint factory returns (w, r, close) bound to that side's objects.
Endpoint = Callable[[], tuple[Loop, Loop, Callable[[], None]]]


def mech_pipe(size: int) -> tuple[Endpoint, Endpoint]:
    c2s_r, c2s_w = os.pipe()
    s2c_r, s2c_w = os.pipe()

    def side(rfd: int, wfd: int, others: tuple[int, int]) -> Endpoint:
        def make() -> tuple[Loop, Loop, Callable[[], None]]:
            for fd in others:
                os.close(fd)
            reader = io.FileIO(rfd, "rb")  # readinto is one read(2)
            writer = io.FileIO(wfd, "wb")  # write is one write(2); a blocking pipe write sends all
            return writer.write, reader.readinto, lambda: (reader.close(), writer.close())
        return make

    return side(c2s_r, s2c_w, (c2s_w, s2c_r)), side(s2c_r, c2s_w, (c2s_r, s2c_w))


def _socket_endpoints(a: socket.socket, b: socket.socket, stream: bool) -> tuple[Endpoint, Endpoint]:
    def side(mine: socket.socket, other: socket.socket) -> Endpoint:
        def make() -> tuple[Loop, Loop, Callable[[], None]]:
            other.close()
            return (mine.sendall if stream else mine.send), mine.recv_into, mine.close
        return make

    return side(a, b), side(b, a)


def mech_unix(size: int) -> tuple[Endpoint, Endpoint]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return _socket_endpoints(a, b, True)


def mech_tcp(size: int) -> tuple[Endpoint, Endpoint]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        b = socket.create_connection(lst.getsockname())
        a, _ = lst.accept()
    for s in (a, b):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _socket_endpoints(a, b, True)


def mech_udp(size: int) -> tuple[Endpoint, Endpoint]:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    a.connect(b.getsockname())
    b.connect(a.getsockname())
    for s in (a, b):
        _rcvtimeo(s, 1)  # a lost datagram ends the floor (ping-pong) or the stream instead of hanging it
    return _socket_endpoints(a, b, False)


MECHS: dict[str, Callable[[int], tuple[Endpoint, Endpoint]]] = {
    "pipe": mech_pipe, "unix": mech_unix, "tcp": mech_tcp, "udp": mech_udp,
}
# shm and posix-mq need their own loops (no single bound C call per message), zmq-ipc its own sockets and
# optional import (then these loops, through generic): floors_extra.py
CUSTOM: dict[str, Callable[..., dict[str, Any]]] = {}


def _p50_us(samples: array) -> float:
    ordered = sorted(samples)
    n = len(ordered)
    rank = (n - 1) * 0.5  # linear interpolation, like ipclab.stats.percentile
    lo = int(rank)
    hi = min(lo + 1, n - 1)
    return (ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)) / 1000.0


def two_process(server: Callable[[], Any], client: Callable[[], Any],
                cpus: tuple[int, int] | None) -> tuple[Any, Any]:
    """Fork: the child runs ``server()`` pinned to cpus[0], the parent ``client()`` on cpus[1] (None: unpinned).

    Returns (server's result, client's result); the child's result comes back as JSON on a pipe.
    """
    rfd, wfd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's stack
        code = 1
        try:
            _die_with(parent)
            os.close(rfd)
            if cpus:
                os.sched_setaffinity(0, [cpus[0]])
            cpu0, ctx0 = _cpu_s(), _ctx_switches()
            out = server()
            os.write(wfd, json.dumps({"out": out, "cpu_s": _cpu_s() - cpu0, "ctx": _ctx_switches() - ctx0}).encode())
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report any failure through the exit status
            os.write(2, f"floor server: {type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        if cpus:
            os.sched_setaffinity(0, [cpus[1]])
        cpu0, ctx0 = _cpu_s(), _ctx_switches()
        mine = client()
        client_cpu, client_ctx = _cpu_s() - cpu0, _ctx_switches() - ctx0
    except BaseException:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"floor server failed (wait status {status})")
    got = json.loads(data)
    LAST_CPU_S[0] = got["cpu_s"] + client_cpu
    LAST_CPU_S[1] = got["ctx"] + client_ctx
    return got["out"], mine


def _die_with(parent: int) -> None:
    """SIGKILL this child when the floor's parent dies (a killed floor must not leave a waiting child)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


LAST_CPU_S = [0.0, 0]  # CPU seconds (user + sys) and context switches, both processes, of the last two_process()


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _ctx_switches() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_nvcsw + r.ru_nivcsw


def run_floor(transport: str, pattern: str, size: int, count: int, warmup: int, cpus: tuple[int, int] | None,
              seed: int = 1) -> dict[str, Any]:
    """The floor's figure for one cell, plus CPU-us and context switches per message (both processes, warm-up
    included, like ipclab's cpu_us_msg and ctx_msg)."""
    if transport in CUSTOM:
        out = CUSTOM[transport](pattern, size, count, warmup, cpus, seed)
    else:
        payload = bytearray(random.Random(seed).randbytes(size))
        server_end, client_end = MECHS[transport](size)
        out = generic(transport, pattern, payload, count, warmup, cpus, server_end, client_end)
    out["cpu_us_msg"] = LAST_CPU_S[0] * 1e6 / (warmup + count)
    out["ctx_msg"] = LAST_CPU_S[1] / (warmup + count)
    return out


def generic(transport: str, pattern: str, payload: bytearray, count: int, warmup: int, cpus: tuple[int, int] | None,
            server_end: Endpoint, client_end: Endpoint) -> dict[str, Any]:
    size = len(payload)
    lossy = transport == "udp"

    def server() -> Any:
        w, r, close = server_end()
        rmv = memoryview(bytearray(size))
        try:
            if pattern == "pingpong":
                pp_server(w, r, rmv, warmup + count)
                return None
            if lossy:
                return st_consumer_lossy(r, rmv, count, warmup)
            return st_consumer(r, rmv, count, warmup)
        finally:
            close()

    def client() -> Any:
        w, r, close = client_end()
        smv, rmv = memoryview(payload), memoryview(bytearray(size))
        try:
            if pattern == "pingpong":
                return pp_client(w, r, smv, rmv, count, warmup)
            st_producer(w, smv, warmup + count)
            if lossy:
                for _ in range(3):  # empty datagrams end the consumer's count
                    w(b"")
            return None
        finally:
            close()

    srv, cli = two_process(server, client, cpus)
    if pattern == "pingpong":
        return {"rtt_p50_us": _p50_us(cli), "n": count}
    return stream_figures(size, *srv)


def stream_figures(size: int, received: int, first: int, last: int) -> dict[str, Any]:
    if received < 2 or last <= first:
        return {"mb_s": None, "received": received}
    msg_s = (received - 1) * 1e9 / (last - first)
    return {"mb_s": msg_s * size / 1e6, "msg_s": msg_s, "received": received}


def _load_extra() -> None:
    """Register the shm / posix-mq / zmq-ipc floors (their imports are optional)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    sys.modules.setdefault("floors", sys.modules[__name__])  # run as a script: one module, one LAST_CPU_S
    import floors_extra

    CUSTOM.update(floors_extra.FLOORS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transport", choices=[*MECHS, "shm", "posix-mq", "zmq-ipc"])
    ap.add_argument("pattern", choices=["pingpong", "stream"])
    ap.add_argument("size", type=int)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--cpus", default=None, help="S,C: server and client CPUs, or none (default: like ipclab's auto)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--default-heap", action="store_true",
                    help="leave glibc's malloc trimming as it is (ipclab's workers keep freed memory: steady_heap)")
    args = ap.parse_args(argv)
    heap = False
    if not args.default_heap:  # the allocator ipclab's workers run with, so both sides fault alike
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if os.path.isdir(os.path.join(root, "ipclab")) and root not in sys.path:
            sys.path.insert(0, root)  # the source tree these benchmarks belong to, as overhead.py measures it
        from ipclab.engine.worker import steady_heap

        heap = steady_heap()
    cpus: tuple[int, int] | None
    if args.cpus == "none":
        cpus = None
    elif args.cpus:
        s, _, c = args.cpus.partition(",")
        cpus = (int(s), int(c or s))
    else:
        allowed = sorted(os.sched_getaffinity(0))
        same = args.pattern == "pingpong"  # ipclab auto: ping-pong on one CPU, streams one CPU each
        cpus = (allowed[-1], allowed[-1]) if same or len(allowed) < 2 else (allowed[0], allowed[1])
    if args.transport not in MECHS:
        _load_extra()
    out = run_floor(args.transport, args.pattern, args.size, args.count, args.warmup, cpus, args.seed)
    out.update(transport=args.transport, pattern=args.pattern, size=args.size, cpus=list(cpus) if cpus else None,
               steady_heap=heap)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
