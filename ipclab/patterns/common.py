"""What every pattern shares: the payload, the 16-byte header, end markers, sample arrays and the context.

Header (messages of 16 bytes or more): little-endian u64 sequence number, u64 send time in ns
(time.perf_counter_ns == CLOCK_MONOTONIC on Linux, comparable across processes of one host).

End marker (needed when the receiver cannot know the count: duration runs, lossy transports): a message of the
same size whose sequence number is all ones (byte 7 is 0xFF, never true of a real sequence number below 2**56)
or, below 16 bytes, whose first byte is the payload's first byte inverted. An empty message cannot carry a
marker; such runs end by count or by the idle timeout.
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


def make_payload(seed: int, size: int) -> bytes:
    """The same pseudo-random bytes for a (seed, size) on every transport and in every process."""
    return random.Random(seed).randbytes(size)


def end_marker(payload: bytes) -> bytearray:
    marker = bytearray(payload)
    if len(marker) >= HEADER_SIZE:
        HEADER.pack_into(marker, 0, END_SEQ, 0)
    elif marker:
        marker[0] ^= 0xFF
    return marker


def marker_test(payload: bytes) -> tuple[int, int]:
    """(index, value): a message is an end marker iff msg[index] == value (only meaningful for size > 0)."""
    if len(payload) >= HEADER_SIZE:
        return 7, 0xFF
    if payload:
        return 0, payload[0] ^ 0xFF
    return 0, -1  # never matches: empty messages carry no marker


def receive_buffer(ctx: Context) -> tuple[bytearray, memoryview, memoryview, memoryview]:
    """A receiver's S-byte buffer, a view of it, and the two bodies a byte-for-byte check compares: the view's
    and the payload's, after the header when there is one (the header differs in every message)."""
    rbuf = bytearray(ctx.size)
    rmv = memoryview(rbuf)
    at = HEADER_SIZE if ctx.size >= HEADER_SIZE else 0
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
        )


def throughput_figures(received: int, elapsed_ns: int, size: int) -> dict[str, float | None]:
    """msg/s and MB/s at a consumer: ``received`` messages, the first to the last ``elapsed_ns`` apart."""
    if received < 2 or elapsed_ns <= 0:
        return {"msg_s": None, "mb_s": None}
    msg_s = (received - 1) * 1e9 / elapsed_ns  # first to last message: received-1 arrived in the interval
    # Empty messages move messages, not bytes: MB/s is undefined there (shown as "-"), msg/s is the figure.
    return {"msg_s": msg_s, "mb_s": msg_s * size / 1e6 if size else None}


def cpu_figures(raw: dict[str, dict[str, Any]], messages: int) -> dict[str, float | None]:
    """CPU-us and context switches per message, summed over every worker of the trial."""
    cpu = sum(r["probe"].get("cpu_user_s", 0.0) + r["probe"].get("cpu_sys_s", 0.0) for r in raw.values())
    ctx = sum(r["probe"].get("ctx_voluntary", 0) + r["probe"].get("ctx_involuntary", 0) for r in raw.values())
    rss = max((r["probe"].get("maxrss_bytes", 0) for r in raw.values()), default=0)
    if messages <= 0:
        return {"cpu_us_msg": None, "ctx_msg": None, "cpu_s": cpu, "rss_peak_bytes": rss}
    return {"cpu_us_msg": cpu * 1e6 / messages, "ctx_msg": ctx / messages, "cpu_s": cpu, "rss_peak_bytes": rss}
