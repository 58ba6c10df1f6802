"""Where a posix-mq stream's throughput goes: the floor, plus ipclab's receive function, plus its sequence numbers.

    python benchmarks/mq_profile.py                 # 64 B and 4 KiB, 5 repetitions, 50,000 messages each
    python benchmarks/mq_profile.py -s 4K --reps 9

Three consumers of one producer over one queue (depth 10, like ipclab's and the floor's), both processes on one
CPU, run alternately (A B C A B C ...):

- floor: ``receive()`` in a loop, the message dropped unread (benchmarks/floors_extra.py);
- recv_into: the same loop through ipclab's posix-mq ``recv_into`` (a Python function: receive, copy into the
  caller's buffer, length), because posix_ipc has no receive-into-buffer call;
- + sequence: as ipclab's stream does it, the producer stores each message's number in its first word and the
  consumer checks it, counts, and reads the clock on 1 message in 16.

Each variant is reported as the median of its per-repetition ratio to the floor, with the consumer's context
switches per message: the slower the consumer, the more often the producer finds the 10-message queue full and
the two switch, so a few hundred nanoseconds of Python per message cost more than themselves.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this source tree's ipclab

from ipclab.config import format_size, parse_size  # noqa: E402
from ipclab.transports.posixmq import PosixMqChannel  # noqa: E402

VARIANTS = ("floor", "recv_into", "+ sequence")
DEPTH = 10
WARMUP = 100


def _usage() -> tuple[float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_nvcsw + r.ru_nivcsw


def _producer(queue: object, size: int, total: int, numbered: bool) -> None:
    send = queue.send  # type: ignore[attr-defined]
    buf = bytearray(os.urandom(size))
    view = memoryview(buf)
    if not numbered:
        for _ in range(total):
            send(view)
        return
    words = view.cast("B")[:8].cast("Q")  # the header's first word, as streamloops stores it
    for i in range(total):
        words[0] = i
        send(view)


def _consume(variant: str, queue: object, size: int, count: int) -> float:
    """Seconds from the first measured message to the last."""
    buf = memoryview(bytearray(size))
    if variant == "floor":
        receive: Callable[[], object] = queue.receive  # type: ignore[attr-defined]
        for _ in range(WARMUP + 1):
            receive()
        t0 = time.perf_counter()
        for _ in range(count - 1):
            receive()
        return time.perf_counter() - t0
    recv_into = PosixMqChannel(queue, None).recv_into
    for _ in range(WARMUP + 1):
        recv_into(buf)
    if variant == "recv_into":
        t0 = time.perf_counter()
        for _ in range(count - 1):
            if recv_into(buf) != size:
                raise RuntimeError("a short message")
        return time.perf_counter() - t0
    words, clock = buf.cast("B")[:8].cast("Q"), time.perf_counter_ns
    expect, stamp = WARMUP + 1, 0
    t0 = time.perf_counter()
    for _ in range(count - 1):
        if recv_into(buf) != size:
            raise RuntimeError("a short message")
        if words[0] != expect:
            raise RuntimeError(f"message {expect}: got sequence {words[0]}")
        expect += 1
        if not expect & 15:
            stamp = clock()
    del stamp
    return time.perf_counter() - t0


def run(variant: str, size: int, count: int, cpu: int) -> tuple[float, float]:
    """(MB/s at the consumer, the consumer's context switches per message) of one variant."""
    import posix_ipc

    queue = posix_ipc.MessageQueue(f"/ipclab-mqprof-{secrets.token_hex(6)}", posix_ipc.O_CREX, mode=0o600,
                                   max_messages=DEPTH, max_message_size=max(size, 1))
    queue.unlink()  # the descriptors keep it alive; nothing is left behind even if we are killed
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.sched_setaffinity(0, [cpu])
                _producer(queue, size, WARMUP + count, variant == "+ sequence")
                code = 0
            finally:
                os._exit(code)
        try:
            os.sched_setaffinity(0, [cpu])
            _, ctx0 = _usage()
            seconds = _consume(variant, queue, size, count)
            _, ctx1 = _usage()
        except BaseException:
            os.kill(pid, 9)
            raise
        finally:
            os.waitpid(pid, 0)
    finally:
        queue.close()
    return (count - 1) * size / seconds / 1e6, (ctx1 - ctx0) / count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", "-s", default="64,4K")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--count", type=int, default=50_000)
    args = ap.parse_args(argv)
    cpu = sorted(os.sched_getaffinity(0))[-1]
    print(f"posix-mq stream, depth {DEPTH}, both on CPU {cpu}, {args.count:,} messages, {args.reps} reps "
          "(ratio: median of per-repetition ratios to the floor)")
    print(f"{'size':>7}  {'variant':<11} {'MB/s':>9} {'ratio':>6} {'consumer switches/msg':>22}")
    for size in (parse_size(s) for s in args.sizes.split(",")):
        got: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
        for _ in range(args.reps):
            for v in VARIANTS:
                got[v].append(run(v, size, args.count, cpu))
        for v in VARIANTS:
            ratio = statistics.median(a[0] / f[0] for a, f in zip(got[v], got["floor"]))
            print(f"{format_size(size):>7}  {v:<11} {statistics.median(x[0] for x in got[v]):>9,.1f} {ratio:>6.2f} "
                  f"{statistics.median(x[1] for x in got[v]):>22.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
