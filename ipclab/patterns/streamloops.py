"""stream's hot loops: what a message costs beyond the mechanism's own C call, and nothing more.

Per message the producer writes the sequence number into the first header word (a store into a preallocated
memoryview, no struct call) and, on one message in SAMPLE_EVERY (those whose sequence number is a multiple of
it), the send time into the second word; a duration run tests its deadline on those same clock reads, so it
never reads the clock per message. The consumer compares every message's sequence number with the loop's own
counter (one load and one comparison: a wrong, missing or repeated message on a reliable transport fails the
cell at once) and reads the clock only on the sampled messages, recording their one-way latency into a
preallocated array. Everything else (decoding the samples, the byte-for-byte check of the last message) is
outside the timed window.

Measured on this code (benchmarks/overhead.py, the per-message profile in its docstring): the old loops paid
~130 ns per message in the producer (struct.pack_into with a clock read) and ~210 ns in the consumer (a clock
read, struct.unpack_from's tuple, the latency store); these pay ~50 ns each. py-spy on a pipe stream of 64 B:
98 % of the consumer's samples on the line of its read(2), 99 % of the producer's on its write(2).

The header layout is common.HEADER's (little-endian u64 sequence, u64 send time); the words are read and
written through a native "Q" view, which is that layout on every little-endian host (x86-64, aarch64,
ppc64le, riscv64). A big-endian host gets a struct-backed view of the same bytes (slower, still correct).
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from ..transports.channels import hot_io
from .common import (
    HEADER,
    HEADER_SIZE,
    Context,
    IntegrityError,
    encode_samples,
    grow,
    marker_test,
    new_samples,
    receive_buffer,
    seq_modulus,
    seq_view,
)

SAMPLE_EVERY = 16  # one-way latency is stamped and measured on sequence numbers that are multiples of this
SAMPLE_MASK = SAMPLE_EVERY - 1
SAMPLED = f"sampled 1 in {SAMPLE_EVERY}; every message when paced by --rate"


class _StructWords:
    """The two header words of a buffer through struct (big-endian hosts): the same bytes as the native view."""

    def __init__(self, buf: bytearray) -> None:
        self.buf = buf

    def __getitem__(self, i: int) -> int:
        value: int = HEADER.unpack_from(self.buf, 0)[i]
        return value

    def __setitem__(self, i: int, value: int) -> None:
        words = list(HEADER.unpack_from(self.buf, 0))
        words[i] = value
        HEADER.pack_into(self.buf, 0, *words)


def header_words(buf: bytearray) -> Any:
    """The header of ``buf`` as two u64 words: [0] the sequence number, [1] the send time (ns); None below
    HEADER_SIZE. Reading or writing a word allocates nothing but the int itself."""
    if len(buf) < HEADER_SIZE:
        return None
    if sys.byteorder == "little":
        return memoryview(buf)[:HEADER_SIZE].cast("Q")
    return _StructWords(buf)


def produce(ch: Any, ctx: Context) -> int:
    """Send ctx.warmup messages, then ctx.count or ctx.duration's worth; returns the sequence number after the last."""
    size, warmup, probe = ctx.size, ctx.warmup, ctx.probe
    sbuf = bytearray(ctx.payload)
    smv = memoryview(sbuf)
    clock = time.perf_counter_ns
    words = header_words(sbuf)
    seqv = seq_view(sbuf)  # from 8 B up the same word as words[0]; None for an empty message
    mask = seq_modulus(size) - 1
    send = ch.send
    # A channel that sends by reference (zmq, from its copy threshold up) gives a tracked send; others None.
    tracked_send = ch.zero_copy_send(size) if words is not None else None
    if tracked_send is not None:
        return _produce_pooled(tracked_send, ctx)
    for seq in range(warmup):  # every warm-up message stamped: the consumer may sample any of them
        if words is not None:
            words[0] = seq
            words[1] = clock()
        elif seqv is not None:
            seqv[0] = seq & mask
        send(smv)
    rsend, _, finish_send, _, sent = hot_io(ch, size)  # the channel's C send, no Python frame around it
    if seqv is None:  # an empty message carries nothing: send it, count it
        seqv = memoryview(bytearray(8)).cast("Q")  # a scratch word, so that one loop serves every size
    stamp = words if words is not None else seqv  # below the header the stamp lands in the scratch/seq word...
    stamp_at = 1 if words is not None else 0  # ...and is overwritten at once: only the clock read remains
    probe.begin()
    if ctx.count is not None:
        end = warmup + ctx.count
        if words is not None:
            for seq in range(warmup, end):
                words[0] = seq
                if not seq & SAMPLE_MASK:
                    words[1] = clock()
                n = rsend(smv)
                if n != sent:
                    finish_send(smv, n)
        else:
            for seq in range(warmup, end):
                seqv[0] = seq & mask
                n = rsend(smv)
                if n != sent:
                    finish_send(smv, n)
        probe.end()
        return end
    deadline = clock() + int(ctx.duration * 1e9)  # type: ignore[operator]
    seq = warmup
    if words is not None:  # the counted loop's work: a header's sequence word needs no mask
        for seq in itertools.count(warmup):
            if not seq & SAMPLE_MASK:  # the deadline is tested on the clock reads the stamps make anyway
                now = clock()
                if now >= deadline:
                    break
                words[1] = now
            words[0] = seq
            n = rsend(smv)
            if n != sent:
                finish_send(smv, n)
        probe.end()
        return seq
    for seq in itertools.count(warmup):
        if not seq & SAMPLE_MASK:
            now = clock()
            if now >= deadline:
                break
            stamp[stamp_at] = now
        seqv[0] = seq & mask
        n = rsend(smv)
        if n != sent:
            finish_send(smv, n)
    probe.end()
    return seq


POOL_BYTES = 16 * 1024 * 1024  # at most this much (and 4..16 buffers) in a zero-copy producer's pool


def _produce_pooled(send: Any, ctx: Context) -> int:
    """produce() for a channel that sends by reference: each message is its own pool buffer, and a buffer is
    rewritten only once the tracker of its previous send says libzmq has released it, so every message leaves
    with the bytes it had when it was sent (tests/test_stream_fastpath.py checks them with --verify)."""
    size, warmup, probe, count = ctx.size, ctx.warmup, ctx.probe, ctx.count
    depth = max(4, min(16, POOL_BYTES // size))
    bufs = [bytearray(ctx.payload) for _ in range(depth)]
    views = [memoryview(b) for b in bufs]
    words = [header_words(b) for b in bufs]
    trackers: list[Any] = [None] * depth
    clock = time.perf_counter_ns
    end = warmup + count if count is not None else None
    deadline = 0
    seq = 0
    for seq in itertools.count():
        if seq == warmup:
            probe.begin()
            if end is None:
                deadline = clock() + int(ctx.duration * 1e9)  # type: ignore[operator]
        if seq == end:
            break
        j = seq % depth
        tracker = trackers[j]
        if tracker is not None and not tracker.done:
            tracker.wait()  # libzmq still holds this buffer: the producer runs at the I/O thread's pace
        w = words[j]
        w[0] = seq
        if seq < warmup or not seq & SAMPLE_MASK:
            now = clock()
            if end is None and seq >= warmup and now >= deadline:
                break
            w[1] = now
        trackers[j] = send(views[j])
    probe.end()
    return seq


def consume_reliable(ch: Any, ctx: Context, every: int = SAMPLE_EVERY) -> dict[str, Any]:
    """A reliable transport, messages of 1 B or more: every message must arrive, in order. One-way latency is
    measured on the messages whose sequence number is a multiple of ``every`` (a power of two; 1: all of them,
    for a producer that stamps every message, such as a paced one).

    With a count the loop stops after ctx.count measured messages and the window ends at the last one. In a
    duration run it stops at the end marker (or EOF); the clock is read only on sampled messages, so the window
    ends at the last sampled message and ``window`` counts the messages up to it (the few after it are counted
    as received, not timed)."""
    size, warmup, probe, count = ctx.size, ctx.warmup, ctx.probe, ctx.count
    smask = every - 1
    rbuf, rmv, got_body, want_body = receive_buffer(ctx)
    clock = time.perf_counter_ns
    words = header_words(rbuf)
    hdr = words is not None
    seqv = seq_view(rbuf)
    assert seqv is not None  # run() sends empty messages to the general consumer
    mask = seq_modulus(size) - 1
    mark_at, mark_value = marker_test(ctx.payload)
    recv = ch.recv_into
    for seq in range(warmup):
        recv(rmv)
        if seqv[0] != seq & mask:
            raise IntegrityError(f"warm-up message {seq}: got sequence {seqv[0]}")
    lat = new_samples(((count if count is not None else 1 << 16) + smask) // every if hdr else 0)
    verify = ctx.verify
    _, rrecv, _, finish_recv, _ = hot_io(ch, size)  # the channel's C read, no Python frame around it
    k = corrupt = 0
    try:
        recv(rmv)
    except EOFError:
        return _empty_result(probe)
    t_first = t_last = clock()
    probe.begin()
    if seqv[0] != warmup & mask:
        if count is None and rbuf[mark_at] == mark_value:
            probe.end()
            return _empty_result(probe)
        raise IntegrityError(f"message {warmup}: got sequence {seqv[0]} (lost or reordered on a reliable transport)")
    if hdr and not warmup & smask:
        lat[0] = t_first - words[1]
        k = 1
    if got_body != want_body:
        corrupt += 1
    measured = window = 1
    ended_by = "count"
    if count is not None:
        # The counted loop: one C call, the length test, the sequence test; the clock on 1 in ``every``.
        seq = warmup
        if hdr and not verify:
            for seq in range(warmup + 1, warmup + count):
                got = rrecv(rmv)
                if got != size:
                    finish_recv(rmv, got)
                if words[0] != seq:
                    _out_of_order(seq, words[0])
                if not seq & smask:
                    lat[k] = clock() - words[1]
                    k += 1
        else:
            for seq in range(warmup + 1, warmup + count):
                got = rrecv(rmv)
                if got != size:
                    finish_recv(rmv, got)
                if seqv[0] != seq & mask:
                    _out_of_order(seq, seqv[0])
                if hdr and not seq & smask:
                    lat[k] = clock() - words[1]
                    k += 1
                if verify and got_body != want_body:
                    corrupt += 1
        t_last = clock()
        measured = window = count
    else:
        # A duration run: read until the end marker. The marker fails the sequence test, so testing for it
        # costs nothing per message; the clock is read on sampled messages only and marks the window's end.
        seq = warmup
        try:
            if hdr and not verify:  # as the counted loop: the whole sequence word, no verify test per message
                for seq in itertools.count(warmup + 1):
                    got = rrecv(rmv)
                    if got != size:
                        finish_recv(rmv, got)
                    if words[0] != seq:
                        if rbuf[mark_at] == mark_value:
                            ended_by = "end marker"
                            break
                        _out_of_order(seq, words[0])
                    if not seq & smask:
                        t_last = clock()
                        window = seq - warmup + 1
                        if k < len(lat) or grow(lat):  # past MAX_SAMPLES: counted, latency not recorded
                            lat[k] = t_last - words[1]
                            k += 1
            else:
                for seq in itertools.count(warmup + 1):
                    got = rrecv(rmv)
                    if got != size:
                        finish_recv(rmv, got)
                    if seqv[0] != seq & mask:
                        if rbuf[mark_at] == mark_value:
                            ended_by = "end marker"
                            break
                        _out_of_order(seq, seqv[0])
                    if not seq & smask:
                        t_last = clock()
                        window = seq - warmup + 1
                        if hdr and (k < len(lat) or grow(lat)):  # past MAX_SAMPLES: counted, not recorded
                            lat[k] = t_last - words[1]
                            k += 1
                    if verify and got_body != want_body:
                        corrupt += 1
        except EOFError:
            ended_by = "eof"
        measured = seq - warmup
        if window < 2:  # fewer than ``every`` messages: time the whole run up to now instead
            t_last, window = clock(), measured
    probe.end()
    if not verify and measured > 1 and got_body != want_body:  # the last message is always checked byte for byte
        corrupt += 1
    return {"received": measured, "unique": measured, "window": window, "reordered": 0, "duplicated": 0,
            "corrupt": corrupt, "first_ns": t_first, "last_ns": t_last, "ended_by": ended_by,
            "latency": encode_samples(lat, k), "probe": probe.result()}


def _out_of_order(expected: int, got: int) -> None:
    raise IntegrityError(f"message {expected}: got sequence {got} (lost or reordered on a reliable transport)")


def _empty_result(probe: Any) -> dict[str, Any]:
    return {"received": 0, "unique": 0, "window": 0, "reordered": 0, "duplicated": 0, "corrupt": 0,
            "first_ns": 0, "last_ns": 0, "ended_by": "eof", "latency": "", "probe": probe.result()}
