"""A plug-in transport for known-answer tests through the CLI (IPCLAB_EXTRA_TRANSPORTS=stall=stall_transport:
StallPipe): anonymous pipes whose echo server stalls STALL_S once, at its STALL_AT-th read of the STALL_TRIAL-th
server of a run. Trials run in fresh processes, so the servers count themselves in the file named by
$IPCLAB_TEST_STALL (trials of a cell run one after another: no race)."""

from __future__ import annotations

import os
import time
from typing import Any

from faulty_transports import Wrapped, WrapsOneEnd

from ipclab.transports.base import Channel
from ipclab.transports.pipe import PipeTransport

STALL_S = 0.050
STALL_TRIAL, STALL_AT = 2, 40
COUNTER_ENV = "IPCLAB_TEST_STALL"


class _StallOnce(Wrapped):
    trial = 0

    def recv_into(self, buf: memoryview) -> int:
        self.n += 1
        got = self.inner.recv_into(buf)
        if self.n == STALL_AT and self.trial == STALL_TRIAL:
            time.sleep(STALL_S)  # the client's round trip waits for this echo
        return got


class StallPipe(WrapsOneEnd, PipeTransport):
    name = "stall"
    summary = "pipes whose echo server stalls 50 ms once, in the second trial"
    fault = _StallOnce

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        channel = super().connect(address, role, index)
        if role == "server":
            path = os.environ[COUNTER_ENV]
            count = 1
            if os.path.exists(path):
                with open(path, encoding="ascii") as f:
                    count += int(f.read() or 0)
            with open(path, "w", encoding="ascii") as f:
                f.write(str(count))
            channel.trial = count  # type: ignore[attr-defined]
        return channel


# -- open loop (tests/test_rate_process.py) -------------------------------------------------------------------
EVERY_S = 0.100  # the periodic stall: 100 ms ...
EVERY_N = 1000  # ... once per 1,000 receives (at the 500th, 1500th...: inside the measured window)
SLOW_ECHO_S = 0.005  # the slow echo: every answer 5 ms late, so at most 200 answers a second


class _StallEvery(Wrapped):
    def recv_into(self, buf: memoryview) -> int:
        self.n += 1
        got = self.inner.recv_into(buf)
        if self.n % EVERY_N == EVERY_N // 2:
            time.sleep(EVERY_S)  # every request sent meanwhile waits for this echo's server
        return got


class _SlowEcho(Wrapped):
    def recv_into(self, buf: memoryview) -> int:
        got = self.inner.recv_into(buf)
        time.sleep(SLOW_ECHO_S)
        return got


class StallEveryPipe(WrapsOneEnd, PipeTransport):
    """Pipes whose echo server stalls EVERY_S once per EVERY_N receives (the client's end is a plain pipe, which
    can wait for readiness: requests stay in flight while the server sleeps)."""

    name = "stall-every"
    summary = "pipes whose echo server stalls 100 ms once per 1,000 receives"
    fault = _StallEvery


class SlowEchoPipe(WrapsOneEnd, PipeTransport):
    """Pipes whose echo server answers SLOW_ECHO_S after each request: it cannot keep up with more than 200/s."""

    name = "slow-echo"
    summary = "pipes whose echo server sleeps 5 ms before every answer"
    fault = _SlowEcho


class _Blind(Wrapped):
    """A client end that hides its readiness wait (Wrapped declares none): open loop must be n/a."""


class BlindPipe(WrapsOneEnd, PipeTransport):
    name = "blind"
    summary = "pipes whose client end cannot wait for readiness"
    faulty_role = "client"
    fault = _Blind


DROP_EVERY = 10


class _DropSends(Wrapped):
    """Drops every DROP_EVERY-th message the client sends, and keeps the pipe's readiness wait (unlike drop10's
    client, which has none and would make an open-loop cell n/a)."""

    waits_readable = True

    def __init__(self, inner: Channel) -> None:
        super().__init__(inner)
        self.wait_readable = inner.wait_readable  # type: ignore[method-assign]

    def send(self, msg: memoryview) -> None:
        self.n += 1
        if self.n % DROP_EVERY:
            self.inner.send(msg)


class DropReadyPipe(WrapsOneEnd, PipeTransport):
    name = "drop-ready"
    summary = "pipes whose client drops every 10th message it sends (unreliable by declaration), readiness kept"
    reliable = False
    faulty_role = "client"
    fault = _DropSends
