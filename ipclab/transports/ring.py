"""A single-producer single-consumer message ring in a shared mapping: the engine of shm, shm-spin and mmap.

(Shapes with one message in flight use the same segment as one slot per direction instead: slot.py.)

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
fits in the ring is published whole with one head store; a larger one passes through in chunks of at least a
quarter ring, the consumer releasing each chunk as it copies it out.

Hot path. ``send``/``recv_into`` are closures over bound locals; a message that fits without wrapping costs
one length-word access, one slice assignment (the only copy: memoryview to memoryview; the receive side's
source slice is a transient view, freed at once), one counter store, and on the producer the fence and
wake-up check below. Everything else (wrap-around, a full ring, records larger than the
ring, a receive buffer too small) goes to a slow path. The wrap test itself costs nothing: a slice of the ring
that would run past its end is clamped by the memoryview, so the assignment raises ValueError (lengths differ)
and the zero-cost ``try`` hands the message to the slow path, which also reports a too-small buffer.

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
which x86 does not give. ``ringwait.full_fence()`` supplies it: one C call that takes and releases a lock,
i.e. two ``lock``-prefixed compare-and-swaps (see its docstring). Every sleeper stores its flag, fences, re-checks the
counter and only then blocks on its eventfd; the eventfd write that wakes it is a system call and itself a
full barrier. The waker clears the flag before that write (one wake-up per sleep, not one per message while
the sleeper is being scheduled); every clear is followed by a write, so a sleeper whose flag was cleared under
it still finds a count waiting, and a count left over from an earlier wake-up only costs one more turn.

- Data (consumer sleeps, producer wakes): the producer fences after every head store before it reads
  ``data_wait``. Nothing else would bound the wait: after its last message a producer may never come back.
- Space (producer sleeps, consumer wakes): the consumer's fast path stores tail and checks nothing (its slow
  path, chunks of large records included, reads ``space_wait`` after each release, without a fence); it
  fences and reads ``space_wait`` when it is about to wait for data itself. That is enough: a producer asleep
  for space holds bytes the consumer has not read yet, so the consumer drains the ring and then waits for
  data, and that fence orders all its tail stores before its ``space_wait`` load. Dekker between the
  producer's (flag store, fence, tail load) and the consumer's (tail stores, fence, flag load): either the
  producer saw enough room or the consumer sees the flag and wakes it. A producer woken this way finds the
  ring empty, which on one CPU is the best batching anyway. (A consumer that stops reading for good closes
  its end, and close always writes the eventfd.)
- Close: the closer sets its closed flag, then always writes the eventfd. A sleeper checks the flag before
  every blocking read, because the close's count may already have been consumed, added to the peer's last
  wake-up, by the read that returned that last message.

On ARM or POWER none of this holds: payload and head stores may be seen out of order, so the producer would
need a store-release of head (``stlr``/``lwsync``), the consumer a load-acquire (``ldar``), and the wait flags
a full ``dmb ish``/``sync``. CPython exposes none of them, so these transports report themselves unavailable
on anything but x86-64 rather than risk silent corruption.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

from .ringwait import full_fence, sleeper, spinner

# Header words (u64 items of the header's cast("Q") view): the producer's cache line, then the consumer's.
HEAD, SPACE_WAIT, PROD_CLOSED = 0, 1, 2  # written by the producer (SPACE_WAIT also cleared by its waker)
TAIL, DATA_WAIT, CONS_CLOSED = 8, 9, 10  # written by the consumer (DATA_WAIT also cleared by its waker)
HEADER_BYTES = 128
RECORD_ALIGN = 8
DEFAULT_RING_BYTES = 256 * 1024  # the smallest ring setup() picks
MAX_RING_BYTES = 64 * 1024 * 1024  # the largest: bigger messages pass through in chunks
RING_MESSAGES = 4  # setup() sizes a ring to hold this many messages, so a writer running ahead rarely waits for room
RING_BATCH = 16  # ... and this many where the ring stays cache-sized: fewer wake-ups per message (ring_bytes_for)
CACHE_RING_BYTES = 1024 * 1024  # about one core's L2 here (AMD EPYC: 1 MiB)


def ring_unavailable_reason(blocking: bool) -> str | None:
    """Why the ring cannot run on this machine, or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return (f"the lock-free ring relies on x86-64 store ordering (TSO); {platform.machine()} needs "
                "release/acquire barriers CPython cannot issue")
    if blocking and not hasattr(os, "eventfd"):
        return "os.eventfd needs Linux and Python >= 3.10"
    return None


def segment_bytes(ring_bytes: int | list[int], rings: int = 2) -> int:
    caps = [ring_bytes] * rings if isinstance(ring_bytes, int) else ring_bytes
    return sum(HEADER_BYTES + cap for cap in caps)


def check_capacity(ring_bytes: int) -> None:
    if ring_bytes < 64 or ring_bytes & (ring_bytes - 1):
        raise ValueError(f"ring_bytes must be a power of two >= 64, not {ring_bytes}")


def ring_bytes_for(size: int, smallest: int = DEFAULT_RING_BYTES, largest: int = MAX_RING_BYTES) -> int:
    """The ring for messages of ``size`` bytes: a power of two holding RING_MESSAGES of them, and up to
    RING_BATCH of them while that stays within CACHE_RING_BYTES; within limits.

    A 256 KiB ring carried a 1 MiB message in 8-9 chunks, each a wake-up; a ring of a few messages lets the
    producer run ahead by whole messages and the consumer drain several per wake-up. On one CPU every wake-up
    is a context switch pair, so more messages per ring means fewer per message, until the ring outgrows the
    CPU's cache and the consumer copies out of L3. 64 KiB messages on one CPU (benchmarks/shm_profile.py
    stream -s 64K): a 1 MiB ring ran at 0.95x the hand-written floor against 0.68x with 256 KiB, and its CPU
    time per message was 15-35 % below the 256 KiB ring's and 40-60 % below a 4 MiB one's.
    """
    want = max(RING_MESSAGES * max(size, 1), min(RING_BATCH * size, CACHE_RING_BYTES))
    return max(smallest, min(largest, 1 << (want - 1).bit_length()))


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
        write = os.eventfd_write
        fence = full_fence()
        if efd is None or self.space_efd is None:
            wait_space = spinner(hdr, TAIL, CONS_CLOSED, BrokenPipeError, "space")
        else:
            wait_space = sleeper(hdr, TAIL, SPACE_WAIT, CONS_CLOSED, self.space_efd, BrokenPipeError, "space",
                                  fence)
        chunk = cap // 4
        head = hdr[HEAD]
        limit = hdr[TAIL] + cap  # head may advance up to here without re-reading tail

        def publish(new_head: int) -> None:
            hdr[HEAD] = new_head  # after the payload: TSO keeps the two stores in this order
            if efd is not None:
                fence()  # the head store is visible before the wait flag is read (Dekker)
                if hdr[DATA_WAIT]:
                    hdr[DATA_WAIT] = 0  # one wake-up per sleep, not one per message until the peer runs
                    write(efd, 1)

        def room(end: int) -> None:
            """Wait until head may advance to ``end``."""
            nonlocal limit
            limit = hdr[TAIL] + cap
            if end > limit:
                limit = wait_space(end - cap) + cap

        def send_large(msg: memoryview, n: int, rec: int) -> None:
            """A record bigger than the ring: length word, then the payload chunk by chunk."""
            nonlocal head
            if head + RECORD_ALIGN > limit:
                room(head + RECORD_ALIGN)
            words[(head & mask) >> 3] = n
            head += RECORD_ALIGN
            done, body = 0, rec - RECORD_ALIGN  # payload + padding
            while done < body:
                need = min(body - done, chunk)
                if head + need > limit:
                    room(head + need)
                c = min(limit - head, body - done)
                if done < n:
                    _copy_in(data, cap, head & mask, msg[done:min(done + c, n)])
                head += c
                done += c
                publish(head)

        def send_slow(msg: memoryview) -> None:
            """The ring looks full, the record wraps around its end, or it is larger than the ring."""
            nonlocal head
            n = len(msg)
            rec = (n + 2 * RECORD_ALIGN - 1) & -RECORD_ALIGN  # length word + payload, 8-aligned
            if rec > cap:
                send_large(msg, n, rec)
                return
            if head + rec > limit:
                room(head + rec)  # wait for room for all of it
            pos = head & mask
            words[pos >> 3] = n
            _copy_in(data, cap, (pos + RECORD_ALIGN) & mask, msg)
            head += rec
            publish(head)

        # The fast paths: (n + 15) & -8 is the record (length word + payload, 8-aligned). A payload that would
        # run past the end of the ring makes the clamped slice shorter than msg: ValueError -> send_slow.
        if efd is None:
            def send(msg: memoryview) -> None:
                nonlocal head
                n = len(msg)
                new = head + ((n + 15) & -8)
                if new > limit:
                    return send_slow(msg)
                pos = head & mask
                words[pos >> 3] = n
                pos += 8
                try:
                    data[pos:pos + n] = msg
                except ValueError:
                    return send_slow(msg)
                head = new
                hdr[HEAD] = new  # after the payload: TSO keeps the two stores in this order
            return send

        def send_blocking(msg: memoryview) -> None:
            nonlocal head
            n = len(msg)
            new = head + ((n + 15) & -8)
            if new > limit:
                return send_slow(msg)
            pos = head & mask
            words[pos >> 3] = n
            pos += 8
            try:
                data[pos:pos + n] = msg
            except ValueError:
                return send_slow(msg)
            head = new
            hdr[HEAD] = new  # publish(new), inlined: this is the hot path
            fence()
            if hdr[DATA_WAIT]:
                hdr[DATA_WAIT] = 0
                write(efd, 1)

        return send_blocking

    # -- consumer ------------------------------------------------------------------------------------
    def receiver(self) -> Callable[[memoryview], int]:
        hdr, data, words, cap = self.hdr, self.data, self.words, self.cap
        mask = cap - 1
        sefd = self.space_efd
        write = os.eventfd_write
        if sefd is None or self.data_efd is None:
            wait_data = spinner(hdr, HEAD, PROD_CLOSED, EOFError, "a message")
        else:
            wait_data = sleeper(hdr, HEAD, DATA_WAIT, PROD_CLOSED, self.data_efd, EOFError, "a message",
                                 full_fence(), wake=(SPACE_WAIT, sefd))
        tail = hdr[TAIL]
        head_seen = hdr[HEAD]

        def release(new_tail: int) -> None:
            hdr[TAIL] = new_tail  # after the payload was read: TSO never moves a store before a load
            if sefd is not None and hdr[SPACE_WAIT]:  # no fence needed here: see "Space" in the module docstring
                hdr[SPACE_WAIT] = 0
                write(sefd, 1)

        def recv_large(buf: memoryview, n: int, rec: int) -> int:
            """The record is not all published yet (bigger than the ring): copy it out as it arrives."""
            nonlocal tail, head_seen
            tail += RECORD_ALIGN
            done, body = 0, rec - RECORD_ALIGN
            while done < body:
                if head_seen == tail:
                    head_seen = hdr[HEAD]
                    if head_seen == tail:
                        head_seen = wait_data(tail + 1)
                c = min(head_seen - tail, body - done)
                if done < n:
                    _copy_out(buf[done:min(done + c, n)], data, cap, tail & mask)
                tail += c
                done += c
                release(tail)
            return n

        def recv_slow(buf: memoryview) -> int:
            """The record wraps around the end of the ring, is not all published, or does not fit ``buf``."""
            nonlocal tail, head_seen
            pos = tail & mask
            n = words[pos >> 3]
            if n > len(buf):
                raise ValueError(f"a {n}-byte message does not fit the {len(buf)}-byte receive buffer")
            rec = (n + 2 * RECORD_ALIGN - 1) & -RECORD_ALIGN
            if head_seen - tail < rec:
                head_seen = hdr[HEAD]
                if head_seen - tail < rec:
                    return recv_large(memoryview(buf), n, rec)
            _copy_out(memoryview(buf)[:n], data, cap, (pos + RECORD_ALIGN) & mask)
            tail += rec
            release(tail)
            return n

        # The fast path, the same for spinning and sleeping ends (they differ only inside wait_data). A payload
        # that wraps makes the clamped ring slice shorter, one larger than buf makes buf[:n] shorter: either way
        # the lengths differ, ValueError -> recv_slow (which reports the latter).
        def recv_into(buf: memoryview) -> int:
            nonlocal tail, head_seen
            if head_seen == tail:
                head_seen = hdr[HEAD]
                if head_seen == tail:
                    head_seen = wait_data(tail + 1)
            pos = tail & mask
            n = words[pos >> 3]
            new = tail + ((n + 15) & -8)
            if new > head_seen:
                return recv_slow(buf)
            pos += 8
            try:
                buf[:n] = data[pos:pos + n]
            except ValueError:
                return recv_slow(buf)
            tail = new
            # After the payload was read (TSO never moves a store before a load). No space_wait check per
            # message on a sleeping end: see "Space" in the module docstring.
            hdr[TAIL] = new
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
