"""Floors for the mechanisms that need more than one C call per message: shm, posix-mq, zmq-ipc.

Same work and the same figures as floors.py (imported by it on demand, so pyzmq and posix_ipc are only
loaded for their own floors).

- shm: an anonymous MAP_SHARED mapping made before the fork (no name, nothing to leak) and eventfds to wake
  the peer. Ping-pong: a request slot and a reply slot; the echo copies the request out and the reply in, as a
  recv_into + send does. Stream: a ring of slots with two semaphore eventfds ("full" and "free"), one copy in
  by the producer and one copy out by the consumer per message.
- posix-mq: two queues (one per direction) created, opened and unlinked before the fork.
- zmq-ipc: PAIR sockets (ping-pong) or PUSH -> PULL (stream) on an abstract-namespace ipc:// endpoint, with
  ipclab's high-water marks; contexts are made after the fork.
"""

from __future__ import annotations

import mmap
import os
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

from floors import _p50_us, generic, stream_figures, two_process

RING_BYTES = 4 * 1024 * 1024  # stream ring: up to 4 MiB of slots, 2..64 of them


def _eventfd(initial: int = 0, semaphore: bool = False) -> int:
    return os.eventfd(initial, os.EFD_CLOEXEC | (os.EFD_SEMAPHORE if semaphore else 0))


def shm_floor(pattern: str, size: int, count: int, warmup: int, cpus: tuple[int, int] | None, seed: int) -> dict:
    payload = bytearray(random.Random(seed).randbytes(size))
    if pattern == "pingpong":
        region = mmap.mmap(-1, max(1, 2 * size))  # MAP_SHARED | MAP_ANONYMOUS: shared across fork
        view = memoryview(region)
        req, rep = view[:size], view[size:2 * size]
        e_req, e_rep = _eventfd(), _eventfd()
        ev_read, ev_write = os.eventfd_read, os.eventfd_write

        def server() -> None:
            rmv = memoryview(bytearray(size))
            for _ in range(warmup + count):
                ev_read(e_req)
                rmv[:] = req  # recv_into: copy the request out
                rep[:] = rmv  # send: copy the reply in
                ev_write(e_rep, 1)

        def client() -> Any:
            smv, rmv = memoryview(payload), memoryview(bytearray(size))
            clock = time.perf_counter_ns
            from array import array

            samples = array("q", bytes(8 * count))
            for _ in range(warmup):
                req[:] = smv
                ev_write(e_req, 1)
                ev_read(e_rep)
                rmv[:] = rep
            for i in range(count):
                t0 = clock()
                req[:] = smv
                ev_write(e_req, 1)
                ev_read(e_rep)
                rmv[:] = rep
                samples[i] = clock() - t0
            return samples

        _, samples = two_process(server, client, cpus)
        return {"rtt_p50_us": _p50_us(samples), "n": count}

    slots = max(2, min(64, RING_BYTES // max(size, 1)))
    region = mmap.mmap(-1, max(1, slots * size))
    view = memoryview(region)
    ring = [view[i * size:(i + 1) * size] for i in range(slots)]
    e_full, e_free = _eventfd(0, True), _eventfd(slots, True)
    ev_read, ev_write = os.eventfd_read, os.eventfd_write
    total = warmup + count

    def consumer() -> Any:
        rmv = memoryview(bytearray(size))
        clock = time.perf_counter_ns
        first = 0
        for i in range(total):
            ev_read(e_full)
            rmv[:] = ring[i % slots]
            ev_write(e_free, 1)
            if i == warmup:
                first = clock()
        return count, first, clock()

    def producer() -> None:
        smv = memoryview(payload)
        for i in range(total):
            ev_read(e_free)
            ring[i % slots][:] = smv
            ev_write(e_full, 1)

    srv, _ = two_process(consumer, producer, cpus)
    return stream_figures(size, *srv)


def mq_floor(pattern: str, size: int, count: int, warmup: int, cpus: tuple[int, int] | None, seed: int) -> dict:
    import posix_ipc

    payload = bytes(random.Random(seed).randbytes(size))
    queues = []
    try:
        for _ in range(2 if pattern == "pingpong" else 1):
            name = f"/ipclab-floor-{secrets.token_hex(6)}"
            q = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, mode=0o600, max_messages=10,
                                       max_message_size=max(size, 1))
            q.unlink()  # the descriptors keep it alive; nothing is left behind even if we are killed
            queues.append(q)
        if pattern == "pingpong":
            c2s, s2c = queues

            def server() -> None:
                recv, send = c2s.receive, s2c.send
                for _ in range(warmup + count):
                    send(recv()[0])

            def client() -> Any:
                send, recv = c2s.send, s2c.receive
                clock = time.perf_counter_ns
                from array import array

                samples = array("q", bytes(8 * count))
                for _ in range(warmup):
                    send(payload)
                    recv()
                for i in range(count):
                    t0 = clock()
                    send(payload)
                    recv()
                    samples[i] = clock() - t0
                return samples

            _, samples = two_process(server, client, cpus)
            return {"rtt_p50_us": _p50_us(samples), "n": count}

        (q,) = queues

        def consumer() -> Any:
            recv = q.receive
            clock = time.perf_counter_ns
            for _ in range(warmup + 1):
                recv()
            first = clock()
            for _ in range(count - 1):
                recv()
            return count, first, clock()

        def producer() -> None:
            send = q.send
            for _ in range(warmup + count):
                send(payload)

        srv, _ = two_process(consumer, producer, cpus)
        return stream_figures(size, *srv)
    finally:
        for q in queues:
            q.close()


def zmq_floor(pattern: str, size: int, count: int, warmup: int, cpus: tuple[int, int] | None, seed: int) -> dict:
    payload = bytearray(random.Random(seed).randbytes(size))
    # Linux's abstract namespace: the same AF_UNIX socket as a path, but no file to leave behind if killed.
    endpoint = f"ipc://@ipclab-floor-{secrets.token_hex(8)}"

    def end(bind: bool) -> Callable[[], tuple[Any, Any, Callable[[], None]]]:
        def make() -> tuple[Any, Any, Callable[[], None]]:
            import zmq  # after the fork: a zmq context must not cross one

            ctx = zmq.Context()
            if pattern == "pingpong":
                sock = ctx.socket(zmq.PAIR)
            else:
                sock = ctx.socket(zmq.PULL if bind else zmq.PUSH)
            hwm = max(4, min(1000, 16 * 1024 * 1024 // max(size, 1)))  # ipclab's: ~16 MiB in flight per side
            sock.setsockopt(zmq.SNDHWM, hwm)
            sock.setsockopt(zmq.RCVHWM, hwm)
            sock.setsockopt(zmq.LINGER, -1)  # close() waits until the consumer has everything
            sock.setsockopt(zmq.RCVTIMEO, 30000)  # a lost peer fails the floor (zmq.Again) instead of hanging it
            if bind:
                sock.bind(endpoint)
            else:
                sock.connect(endpoint)
            return sock.send, sock.recv_into, lambda: (sock.close(), ctx.term())
        return make

    # The same loops as floors.py's bound-C-method mechanisms: a zmq socket's send and recv_into are such methods.
    return generic("zmq-ipc", pattern, payload, count, warmup, cpus, end(True), end(False))


FLOORS: dict[str, Callable[..., dict[str, Any]]] = {"shm": shm_floor, "posix-mq": mq_floor, "zmq-ipc": zmq_floor}
