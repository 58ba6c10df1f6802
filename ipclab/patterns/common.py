"""What every pattern shares: the payload, the 16-byte header, end markers, sample arrays and the context.

Header (messages of 16 bytes or more): little-endian u64 sequence number, u64 send time in ns
(time.perf_counter_ns == CLOCK_MONOTONIC on Linux, comparable across processes of one host).

Below 16 bytes the message still starts with a sequence field, of what the bytes can carry: k = 8 bytes from
8 B up, else 4, 2 or 1 (the largest power of two that fits), holding the sequence number modulo 2**(8k-1) in
native byte order (the top bit of its last byte stays clear for the end marker). The same on every transport:
so a lossy receiver tells warm-up from measured messages, and counts loss, reordering and duplicates, at 1 B
as at 4 KiB (numbers wrap every 128 messages at 1 B: a message more than 64 out of place cannot be placed, see
``seq_modulus``). The payload's first k bytes are zero, so a sender that writes no sequence (a request) still
sends sequence 0, never a marker. An empty message carries nothing: its loss is counted, the rest is unknown.

End marker (needed when the receiver cannot know the count: duration runs, lossy transports): a message of the
same size whose sequence field is all ones (byte k-1 is 0xFF: byte 7 from 8 B up, never true of a real
sequence number below 2**56). An empty message cannot carry a marker; such runs end by count or by the idle
timeout.
"""

from __future__ import annotations

import base64
import random
import struct
from array import array
from dataclasses import dataclass, field
from typing import Any

from ..probes import Probe

HEADER = struct.Struct("<QQ")
HEADER_SIZE = HEADER.size
END_SEQ = (1 << 64) - 1
IDLE_TIMEOUT = 1.0  # s without a datagram before a lossy receiver gives up waiting
REPLY_TIMEOUT = 0.25  # s a lossy ping waits for its echo before counting it lost
END_MARKERS = 3  # lossy transports send the marker several times: one may be lost


class IntegrityError(Exception):
    """A reliable transport delivered a wrong, missing or out-of-order message: the cell fails loudly."""


SEQ_FORMATS = {8: "Q", 4: "I", 2: "H", 1: "B"}  # sequence field width (bytes) -> memoryview format


def seq_bytes(size: int) -> int:
    """Width of the sequence field that starts every message of ``size`` bytes (0: an empty message)."""
    return next((k for k in SEQ_FORMATS if size >= k), 0)


def seq_modulus(size: int) -> int:
    """Sequence numbers are carried modulo this (2**(8k-1)); 0 for an empty message, which carries none.

    A receiver places a number within half of it of the highest seen (serial-number arithmetic): at 1 B a
    message more than 64 places late or a gap of 64 or more lost in a row cannot be told apart."""
    k = seq_bytes(size)
    return 1 << (8 * k - 1) if k else 0


def seq_view(buf: bytearray) -> memoryview | None:
    """The sequence field of ``buf`` as a one-item view: ``view[0] = seq & mask`` writes it without allocating
    (unlike struct.pack_into), ``view[0]`` reads it. None for an empty buffer."""
    k = seq_bytes(len(buf))
    return memoryview(buf)[:k].cast(SEQ_FORMATS[k]) if k else None  # type: ignore[call-overload]  # format from the table


def make_payload(seed: int, size: int) -> bytes:
    """The same pseudo-random bytes for a (seed, size) on every transport and in every process; below the
    header, the sequence field (the first seq_bytes) is zero: sequence 0, never an end marker."""
    payload = bytearray(random.Random(seed).randbytes(size))
    if size < HEADER_SIZE:
        payload[:seq_bytes(size)] = bytes(seq_bytes(size))
    return bytes(payload)


def end_marker(payload: bytes) -> bytearray:
    marker = bytearray(payload)
    if len(marker) >= HEADER_SIZE:
        HEADER.pack_into(marker, 0, END_SEQ, 0)
    else:
        k = seq_bytes(len(marker))
        marker[:k] = b"\xff" * k
    return marker


def marker_test(payload: bytes) -> tuple[int, int]:
    """(index, value): a message is an end marker iff msg[index] == value (only meaningful for size > 0): the
    last byte of the sequence field is 0xFF, which a real sequence number never has (its top bit is clear)."""
    k = seq_bytes(len(payload))
    if k:
        return k - 1, 0xFF
    return 0, -1  # never matches: empty messages carry no marker


def receive_buffer(ctx: Context) -> tuple[bytearray, memoryview, memoryview, memoryview]:
    """A receiver's S-byte buffer, a view of it, and the two bodies a byte-for-byte check compares: the view's
    and the payload's, after the header or the sequence field (which differ in every message)."""
    rbuf = bytearray(ctx.size)
    rmv = memoryview(rbuf)
    at = HEADER_SIZE if ctx.size >= HEADER_SIZE else seq_bytes(ctx.size)
    return rbuf, rmv, rmv[at:], memoryview(ctx.payload)[at:]


def new_samples(n: int) -> array:
    """A preallocated array of n signed 64-bit samples (no allocation in the loop that fills it)."""
    return array("q", bytes(8 * n))


MAX_SAMPLES = 1 << 23  # per worker and trial: 64 MiB of samples, ~90 MiB of base64 in the RESULT message


def grow(samples: array) -> bool:
    """Double a duration run's sample array (amortised: rare); False once it holds MAX_SAMPLES.

    Memory stays bounded however long --duration is: round-trip patterns end the trial there, streams keep
    counting messages but stop recording their latency.
    """
    n = len(samples)
    if n >= MAX_SAMPLES:
        return False
    samples.extend(new_samples(min(max(n, 1), MAX_SAMPLES - n)))
    return True


def encode_samples(samples: array, n: int) -> str:
    """The first n samples as base64 of their little-endian bytes: compact in JSON, never pickled."""
    n = min(n, len(samples))
    return base64.b64encode(memoryview(samples)[:n].cast("B")).decode("ascii")


def decode_samples(text: str) -> array:
    out = array("q")
    out.frombytes(base64.b64decode(text.encode("ascii"), validate=True))
    return out


@dataclass
class Context:
    """Everything a pattern needs in a worker, built from the CONFIG message."""

    size: int
    count: int | None
    duration: float | None
    warmup: int
    seed: int
    verify: bool
    reliable: bool
    clients: int = 1  # kept for compatibility: the same value as options["clients"]
    probe: Probe = field(default_factory=Probe)
    payload: bytes = b""
    options: dict[str, Any] = field(default_factory=dict)  # the patterns' own options (SPEC.options), by name
    rate: float | None = None  # --rate: messages per second on a schedule (open loop); None = closed loop

    def __post_init__(self) -> None:
        if not self.payload:
            self.payload = make_payload(self.seed, self.size)
        # One value, two names: a config that sends only one of them still gives both.
        if "clients" in self.options:
            self.clients = self.options["clients"]
        else:
            self.options["clients"] = self.clients

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Context:
        return cls(
            size=cfg["size"],
            count=cfg["count"],
            duration=cfg["duration"],
            warmup=cfg["warmup"],
            seed=cfg["seed"],
            verify=cfg["verify"],
            reliable=cfg["reliable"],
            clients=cfg.get("clients", 1),
            options=dict(cfg.get("options") or {}),
            rate=cfg.get("rate"),
        )


def throughput_figures(received: int, elapsed_ns: int, size: int) -> dict[str, float | None]:
    """msg/s and MB/s at a consumer: ``received`` messages, the first to the last ``elapsed_ns`` apart."""
    if received < 2 or elapsed_ns <= 0:
        return {"msg_s": None, "mb_s": None}
    msg_s = (received - 1) * 1e9 / elapsed_ns  # first to last message: received-1 arrived in the interval
    # Empty messages move messages, not bytes: MB/s is undefined there (shown as "-"), msg/s is the figure.
    return {"msg_s": msg_s, "mb_s": msg_s * size / 1e6 if size else None}


def cpu_figures(raw: dict[str, dict[str, Any]], messages: int) -> dict[str, float | None]:
    """CPU-us, context switches and minor page faults per message, summed over every worker of the trial."""
    cpu = sum(r["probe"].get("cpu_user_s", 0.0) + r["probe"].get("cpu_sys_s", 0.0) for r in raw.values())
    ctx = sum(r["probe"].get("ctx_voluntary", 0) + r["probe"].get("ctx_involuntary", 0) for r in raw.values())
    rss = max((r["probe"].get("maxrss_bytes", 0) for r in raw.values()), default=0)
    faults = [r["probe"].get("faults_minor") for r in raw.values()]  # absent from an older worker's probe
    if messages <= 0:
        return {"cpu_us_msg": None, "ctx_msg": None, "cpu_s": cpu, "rss_peak_bytes": rss}
    out = {"cpu_us_msg": cpu * 1e6 / messages, "ctx_msg": ctx / messages, "cpu_s": cpu, "rss_peak_bytes": rss}
    if faults and None not in faults:
        out["faults_msg"] = sum(faults) / messages
    return out
