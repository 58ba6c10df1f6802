"""One message in flight: the slot protocol that shm, shm-spin and mmap use for round-trip workloads.

A pattern whose shape declares ``in_flight == 1`` (ping-pong, reqrep) never has a second message outstanding in
one direction, so the ring's byte counters, wrap-around and wait flags (ring.py) buy it nothing and cost ~1 us
of Python per round trip. Here each direction is one slot, in the same segment layout as a ring::

    +0    state        u64  spinning ends: 0 while the slot is empty, n + 1 while it holds a frame of n bytes
    +8    space_wait   u64  1 while the producer sleeps (or is about to) until the slot is released
    +16   prod_closed  u64  1 once the producer's channel is closed
    +64   acked        u64  blocking ends: frames the consumer has released
    +80   cons_closed  u64  1 once the consumer's channel is closed
    +128  data         8 bytes (unused), then the payload: up to slot_bytes - 8 bytes ("room")

Why not the ring: a Python item access on the shared header costs ~60 ns here (an int in and out of a
memoryview), and a ring message takes seven or more of them (tail check, length word, head store; head loads,
wait flags, length word, tail store), besides index arithmetic and a fresh source view per receive (~80 ns).
A slot message takes two (blocking) or three (spinning). Receives copy from a view cached for the last length
seen (the cell's size from the start), so they allocate nothing; a message of another length rebuilds it.
What is left is the hand-written floor's work (benchmarks/floors_extra.py: copy, write / read, copy), two
Python calls, and the check that keeps a caller who sends before its peer has read from overwriting the slot.

Blocking ends (shm, mmap): the eventfd carries the frame. The producer checks that the consumer has released
every frame it sent (``acked``), copies the payload in and writes n + 1 to the data eventfd; the consumer's
read(eventfd) returns exactly that (the next frame can only be written, and counted, after this one is
released), it copies n bytes out and stores acked + 1. No wait flag, no fence, no length word. Ordering: the
eventfd write is a system call that takes the eventfd's lock after the payload stores, and the read takes it
before the payload loads, so the consumer sees the payload; acked is stored after the payload loads, which
x86-64 (TSO) never reorders, so a producer that sees it may overwrite the slot. A message larger than the room
(never in a cell: setup() sizes the slot to the cell's messages) is a first frame whose count states the whole
length (n > room: frames of the rest follow) carrying the first ``room`` bytes. A receive buffer that is too
small raises ValueError and writes the count back, so the message stays for a larger buffer.
Close: the producer sets prod_closed and adds CLOSED_COUNT; a read that returns that much (with or without a
last frame) ends in EOFError once the frame is delivered, the count written back for the next wait.
Space (the producer finds a frame not yet released: a caller that breaks in_flight == 1, or the frames of an
oversized message): it polls with sched_yield (on one CPU that lets the consumer run) SPACE_SPINS times, then
sets space_wait, fences, re-checks and sleeps on the space eventfd with a timeout (SPACE_POLL_S). The consumer
checks space_wait, after a fence, only between the frames of an oversized message; after an ordinary receive
it checks nothing (that is the hot path), so a producer that breaks the declared shape waits out its timeout:
correct, just slow. Without the consumer's fence both sides could sleep (its flag load may pass its own acked
store); the timeout ends that too.

Spinning ends (shm-spin) have no eventfd: the state word is the handshake. Only the producer turns it from 0
to n + 1 (after the payload), only the consumer from n + 1 back to 0 (after copying out): one side alone may
write it at any moment, and TSO orders the payload around it as above. Each side polls it, checking the peer's
closed flag and yielding the CPU every SPIN_CHECK + 1 polls.

Memory ordering beyond this: ring.py's module docstring (and why these transports need x86-64).
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable

from .ring import CONS_CLOSED, HEAD, PROD_CLOSED, RECORD_ALIGN, SPACE_WAIT, TAIL, RingEnd
from .ringwait import SPIN_CHECK, full_fence

STATE, ACKED = HEAD, TAIL  # spinning ends' handshake word (producer's line); blocking ends' releases (consumer's)
CLOSED_COUNT = 1 << 40  # added to the data eventfd by a closing producer: more than any frame's count
SPACE_SPINS = 64  # sched_yield polls before a producer waiting for the slot sleeps
SPACE_POLL_S = 0.002  # then it re-checks the slot at least this often (nobody wakes it on the hot path)
MIN_SLOT_BYTES = 4096


def slot_bytes_for(size: int, smallest: int = MIN_SLOT_BYTES, largest: int = 64 * 1024 * 1024) -> int:
    """The slot for messages of ``size`` bytes: a power of two holding 8 bytes and one message."""
    return max(smallest, min(largest, 1 << (size + RECORD_ALIGN - 1).bit_length()))


class SlotEnd(RingEnd):
    """One direction of a segment used as a single slot: ``sender()`` / ``receiver()`` closures."""

    def __init__(self, view: memoryview, base: int, slot_bytes: int, data_efd: int | None,
                 space_efd: int | None, size: int = 0) -> None:
        super().__init__(view, base, slot_bytes, data_efd, space_efd)
        self.body = self.data[RECORD_ALIGN:]
        self.size = min(size, len(self.body))  # the length the receive path's cached view starts with
        self.efd = -1 if data_efd is None else data_efd
        self.sefd = -1 if space_efd is None else space_efd
        self.blocking = data_efd is not None and space_efd is not None

    # -- producer ------------------------------------------------------------------------------------
    def _space_waiter(self) -> Callable[[int], None]:
        """wait(sent): until the consumer has released every frame sent (blocking: acked == sent; spinning:
        state == 0); BrokenPipeError if it closed first."""
        hdr, sefd, blocking = self.hdr, self.sefd, self.blocking
        fence = full_fence()
        wait, read, yield_cpu = select.select, os.eventfd_read, os.sched_yield

        def wait_space(sent: int) -> None:
            polls = 0
            while (hdr[ACKED] != sent) if blocking else hdr[STATE]:
                polls += 1
                if not blocking or polls <= SPACE_SPINS:
                    if not polls & SPIN_CHECK and hdr[CONS_CLOSED]:
                        break
                    if blocking or not polls & SPIN_CHECK:
                        yield_cpu()
                    continue
                hdr[SPACE_WAIT] = 1
                fence()  # the flag is visible before the slot is re-read (Dekker, with the consumer)
                if hdr[ACKED] != sent and not hdr[CONS_CLOSED] and wait([sefd], [], [], SPACE_POLL_S)[0]:
                    read(sefd)
                hdr[SPACE_WAIT] = 0
                if hdr[CONS_CLOSED]:
                    break
            else:
                return
            # Loads stay in order (TSO): a release before the close is seen by this re-check.
            if (hdr[ACKED] != sent) if blocking else hdr[STATE]:
                raise BrokenPipeError("peer closed the slot while this side waited for space")

        return wait_space

    def sender(self) -> Callable[[memoryview], None]:
        hdr, body, efd, blocking = self.hdr, self.body, self.efd, self.blocking
        room = len(body)
        write = os.eventfd_write
        wait_space = self._space_waiter()
        sent = hdr[ACKED]  # frames sent (blocking ends)

        def send_slow(msg: memoryview) -> None:
            """A frame not yet released, or a message larger than the slot: frame by frame."""
            nonlocal sent
            view = memoryview(msg)
            n = len(view)
            done = 0
            while True:
                wait_space(sent)
                c = min(n - done, room)
                body[:c] = view[done:done + c]
                count = (c if done else n) + 1  # the first frame states the whole length
                if blocking:
                    sent += 1
                    write(efd, count)
                else:
                    hdr[STATE] = count
                done += c
                if done >= n:
                    return

        if not blocking:
            def send_spin(msg: memoryview) -> None:
                if hdr[STATE]:
                    return send_slow(msg)
                n = len(msg)
                try:
                    body[:n] = msg  # clamped past the slot's end: lengths differ -> ValueError
                except ValueError:
                    return send_slow(msg)
                hdr[STATE] = n + 1  # after the payload: TSO keeps the stores in order
            return send_spin

        def send(msg: memoryview) -> None:
            nonlocal sent
            if hdr[ACKED] != sent:
                return send_slow(msg)
            n = len(msg)
            try:
                body[:n] = msg
            except ValueError:
                return send_slow(msg)
            sent += 1
            write(efd, n + 1)  # the frame itself: its length, and the consumer's wake-up

        return send

    # -- consumer ------------------------------------------------------------------------------------
    def receiver(self) -> Callable[[memoryview], int]:
        hdr, body, efd, sefd, blocking = self.hdr, self.body, self.efd, self.sefd, self.blocking
        room = len(body)
        read, write, yield_cpu = os.eventfd_read, os.eventfd_write, os.sched_yield
        fence = full_fence()
        size = self.size  # the cached length: messages of it are copied from ``src``
        want = size + 1  # the count (blocking) or state (spinning) of such a message
        src = body[:size]
        acked = hdr[ACKED]

        def next_frame() -> int:
            """The next frame's count (n + 1); EOFError if the producer closed instead."""
            if not blocking:
                polls = 0
                while True:
                    state = hdr[STATE]
                    if state:
                        return state
                    polls += 1
                    if not polls & SPIN_CHECK:
                        if hdr[PROD_CLOSED] and not hdr[STATE]:  # loads in order: a last frame is seen
                            raise EOFError("peer closed the slot while this side waited for a message")
                        yield_cpu()  # lets a peer forced onto this CPU (--pin same) run
            count = read(efd)
            if count < CLOSED_COUNT:
                return count
            write(efd, CLOSED_COUNT)  # for the next wait: the close is seen again after this last frame
            if count == CLOSED_COUNT:
                raise EOFError("peer closed the slot while this side waited for a message")
            return count - CLOSED_COUNT

        def release() -> None:
            nonlocal acked
            if blocking:
                acked += 1
                hdr[ACKED] = acked  # after the payload was read: TSO never moves a store before a load
            else:
                hdr[STATE] = 0

        def recv_slow(buf: memoryview, count: int) -> int:
            """A closing producer, a length other than the cached one, a message larger than the slot or
            than buf."""
            nonlocal size, want, src
            if count >= CLOSED_COUNT:  # blocking: the close (EOFError), or a last frame that came with it
                write(efd, CLOSED_COUNT)  # for the next wait
                if count == CLOSED_COUNT:
                    raise EOFError("peer closed the slot while this side waited for a message")
                count -= CLOSED_COUNT
            n = count - 1
            if n > len(buf):
                if blocking:
                    write(efd, count)  # the message stays in the slot, for a larger buffer
                raise ValueError(f"a {n}-byte message does not fit the {len(buf)}-byte receive buffer")
            if n <= room:
                size, want, src = n, count, body[:n]  # the next message is likely of this length too
                buf[:n] = src
                release()
                return n
            view = memoryview(buf)
            done = 0
            while True:
                c = min(n - done, room)
                view[done:done + c] = body[:c]
                done += c
                release()
                if blocking:  # the producer sleeps between frames: wake it (Dekker, with its fence)
                    fence()
                    if hdr[SPACE_WAIT]:
                        write(sefd, 1)
                if done >= n:
                    return n
                next_frame()

        if blocking:
            def recv_into(buf: memoryview) -> int:
                nonlocal acked
                count = read(efd)  # sleeps until the producer's write: the frame's n + 1
                if count != want:
                    return recv_slow(buf, count)
                try:
                    buf[:size] = src  # buf too small: clamped, lengths differ -> ValueError
                except ValueError:
                    return recv_slow(buf, count)
                acked += 1
                hdr[ACKED] = acked
                return size
            return recv_into

        def recv_spin(buf: memoryview) -> int:
            state = hdr[STATE]
            if not state:
                state = next_frame()
            if state != want:
                return recv_slow(buf, state)
            try:
                buf[:size] = src
            except ValueError:
                return recv_slow(buf, state)
            hdr[STATE] = 0
            return size

        return recv_spin

    def close_side(self, producer: bool) -> None:
        """Mark this side closed and wake the peer (EOFError / BrokenPipeError once the slot says so)."""
        self.hdr[PROD_CLOSED if producer else CONS_CLOSED] = 1
        efd = self.data_efd if producer else self.space_efd
        if efd is not None:
            try:
                os.eventfd_write(efd, CLOSED_COUNT if producer else 1)
            except OSError:
                pass

    def release(self) -> None:
        self.body.release()
        super().release()
