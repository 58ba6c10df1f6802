"""signal: signals as IPC. A signal carries no payload, so only the 0-byte size applies: one signal = one
(empty) message, a pure notification.

Two real-time signals are used, one per direction (client -> server: SIGRTMIN+2, server -> client: SIGRTMIN+3).
Each worker BLOCKS both with pthread_sigmask in connect(), before it reports READY, and receives with
sigwait()/sigtimedwait(): no handler runs, so nothing races with the main loop, and a signal sent before the
receiver waits stays pending instead of being lost. No peer sends before START, which the runner sends only
after every worker is READY, so no signal ever reaches a worker that has not blocked it (an unblocked real-time
signal's default action would kill it). The peers' pids come from the runner in address["pids"].

Reliability. Standard signals coalesce (two SIGUSR1 pending are one), real-time signals queue, but only up to
RLIMIT_SIGPENDING per user. Beyond it the kernel drops the count of a signal sent with kill() silently (it keeps
one pending instance, kernel/signal.c "silent loss of information"), while sigqueue() fails with EAGAIN. So:
- one message in flight at a time (a writer that waits for each answer): kill(); at most one signal is ever
  pending per direction, no overrun possible.
- more in flight (a writer that runs ahead of its reader): sigqueue() through ctypes; on EAGAIN the writer
  yields the CPU and retries, which is back-pressure, not loss. Hence reliable = True: every signal sent
  arrives, and a counted run of empty messages ends by count (empty messages carry no end marker, so duration
  runs are n/a).
Ordering is trivially kept: all signals of one direction are the same signal number.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import Any

from .base import BoundChannel, Channel, Transport

TWO_WAY_OFFSETS = (2, 3)  # SIGRTMIN + offset: client -> server, server -> client


def _libc_sigqueue() -> Any:
    """libc's sigqueue(pid, sig, union sigval) via ctypes, or None. The union is pointer-sized and passed by
    value: a c_void_p of 0 on the x86-64 and aarch64 ABIs."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.sigqueue
    except (ImportError, OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


class SignalTransport(Transport):
    name = "signal"
    summary = "real-time signals, blocked and taken with sigwait (no payload: notification only)"
    order = 160
    boundaries = True
    empty_ok = True
    max_message = 0
    peer_pids = True  # kill()/sigqueue() to the peer's pid

    @classmethod
    def unavailable_reason(cls) -> str | None:
        for attr in ("SIGRTMIN", "pthread_sigmask", "sigwait", "sigtimedwait"):
            if not hasattr(signal, attr):
                return f"signal.{attr} is not available on this platform"
        if _libc_sigqueue() is None:
            return "libc sigqueue() is not reachable through ctypes"
        return None

    @classmethod
    def limit_reason(cls, size: int) -> str:
        return "signals carry no payload (only the 0-byte size applies)"

    def setup(self) -> dict[str, Any]:
        # Nothing to create: the signals exist, the pids are added by the worker (address["pids"]).
        c2s, s2c = (int(signal.SIGRTMIN) + off for off in TWO_WAY_OFFSETS)
        return {"c2s": c2s, "s2c": s2c, "queued": self.spec.shape.in_flight != 1}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        c2s, s2c = address["c2s"], address["s2c"]
        signal.pthread_sigmask(signal.SIG_BLOCK, {c2s, s2c})  # before READY: see the module docstring
        pids = address["pids"]
        if role == "server":
            return SignalChannel(peer=pids["client"], send_sig=s2c, recv_sig=c2s, queued=address["queued"])
        return SignalChannel(peer=pids["server"], send_sig=c2s, recv_sig=s2c, queued=address["queued"])


class SignalChannel(BoundChannel):
    """send = one signal to the peer; recv_into = sigwait for the peer's signal. Messages must be empty."""

    def __init__(self, peer: int, send_sig: int, recv_sig: int, queued: bool) -> None:
        self.recv_sig = recv_sig
        self.retries = 0  # sigqueue EAGAINs (RLIMIT_SIGPENDING reached): back-pressure events, not losses
        wait_set = {recv_sig}
        sigwait = signal.sigwait

        def recv_into(buf: memoryview) -> int:
            sigwait(wait_set)
            return 0

        self.recv_into = recv_into  # type: ignore[method-assign]
        if queued:
            import ctypes

            sigqueue, get_errno, eagain, yield_cpu = _libc_sigqueue(), ctypes.get_errno, errno.EAGAIN, os.sched_yield

            def send(msg: memoryview) -> None:
                if len(msg):
                    raise ValueError("signals carry no payload: only empty messages can be sent")
                while sigqueue(peer, send_sig, None):
                    err = get_errno()
                    if err != eagain:
                        raise OSError(err, f"sigqueue to pid {peer}: {os.strerror(err)}")
                    self.retries += 1
                    yield_cpu()  # the consumer must run to drain the queue
        else:
            kill = os.kill

            def send(msg: memoryview) -> None:
                if len(msg):
                    raise ValueError("signals carry no payload: only empty messages can be sent")
                kill(peer, send_sig)

        self.send = send  # type: ignore[method-assign]

    def set_timeout(self, seconds: float | None) -> None:
        wait_set = {self.recv_sig}
        if seconds is None:
            sigwait = signal.sigwait

            def recv_into(buf: memoryview) -> int:
                sigwait(wait_set)
                return 0
        else:
            sigtimedwait = signal.sigtimedwait

            def recv_into(buf: memoryview) -> int:
                if sigtimedwait(wait_set, seconds) is None:
                    raise TimeoutError("no signal before the receive timeout")
                return 0

        self.recv_into = recv_into  # type: ignore[method-assign]

    def close(self) -> None:
        # The signals stay blocked: unblocking with one still pending would deliver it with its default action
        # (terminate). The process exits soon after; pending signals die with it.
        pass
