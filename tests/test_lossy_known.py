"""Known answers for lossy accounting at every size, header or not: loopback transports that drop, duplicate or
reorder every 10th message by construction, run through the real Runner with the Inline launcher (fast tier).

Message i (0-based, counted per sending channel, warm-up included) is the faulty one when (i + 1) % 10 == 0.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from faulty_transports import Wrapped, WrapsOneEnd

from ipclab import runner
from ipclab.config import RunConfig
from ipclab.engine.inline import Inline
from ipclab.engine.supervise import Timing
from ipclab.patterns import pingpong
from ipclab.patterns.common import Context
from ipclab.transports import get_transport
from ipclab.transports.loopback import LoopbackTransport

FAST = Timing(setup=5.0, exit_grace=0.05, peer_grace=0.01)
EVERY = 10
ECHO_DELAY = 0.002  # s the delaying echo server waits: no honest round trip is shorter


class _Duplicate(Wrapped):
    def send(self, msg: memoryview) -> None:
        self.n += 1
        self.inner.send(msg)
        if self.n % EVERY == 0:
            self.inner.send(msg)


class _Swap(Wrapped):
    """Holds every 10th message back and sends it right after the next one."""

    held: bytes | None = None

    def send(self, msg: memoryview) -> None:
        self.n += 1
        if self.n % EVERY == 0:
            self.held = bytes(msg)
            return
        self.inner.send(msg)
        if self.held is not None:
            self.inner.send(memoryview(self.held))
            self.held = None


class _SlowDuplicate(_Duplicate):
    def send(self, msg: memoryview) -> None:
        time.sleep(ECHO_DELAY)
        super().send(msg)


class Dropping(LoopbackTransport):
    name = "loopback-drop10"
    reliable = False
    drop_every = EVERY


class Duplicating(WrapsOneEnd, LoopbackTransport):
    name = "loopback-dup10"
    reliable = False
    faulty_role, fault = "client", _Duplicate


class Swapping(WrapsOneEnd, LoopbackTransport):
    name = "loopback-swap10"
    reliable = False
    faulty_role, fault = "client", _Swap


class SlowEcho(WrapsOneEnd, LoopbackTransport):
    """Every echo comes ECHO_DELAY late, and every 10th twice."""

    name = "loopback-slowecho"
    reliable = False
    faulty_role, fault = "server", _SlowDuplicate


KNOWN = {c.name: c for c in (Dropping, Duplicating, Swapping, SlowEcho)}


def cell(transport: str, pattern: str, size: int, count: int, warmup: int) -> dict[str, Any]:
    launcher = Inline()
    r = runner.Runner(RunConfig(transports=(transport,), patterns=(pattern,), sizes=(size,), count=count,
                                warmup=warmup), metadata={}, launcher=launcher, timing=FAST,
                      transports=lambda name: KNOWN.get(name) or get_transport(name))
    try:
        (result,) = r.run()["cells"]
    finally:
        assert launcher.alive() == []
    assert result["status"] == "ok", result["reason"]
    return result


SIZES = (1, 8, 64)  # a 1-byte sequence field (wraps every 128), a whole one, the header


@pytest.mark.parametrize("size", SIZES)
def test_dropping_every_10th_reports_exactly_10_percent(size: int) -> None:
    # Warm-up 15: message 9 is lost during it, which must not be charged to the window (it was: 10.5 %).
    figures = cell("loopback-drop10", "stream", size, count=200, warmup=15)["trials"][0]["metrics"]
    assert (figures["sent"], figures["received"], figures["lost"]) == (200, 180, 20)
    assert figures["loss_pct"] == 10.0
    assert figures["reordered"] == 0 and figures["duplicated"] == 0


@pytest.mark.parametrize("size", SIZES)
def test_duplicates_in_the_warmup_are_not_counted_and_the_last_one_is(size: int) -> None:
    # Messages 0..229: 9, 19, 29 duplicated in the warm-up (not counted), 39..229 in the window: 20, the last
    # message's own duplicate among them.
    figures = cell("loopback-dup10", "stream", size, count=200, warmup=30)["trials"][0]["metrics"]
    assert (figures["received"], figures["lost"], figures["duplicated"]) == (200, 0, 20)
    assert figures["reordered"] == 0


@pytest.mark.parametrize("size", SIZES)
def test_reorders_in_the_warmup_are_not_counted(size: int) -> None:
    # Messages 0..224: 9, 19, 29 come after their successor in the warm-up (29 after the first measured
    # message, 30), 39..219 in the window: 19.
    figures = cell("loopback-swap10", "stream", size, count=195, warmup=30)["trials"][0]["metrics"]
    assert (figures["received"], figures["lost"], figures["reordered"]) == (195, 0, 19)
    assert figures["duplicated"] == 0


@pytest.mark.parametrize("size", SIZES)
def test_a_duplicated_echo_is_stale_and_never_timed_as_the_next_round_trip(size: int) -> None:
    # Echoes 0..104, each ECHO_DELAY late; 9, 19, ..., 99 come twice: the second copy arrives while the next
    # ping waits and must be discarded, not timed (it was, at 1 and 8 B: round trips shorter than the delay).
    figures = cell("loopback-slowecho", "pingpong", size, count=100, warmup=5)["trials"][0]["metrics"]
    assert (figures["round_trips"], figures["lost"], figures["stale"]) == (100, 0, 10)
    assert figures["rtt_min_us"] >= ECHO_DELAY * 1e6


class _LateEcho:
    """An empty-message echo peer: the echo of ping 1 misses REPLY_TIMEOUT and comes during the wait-out."""

    def __init__(self) -> None:
        self.pings = 0
        self.queue: list[int] = []
        self.late = 0

    def set_timeout(self, seconds: float | None) -> None:
        pass

    def send(self, msg: memoryview) -> None:
        self.pings += 1
        if self.pings == 2:
            self.late += 1  # arrives only after the client gave up on it
        elif self.pings <= 3:
            self.queue.append(0)

    def recv_into(self, buf: memoryview) -> int:
        if not self.queue:
            if self.late:
                self.late -= 1
                self.queue.append(0)
            raise TimeoutError("no echo yet")
        self.queue.pop(0)
        return 0


def test_an_empty_pings_late_echo_is_waited_out_not_timed_as_the_next() -> None:
    ctx = Context(size=0, count=3, duration=None, warmup=0, seed=1, verify=False, reliable=False)
    raw = pingpong.run("client", 0, _LateEcho(), ctx)
    assert (raw["n"], raw["lost"], raw["stale"]) == (2, 1, 1)
    assert "no sequence number" in raw["caveat"]


def test_fanin_reorders_in_the_warmup_are_not_counted() -> None:
    figures = cell("loopback-swap10", "fanin", 64, count=195, warmup=30)["trials"][0]["metrics"]
    assert (figures["received"], figures["lost"], figures["reordered"]) == (195, 0, 19)


def test_a_long_run_lost_at_1_byte_is_placed_ahead_and_said_to_be_near_the_limit() -> None:
    from test_accounting import Scripted, _small

    from ipclab.patterns import stream
    from ipclab.patterns.common import end_marker

    ctx = Context(size=1, count=140, duration=None, warmup=0, seed=1, verify=True, reliable=False)
    # 0..9 arrive, 100 are lost in a row (more than half the 128 a byte can number), then 110..139.
    arrived = [*range(10), *range(110, 140)]
    raw = stream.run("server", 0, Scripted([_small(ctx.payload, s) for s in arrived] + [bytes(end_marker(
        ctx.payload))]), ctx)
    assert (raw["received"], raw["reordered"], raw["duplicated"]) == (40, 0, 0)
    assert "wrap every 128" in raw["caveat"]


def test_a_stale_echo_during_the_warmup_is_not_counted() -> None:
    # Echoes 0..114: the copy of 9 comes while warm-up ping 10 waits (not counted), those of 19..109 in the window.
    figures = cell("loopback-slowecho", "pingpong", 8, count=100, warmup=15)["trials"][0]["metrics"]
    assert (figures["round_trips"], figures["lost"], figures["stale"]) == (100, 0, 10)
