"""Deliberately misbehaving transports, loaded through IPCLAB_EXTRA_TRANSPORTS by the fault tests.

Each is a real transport (anonymous pipes, or any registered transport for the gated ones) with one fault
injected on the child side, so the runner and the CLI are exercised end to end without test hooks in ipclab:

    flip      the client flips the last byte of every FLIP_EVERY-th message it sends (corruption, not loss)
    hang      the server stops reading after HANG_AFTER messages (the per-trial timeout must end it)
    raise     the server's connect raises (the one-line error and the traceback must reach the user)
    suicide   the server SIGKILLs itself after KILL_AFTER messages (a worker killed mid-cell)
    chatty    both ends print to stdout in connect() (a --stdio worker's stdout is the protocol: it must survive)
    Gated_X   transport X whose server, in connect(), writes its pid to $IPCLAB_TEST_GATE.waiting and waits
              until $IPCLAB_TEST_GATE.go.PID exists: while it waits, a test knows X's OS objects exist

The mixins that inject a fault (WrapsOneEnd, RefusesServer) and the Wrapped channel also serve the in-process
loopback transports of tests/test_engine_inline.py.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from ipclab.transports import TRANSPORTS, get_transport
from ipclab.transports.base import Channel
from ipclab.transports.pipe import PipeTransport

FLIP_EVERY = 5
HANG_AFTER = 10
KILL_AFTER = 10
GATE_ENV = "IPCLAB_TEST_GATE"
GATE_LIMIT = 60.0  # s a gated server waits at most (a test that forgets to open the gate still ends)


class Wrapped(Channel):
    """Delegates to a real channel; subclasses replace send or recv_into (``n`` is theirs to count with)."""

    def __init__(self, inner: Channel) -> None:
        self.inner = inner
        self.n = 0
        self.set_timeout = inner.set_timeout  # type: ignore[method-assign]

    def send(self, msg: memoryview) -> None:
        self.inner.send(msg)

    def recv_into(self, buf: memoryview) -> int:
        return self.inner.recv_into(buf)

    def close(self) -> None:
        self.inner.close()


class _Flipper(Wrapped):
    def send(self, msg: memoryview) -> None:
        n, self.n = self.n, self.n + 1
        if n % FLIP_EVERY or not len(msg):
            self.inner.send(msg)
            return
        bad = bytearray(msg)
        bad[-1] ^= 0x01  # the last byte: never the sequence number, never the end-marker byte
        self.inner.send(memoryview(bad))


class _Hanger(Wrapped):
    def recv_into(self, buf: memoryview) -> int:
        self.n += 1
        if self.n > HANG_AFTER:
            while True:  # stop reading for good; the runner's timeout must kill us
                time.sleep(3600)
        return self.inner.recv_into(buf)


class _Suicide(Wrapped):
    def recv_into(self, buf: memoryview) -> int:
        self.n += 1
        if self.n > KILL_AFTER:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.recv_into(buf)


class WrapsOneEnd:
    """Transport mixin (before the real transport in the bases): ``faulty_role``'s channel comes wrapped in
    ``fault`` (a Wrapped subclass), the other end's as it is."""

    faulty_role = "server"
    fault: type[Wrapped]

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        channel = super().connect(address, role, index)  # type: ignore[misc]
        return cls.fault(channel) if role == cls.faulty_role else channel


class RefusesServer:
    """Transport mixin (before the real transport in the bases): the server's connect raises ``refusal``."""

    refusal = "faulty transport refuses to connect (deliberate)"

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        if role == "server":
            raise RuntimeError(cls.refusal)
        return super().connect(address, role, index)  # type: ignore[misc]


class FlipTransport(WrapsOneEnd, PipeTransport):
    name = "flip"
    summary = "pipes whose client flips one byte of every 5th message"
    faulty_role, fault = "client", _Flipper


class HangTransport(WrapsOneEnd, PipeTransport):
    name = "hang"
    summary = "pipes whose server stops reading after 10 messages"
    fault = _Hanger


class RaiseTransport(RefusesServer, PipeTransport):
    name = "raise"
    summary = "pipes whose server fails to connect"


class SuicideTransport(WrapsOneEnd, PipeTransport):
    name = "suicide"
    summary = "pipes whose server SIGKILLs itself after 10 messages"
    fault = _Suicide


class ChattyTransport(PipeTransport):
    name = "chatty"
    summary = "pipes whose workers print to stdout"

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        print(f"chatty {role} says hello", flush=True)
        return super().connect(address, role, index)


def _gated(base_name: str) -> type:
    base = get_transport(base_name)

    def connect(cls: type, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        gate = os.environ.get(GATE_ENV)
        if role == "server" and gate:
            pid = os.getpid()
            with open(f"{gate}.{pid}.tmp", "w", encoding="ascii") as f:
                f.write(str(pid))
            os.rename(f"{gate}.{pid}.tmp", gate + ".waiting")  # atomic: the test never reads half a pid
            deadline = time.monotonic() + GATE_LIMIT
            while not os.path.exists(f"{gate}.go.{pid}") and time.monotonic() < deadline:
                time.sleep(0.02)
        return base.connect.__func__(cls, address, role, index)  # type: ignore[attr-defined]

    return type(f"Gated_{base_name}", (base,), {"name": f"gated-{base_name}", "connect": classmethod(connect),
                                                  "__module__": __name__})


def __getattr__(attr: str) -> type:
    """``Gated_posix_mq`` -> the gated version of the registered transport ``posix-mq``."""
    if attr.startswith("Gated_"):
        wanted = attr[len("Gated_"):]
        for name in TRANSPORTS:
            if name.replace("-", "_") == wanted:
                return _gated(name)
    raise AttributeError(attr)
