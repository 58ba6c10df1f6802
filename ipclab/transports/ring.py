"""A single-producer single-consumer message ring in a shared mapping: the engine of shm, shm-spin and mmap.

Layout of one ring (the segment holds two: ring 0 carries client -> server, ring 1 server -> client)::

    +0    head          u64  bytes published by the producer (only the producer writes this cache line)
    +8    space_wait    u64  1 while the producer sleeps (or is about to) on the space eventfd
    +16   prod_closed   u64  1 once the producer's channel is closed
    +64   tail          u64  bytes released by the consumer (only the consumer writes this cache line)
    +72   data_wait     u64  1 while the consumer sleeps (or is about to) on the data eventfd
    +80   cons_closed   u64  1 once the consumer's channel is closed
    +128  data          ring_bytes (a power of two); position = counter & (ring_bytes - 1)

A message is a record: u64 length, payload, padding to a multiple of 8, so a record never splits its length
word across the end of the ring and an empty message is a plain 8-byte record (``empty_ok``). A record that
fits in the ring is published whole with one head store; a larger one streams through in chunks of at least a
quarter ring, the consumer releasing each chunk as it copies it out.

Memory ordering. The producer writes the payload, then stores head; the consumer loads head, then reads the
payload, then stores tail. This is safe on x86-64 without any barrier instruction because its model (TSO)
keeps stores in program order with other stores and loads with other loads, and never moves a store before an
earlier load: a consumer that sees the new head sees the payload written before it, and a producer that sees
the new tail knows the bytes before it were already read. CPython performs each of these steps as a plain
store or load through a memoryview, each in a separate C call the C compiler cannot reorder across. The
counters are items of a ``memoryview.cast("Q")``: reading or assigning one is a single aligned 8-byte ``mov``.
NOT ``struct.pack_into``: it memsets its target to zero before writing the value, so a peer polling the
counter sometimes sees 0 (measured here: ~1 read in 1000 during a run of stores), a head that jumps backwards
and then "forwards" over unwritten bytes. glibc's memcpy ends its non-temporal path with ``sfence``, and
``rep movsb`` stores are not reordered with later stores, so large payload copies keep the order too.

Sleeping is the one place TSO is not enough: "set my wait flag, then re-check the counter" on one side against
"store the counter, then check the wait flag" on the other is Dekker's pattern and needs store->load order,
which x86 does not give. Both sides therefore put a full barrier between the two: acquiring and releasing an
uncontended ``threading.Lock`` (a ``lock``-prefixed compare-and-swap in sem_trywait/sem_post) is one. The
eventfd write that wakes the sleeper is a system call and itself a full barrier. The waker clears the flag
before that write (one wake-up per sleep, instead of one per message while the sleeper is being scheduled);
every clear is followed by a write, so a sleeper whose flag was cleared under it still finds a count waiting.

On ARM or POWER none of this holds: payload and head stores may be seen out of order, so the producer would
need a store-release of head (``stlr``/``lwsync``), the consumer a load-acquire (``ldar``), and the wait flags
a full ``dmb ish``/``sync``. CPython exposes none of them, so these transports report themselves unavailable
on anything but x86-64 rather than risk silent corruption.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Callable

# Header words (u64 items of the header's cast("Q") view): the producer's cache line, then the consumer's.
HEAD, SPACE_WAIT, PROD_CLOSED = 0, 1, 2  # written by the producer (SPACE_WAIT also cleared by its waker)
TAIL, DATA_WAIT, CONS_CLOSED = 8, 9, 10  # written by the consumer (DATA_WAIT also cleared by its waker)
HEADER_BYTES = 128
RECORD_ALIGN = 8
DEFAULT_RING_BYTES = 256 * 1024  # 1 MiB messages go through in 4+ chunks
SPIN_CHECK = 255  # a spinner checks the peer's closed flag and yields the CPU every 256 empty polls


def ring_unavailable_reason(blocking: bool) -> str | None:
    """Why the ring cannot run on this machine, or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return (f"the lock-free ring relies on x86-64 store ordering (TSO); {platform.machine()} needs "
                "release/acquire barriers CPython cannot issue")
    if blocking and not hasattr(os, "eventfd"):
        return "os.eventfd needs Linux and Python >= 3.10"
    return None


def segment_bytes(ring_bytes: int, rings: int = 2) -> int:
    return rings * (HEADER_BYTES + ring_bytes)


def check_capacity(ring_bytes: int) -> None:
    if ring_bytes < 64 or ring_bytes & (ring_bytes - 1):
        raise ValueError(f"ring_bytes must be a power of two >= 64, not {ring_bytes}")


def _waiter(hdr: memoryview, counter: int, flag: int, closed: int, efd: int | None,
            gone: type[Exception], what: str) -> Callable[[int], int]:
    """wait(threshold): return the peer's ``hdr[counter]`` once it is >= threshold; sleep on ``efd`` or spin.

    ``gone`` is raised when the peer closed its end and the counter can no longer reach the threshold.
    """

    def peer_gone(threshold: int) -> int:
        # Loads stay in order on TSO: the counter re-read after the closed flag is the peer's last one.
        value = hdr[counter]
        if value >= threshold:
            return value
        raise gone(f"peer closed the ring while this side waited for {what}")

    if efd is None:
        yield_cpu = os.sched_yield

        def spin(threshold: int) -> int:
            polls = 0
            while True:
                value = hdr[counter]
                if value >= threshold:
                    return value
                polls += 1
                if not polls & SPIN_CHECK:
                    if hdr[closed]:
                        return peer_gone(threshold)
                    # Costs nothing when this CPU is ours alone; lets a peer forced onto it (--pin same) run.
                    yield_cpu()

        return spin

    read = os.eventfd_read
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release

    def sleep(threshold: int) -> int:
        while True:
            value = hdr[counter]
            if value >= threshold:
                return value
            if hdr[closed]:
                return peer_gone(threshold)
            hdr[flag] = 1
            acquire()  # full barrier: the flag store is visible before the counter is re-read (Dekker)
            release()
            value = hdr[counter]
            if value >= threshold:
                hdr[flag] = 0
                return value
            read(efd)  # blocks; a count left by an earlier wake-up only costs one more turn of the loop
            hdr[flag] = 0

    return sleep


class RingEnd:
    """One ring inside a mapping, seen from one process: ``sender()`` or ``receiver()`` closures."""

    def __init__(self, view: memoryview, base: int, ring_bytes: int, data_efd: int | None,
                 space_efd: int | None) -> None:
        check_capacity(ring_bytes)
        self.hdr = view[base:base + HEADER_BYTES].cast("Q")
        self.cap = ring_bytes
        self.data = view[base + HEADER_BYTES:base + HEADER_BYTES + ring_bytes]
        self.words = self.data.cast("Q")  # record length words: records start 8-aligned
        self.data_efd, self.space_efd = data_efd, space_efd

    # -- producer ------------------------------------------------------------------------------------
    def sender(self) -> Callable[[memoryview], None]:
        hdr, data, words, cap = self.hdr, self.data, self.words, self.cap
        mask = cap - 1
        efd = self.data_efd
        blocking = efd is not None
        write = os.eventfd_write if blocking else None
        lock = threading.Lock()
        acquire, release = lock.acquire, lock.release
        wait_space = _waiter(hdr, TAIL, SPACE_WAIT, CONS_CLOSED, self.space_efd, BrokenPipeError, "space")
        chunk = cap // 4
        head = hdr[HEAD]
        tail_seen = hdr[TAIL]

        def publish(new_head: int) -> None:
            hdr[HEAD] = new_head  # after the payload: TSO keeps the two stores in this order
            if blocking:
                acquire()  # full barrier: the head store is visible before the wait flag is read (Dekker)
                release()
                if hdr[DATA_WAIT]:
                    hdr[DATA_WAIT] = 0  # one wake-up per sleep, not one per message until the peer runs
                    write(efd, 1)

        def send_large(msg: memoryview, n: int, rec: int) -> None:
            """A record bigger than the ring: length word, then the payload chunk by chunk."""
            nonlocal head, tail_seen
            tail_seen = wait_space(head + RECORD_ALIGN - cap)
            words[(head & mask) >> 3] = n
            head += RECORD_ALIGN
            done, body = 0, rec - RECORD_ALIGN  # payload + padding
            while done < body:
                free = cap - (head - tail_seen)
                need = min(body - done, chunk)
                if free < need:
                    tail_seen = wait_space(head + need - cap)
                    free = cap - (head - tail_seen)
                c = min(free, body - done)
                if done < n:
                    _copy_in(data, cap, head & mask, msg[done:min(done + c, n)])
                head += c
                done += c
                publish(head)

        def send(msg: memoryview) -> None:
            nonlocal head, tail_seen
            n = len(msg)
            rec = (n + 2 * RECORD_ALIGN - 1) & -RECORD_ALIGN  # length word + payload, 8-aligned
            if head + rec - tail_seen > cap:
                tail_seen = hdr[TAIL]
                if head + rec - tail_seen > cap:
                    if rec > cap:
                        send_large(msg, n, rec)
                        return
                    tail_seen = wait_space(head + rec - cap)  # the ring is full: wait for room for all of it
            pos = head & mask
            words[pos >> 3] = n
            pos = (pos + RECORD_ALIGN) & mask
            end = pos + n
            if end <= cap:
                data[pos:end] = msg
            else:  # wraps around the end of the ring
                split = cap - pos
                data[pos:] = msg[:split]
                data[:end - cap] = msg[split:]
            head += rec
            hdr[HEAD] = head  # publish(head), inlined: this is the hot path
            if blocking:
                acquire()
                release()
                if hdr[DATA_WAIT]:
                    hdr[DATA_WAIT] = 0
                    write(efd, 1)

        return send

    # -- consumer ------------------------------------------------------------------------------------
    def receiver(self) -> Callable[[memoryview], int]:
        hdr, data, words, cap = self.hdr, self.data, self.words, self.cap
        mask = cap - 1
        efd = self.space_efd
        blocking = efd is not None
        write = os.eventfd_write if blocking else None
        lock = threading.Lock()
        acquire, release = lock.acquire, lock.release
        wait_data = _waiter(hdr, HEAD, DATA_WAIT, PROD_CLOSED, self.data_efd, EOFError, "a message")
        tail = hdr[TAIL]
        head_seen = hdr[HEAD]

        def release_to(new_tail: int) -> None:
            hdr[TAIL] = new_tail  # after the payload was read: TSO never moves a store before a load
            if blocking:
                acquire()
                release()
                if hdr[SPACE_WAIT]:
                    hdr[SPACE_WAIT] = 0
                    write(efd, 1)

        def recv_large(buf: memoryview, n: int, rec: int) -> int:
            """The record is not all published yet (bigger than the ring): copy it out as it arrives."""
            nonlocal tail, head_seen
            tail += RECORD_ALIGN
            done, body = 0, rec - RECORD_ALIGN
            while done < body:
                if head_seen == tail:
                    head_seen = wait_data(tail + 1)
                c = min(head_seen - tail, body - done)
                if done < n:
                    _copy_out(buf[done:min(done + c, n)], data, cap, tail & mask)
                tail += c
                done += c
                release_to(tail)
            return n

        def recv_into(buf: memoryview) -> int:
            nonlocal tail, head_seen
            if head_seen == tail:
                head_seen = hdr[HEAD]
                if head_seen == tail:
                    head_seen = wait_data(tail + 1)
            pos = tail & mask
            n = words[pos >> 3]
            if n > len(buf):
                raise ValueError(f"a {n}-byte message does not fit the {len(buf)}-byte receive buffer")
            rec = (n + 2 * RECORD_ALIGN - 1) & -RECORD_ALIGN
            if head_seen - tail < rec:
                head_seen = hdr[HEAD]
                if head_seen - tail < rec:
                    return recv_large(buf, n, rec)
            pos = (pos + RECORD_ALIGN) & mask
            end = pos + n
            if end <= cap:
                buf[:n] = data[pos:end]
            else:
                split = cap - pos
                buf[:split] = data[pos:]
                buf[split:n] = data[:end - cap]
            tail += rec
            hdr[TAIL] = tail  # release_to(tail), inlined: this is the hot path
            if blocking:
                acquire()
                release()
                if hdr[SPACE_WAIT]:
                    hdr[SPACE_WAIT] = 0
                    write(efd, 1)
            return n

        return recv_into

    def close_side(self, producer: bool) -> None:
        """Mark this side closed and wake the peer so that it sees it (EOFError / BrokenPipeError)."""
        self.hdr[PROD_CLOSED if producer else CONS_CLOSED] = 1
        efd = self.data_efd if producer else self.space_efd
        if efd is not None:
            try:
                os.eventfd_write(efd, 1)
            except OSError:
                pass

    def release(self) -> None:
        for view in (self.words, self.data, self.hdr):
            view.release()


def _copy_in(data: memoryview, cap: int, pos: int, src: memoryview) -> None:
    end = pos + len(src)
    if end <= cap:
        data[pos:end] = src
    else:
        split = cap - pos
        data[pos:] = src[:split]
        data[:end - cap] = src[split:]


def _copy_out(dst: memoryview, data: memoryview, cap: int, pos: int) -> None:
    end = pos + len(dst)
    if end <= cap:
        dst[:] = data[pos:end]
    else:
        split = cap - pos
        dst[:split] = data[pos:]
        dst[split:] = data[:end - cap]
