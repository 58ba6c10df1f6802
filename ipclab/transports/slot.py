"""One message in flight: the slot protocol that shm, shm-spin and mmap use for round-trip workloads.

A pattern whose shape declares ``in_flight == 1`` (ping-pong, reqrep) never has a second message outstanding in
one direction, so the ring's byte counters, wrap-around and wait flags (ring.py) buy it nothing and cost ~1 us
of Python per round trip. Here each direction is one slot, in the same segment layout as a ring::

    +0    state        u64  0 while the slot is empty; else full (blocking ends: 1; spinning ends: 2(n + 1))
    +8    space_wait   u64  1 while the producer sleeps (or is about to) until the slot is emptied
    +16   prod_closed  u64  1 once the producer's channel is closed
    +80   cons_closed  u64  1 once the consumer's channel is closed
    +128  data         8 bytes (unused), then the payload: up to slot_bytes - 8 bytes ("room")

Only the producer turns the state from 0 to full (after the payload), only the consumer from full back to 0
(after copying the payload out): at any moment one side alone may write it, and x86-64 (TSO) orders the
payload around it without a barrier (a store is never moved before an earlier load, nor after a later store).

Why not the ring: every Python step counts, and right after a context switch (a round trip has two) each costs
several times its hot-loop price. A ring message takes seven or more header accesses (tail check, length word,
head store, fence, wait flag; head loads, wait flags, length word, tail store), index arithmetic and a fresh
source view per receive. A slot message takes, on the producer, one state load and one store around the copy
and the eventfd write; on the consumer, the eventfd read, one comparison, the copy and one state store. Both
fast paths copy with the length of the last message (the cell's size from the start; another length takes the
slow path once and becomes the fast one, so a reqrep server's 16-byte requests stay fast); receives copy from a
cached view and allocate nothing. Left over the floor (benchmarks/floors_extra.py): one Python call per send
and per receive and the state handshake (benchmarks/shm_profile.py measures each), which exchange halves and
skips (below).

Blocking ends (shm, mmap): the eventfd count carries the frame's length as 2(n + 1) (the low bit is EXCHANGED,
below; a flag bit at 2**32 instead costs ~1 % of a round trip in int objects, measured): the consumer's
read(eventfd) returns exactly that, since the producer writes the next frame (and its count) only once the state
says this one was copied out. No wait flag, no fence, no length word. Ordering: the eventfd write is a system call that
takes the eventfd's lock after the payload stores, and the read takes it before the payload loads. A message
larger than the room (never in a cell: setup() sizes the slot to the cell's messages) is a first frame whose
count states the whole length (n > room: frames of the rest follow) carrying the first ``room`` bytes. A receive
buffer that is too small raises ValueError and writes the count back: the message stays for a larger buffer.
Exchange (blocking ends, SlotEnd.exchanger: a send and the receive that answers it, one call): a frame sent by
exchange sets EXCHANGED in its count and leaves the state at 0, and a consumer that reads such a count leaves it
at 0 too: no state load or store in a round trip of exchanges. 64 B ping-pong, ipclab / floor: 1.13 -> 1.05 in
shm_profile's channel loops, 1.15 -> 1.08 through the whole harness (benchmarks/overhead.py); and still
no overwrite, because exchange's contract (Channel.exchange) has the peer read each message before it answers,
and the sender sends again only after the answer. Plain frames keep the state handshake, so plain calls and
exchange mix freely. What a state of 0 no longer proves: that the slot is empty while an exchanged frame is in
it, so the slot channel's wait_readable waits on the data eventfd instead (segment.SlotChannel).
Close: the producer sets prod_closed and adds CLOSED_COUNT; a read that returns that much (with or without a
last frame) ends in EOFError once the frame is delivered, the close's count written back for the next wait.
Space (the producer finds the slot full: a caller that breaks in_flight == 1, or the frames of an oversized
message): it polls with sched_yield (on one CPU that lets the consumer run) SPACE_SPINS times, then sets
space_wait, fences, re-checks and sleeps on the space eventfd with a timeout (SPACE_POLL_S). The consumer checks
space_wait, after a fence, only between the frames of an oversized message; after an ordinary receive it checks
nothing (that is the hot path), so a producer that breaks the declared shape waits out its timeout: correct,
just slow. Without the consumer's fence both could sleep (its flag load may pass its own state store); the
timeout ends that too.

Spinning ends (shm-spin) have no eventfd: the state word holds 2(n + 1), and each side polls it, checking the
peer's closed flag and yielding the CPU every SPIN_CHECK + 1 polls.

Memory ordering beyond this: ring.py's module docstring (and why these transports need x86-64).
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable

from .ring import CONS_CLOSED, HEAD, PROD_CLOSED, RECORD_ALIGN, SPACE_WAIT, RingEnd
from .ringwait import SPIN_CHECK, full_fence

STATE = HEAD  # the slot's handshake word, on the producer's cache line
CLOSED_COUNT = 1 << 40  # added to the data eventfd by a closing producer: more than any frame's count
EXCHANGED = 1  # the low bit of a frame's count, 2(n + 1): exchange sent it and left the state at 0 (blocking ends)
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
        self.size = min(size, len(self.body))  # the length both fast paths start with (the cell's size)
        self.efd = -1 if data_efd is None else data_efd
        self.sefd = -1 if space_efd is None else space_efd
        self.blocking = data_efd is not None and space_efd is not None

    # -- producer ------------------------------------------------------------------------------------
    def _space_waiter(self) -> Callable[[], None]:
        """wait(): until the consumer has emptied the slot (state 0); BrokenPipeError if it closed first."""
        hdr, sefd, blocking = self.hdr, self.sefd, self.blocking
        fence = full_fence()
        wait, read, yield_cpu = select.select, os.eventfd_read, os.sched_yield

        def wait_space() -> None:
            polls = 0
            while hdr[STATE]:
                polls += 1
                if not blocking or polls <= SPACE_SPINS:
                    if not polls & SPIN_CHECK and hdr[CONS_CLOSED]:
                        break
                    if blocking or not polls & SPIN_CHECK:
                        yield_cpu()
                    continue
                hdr[SPACE_WAIT] = 1
                fence()  # the flag is visible before the slot is re-read (Dekker, with the consumer)
                if hdr[STATE] and not hdr[CONS_CLOSED] and wait([sefd], [], [], SPACE_POLL_S)[0]:
                    read(sefd)
                hdr[SPACE_WAIT] = 0
                if hdr[CONS_CLOSED]:
                    break
            else:
                return
            if hdr[STATE]:  # loads stay in order (TSO): a release before the close is seen by this re-check
                raise BrokenPipeError("peer closed the slot while this side waited for space")

        return wait_space

    def sender(self) -> Callable[[memoryview], None]:
        hdr, body, efd, blocking = self.hdr, self.body, self.efd, self.blocking
        room = len(body)
        write = os.eventfd_write
        wait_space = self._space_waiter()
        size = self.size  # the fast path's length: the cell's, then the last one sent
        want = (size + 1) << 1

        def send_slow(msg: memoryview) -> None:
            """A full slot, a length other than the cached one, or a message larger than the slot."""
            nonlocal size, want
            view = memoryview(msg)
            n = len(view)
            if n <= room:
                size, want = n, (n + 1) << 1  # the next message is likely of this length too
            done = 0
            while True:
                if hdr[STATE]:
                    wait_space()
                c = min(n - done, room)
                body[:c] = view[done:done + c]
                count = ((c if done else n) + 1) << 1  # the first frame states the whole length
                if blocking:
                    hdr[STATE] = 1
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
                try:
                    body[:size] = msg  # another length: lengths differ -> ValueError
                except ValueError:
                    return send_slow(msg)
                hdr[STATE] = want  # after the payload: TSO keeps the stores in order
            return send_spin

        def send(msg: memoryview) -> None:
            if hdr[STATE]:
                return send_slow(msg)
            try:
                body[:size] = msg
            except ValueError:
                return send_slow(msg)
            hdr[STATE] = 1
            write(efd, want)  # the frame itself: its length, and the consumer's wake-up

        return send

    # -- consumer ------------------------------------------------------------------------------------
    def receiver(self) -> Callable[[memoryview], int]:
        hdr, body, efd, sefd, blocking = self.hdr, self.body, self.efd, self.sefd, self.blocking
        room = len(body)
        read, write, yield_cpu = os.eventfd_read, os.eventfd_write, os.sched_yield
        fence = full_fence()
        size = self.size  # the cached length: messages of it are copied from ``src``
        want = (size + 1) << 1  # the count (blocking) or state (spinning) of such a message
        wantx = want | EXCHANGED  # its count when exchange sent it (blocking ends)
        src = body[:size]

        def next_frame() -> int:
            """The next frame's count, 2(n + 1); EOFError if the producer closed instead."""
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
            return opened(read(efd))

        def opened(count: int) -> int:
            """A count read from the data eventfd, without a close's part (EOFError if that is all)."""
            if count < CLOSED_COUNT:
                return count
            write(efd, CLOSED_COUNT)  # for the next wait: the close is seen again after this last frame
            if count == CLOSED_COUNT:
                raise EOFError("peer closed the slot while this side waited for a message")
            return count - CLOSED_COUNT

        def recv_slow(buf: memoryview, count: int) -> int:
            """A closing producer, a length other than the cached one, a message larger than the slot or
            than buf."""
            nonlocal size, want, wantx, src
            if blocking:
                count = opened(count)
            n = (count >> 1) - 1  # exchange's frames (EXCHANGED set) are always a single frame
            if n > len(buf):
                if blocking:
                    write(efd, count)  # the message stays in the slot, for a larger buffer
                raise ValueError(f"a {n}-byte message does not fit the {len(buf)}-byte receive buffer")
            if n <= room:
                size, want = n, (n + 1) << 1  # the next message is likely of this length too
                wantx, src = want | EXCHANGED, body[:n]
                buf[:n] = src
                hdr[STATE] = 0  # an exchanged frame's state is 0 already: the store changes nothing
                return n
            view = memoryview(buf)
            done = 0
            while True:
                c = min(n - done, room)
                view[done:done + c] = body[:c]
                done += c
                hdr[STATE] = 0
                if blocking:  # the producer sleeps between frames: wake it (Dekker, with its fence)
                    fence()
                    if hdr[SPACE_WAIT]:
                        write(sefd, 1)
                if done >= n:
                    return n
                next_frame()

        if blocking:
            def recv_into(buf: memoryview) -> int:
                count = read(efd)  # sleeps until the producer's write: the frame's 2(n + 1)
                if count != want:
                    if count != wantx:
                        return recv_slow(buf, count)
                    try:  # sent by exchange: the state stays 0
                        buf[:size] = src
                    except ValueError:
                        return recv_slow(buf, count)
                    return size
                try:
                    buf[:size] = src  # buf too small: clamped, lengths differ -> ValueError
                except ValueError:
                    return recv_slow(buf, count)
                hdr[STATE] = 0  # after the payload was read: TSO never moves a store before a load
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

    # -- both: a send and the receive that answers it, in one call -----------------------------------
    def exchanger(self, rx: SlotEnd, send: Callable[[memoryview], None],
                  recv_into: Callable[[memoryview], int]) -> Callable[[memoryview, memoryview], int]:
        """exchange(msg, buf) -> int: ``send(msg)``, then ``recv_into(buf)`` from ``rx`` (the other direction),
        as one Python call (Channel.exchange). ``send`` / ``recv_into`` are this end's sender and ``rx``'s
        receiver: the slow paths go through them whole.

        The fast path is the sender's and the receiver's fused, minus the sender's state load: the contract has
        the peer answer only after reading, so the slot is empty. Blocking ends also drop the state stores
        (module docstring: EXCHANGED; a plain frame, the peer's first or last, still has its state cleared):
        per side the copy in and the eventfd write, the eventfd read, one comparison and the copy out, in one
        Python frame. Spinning ends keep both stores (the state word is their frame's count).

        Each direction caches its fast length apart from ``send`` / ``recv_into`` (the same rule: the cell's
        size, then the last length seen). Another length, a message larger than the slot: the copy in raises
        ValueError and ``send`` takes the message (frames, waits). A count or state other than the cached
        length's (another length, a close, a larger message), or a buffer too small: blocking ends write the
        count back to the eventfd (nothing is lost: the eventfd adds) and ``recv_into`` takes the message as if
        exchange had never looked; spinning ends poll the state SPIN_CHECK + 1 times, then leave the wait
        (closed flag, yielding) to ``recv_into``."""
        body, hdr, efd = self.body, self.hdr, self.efd
        tsize = self.size  # this direction's fast length (the sender's rule)
        twant = (tsize + 1) << 1
        room = len(body)
        rbody, rhdr, refd = rx.body, rx.hdr, rx.efd
        rsize = rx.size  # the other direction's (the receiver's rule)
        rwant = (rsize + 1) << 1
        src = rbody[:rsize]
        if self.blocking:  # the counts this end's exchange sends and looks for: EXCHANGED set
            twant |= EXCHANGED
            rwant |= EXCHANGED
        write, read = os.eventfd_write, os.eventfd_read

        def sent_slow(msg: memoryview) -> None:
            """Another length than the cached one, or larger than the slot: ``send`` takes it whole."""
            nonlocal tsize, twant
            send(msg)
            n = len(msg)
            if n <= room:
                tsize, twant = n, (n + 1) << 1 | (EXCHANGED if efd >= 0 else 0)

        def received_slow(buf: memoryview) -> int:
            """``recv_into`` takes the message (the count is back in the eventfd, or still in the state word)."""
            nonlocal rsize, rwant, src
            n = recv_into(buf)
            if n != rsize and n <= len(rbody):
                rsize, rwant, src = n, (n + 1) << 1 | (EXCHANGED if refd >= 0 else 0), rbody[:n]
            return n

        if self.blocking:
            plain = rwant ^ EXCHANGED  # the count of a plain frame of the cached length

            def received_other(buf: memoryview, count: int) -> int:
                """A plain frame of the cached length (the peer's first or last): copied, its state cleared.
                Anything else: the count goes back to the eventfd and ``recv_into`` takes the message."""
                nonlocal plain
                if count == plain and len(buf) >= rsize:
                    buf[:rsize] = src
                    rhdr[STATE] = 0  # after the copy out: the peer's next plain send may fill the slot
                    return rsize
                write(refd, count)
                n = received_slow(buf)
                plain = rwant ^ EXCHANGED
                return n

            def exchange(msg: memoryview, buf: memoryview) -> int:
                try:
                    body[:tsize] = msg  # another length: lengths differ -> ValueError
                except ValueError:
                    sent_slow(msg)
                else:
                    write(efd, twant)  # 2(n + 1) | EXCHANGED: the state stays 0
                count = read(refd)  # sleeps until the peer's answer
                if count != rwant:
                    return received_other(buf, count)
                try:
                    buf[:rsize] = src
                except ValueError:  # buf too small
                    write(refd, count)
                    return received_slow(buf)
                return rsize  # an exchanged frame: its state is 0 already
            return exchange

        def exchange_spin(msg: memoryview, buf: memoryview) -> int:
            try:
                body[:tsize] = msg
            except ValueError:
                sent_slow(msg)
            else:
                hdr[STATE] = twant
            state = rhdr[STATE]
            polls = 0
            while not state:
                polls += 1
                if polls > SPIN_CHECK:
                    return received_slow(buf)  # its wait checks the closed flag and yields the CPU
                state = rhdr[STATE]
            if state != rwant:
                return received_slow(buf)
            try:
                buf[:rsize] = src
            except ValueError:
                return received_slow(buf)
            rhdr[STATE] = 0
            return rsize
        return exchange_spin

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
