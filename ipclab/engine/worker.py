"""The worker loop: ``python -m ipclab.worker CONTROL_FD [RUNNER_PID]`` or ``python -m ipclab.worker --stdio``.

Protocol on the control channel (never on the measured channel):
    runner -> CONFIG   worker opens its endpoint, prepares buffers -> READY
    runner -> START    worker runs the pattern (servers first say STARTED; clients get START only after
                       every server did)                              -> RESULT | ERROR
    runner -> EXIT     worker closes its endpoint and exits
The worker stays alive after RESULT until EXIT so that a writer never tears its endpoint down while the reader
is still draining it.

The control channel is any pipe of bytes both ways: an inherited socket (CONTROL_FD), or stdin/stdout
(``--stdio``), which is what a worker started on another host through a command (ssh, ip netns exec,
docker exec -i) has. With
``--stdio``, stdout is moved out of the way (stray prints go to stderr, never into the protocol) and stdin EOF
ends the worker, also mid-trial: a runner that goes away takes its workers with it. A local worker dies with the
runner through PR_SET_PDEATHSIG, so a SIGKILLed runner leaves no orphan spinning on a channel.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import traceback
from typing import Any

from ..control import ControlChannel, ControlClosed


def _die_with_parent(runner_pid: int | None) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    # The runner died before prctl took effect: we were re-parented. Compare with the runner's pid rather than
    # with 1, which is the runner itself in a container started without an init.
    if runner_pid is not None and os.getppid() != runner_pid:
        os._exit(1)


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 64 * 1024 * 1024  # freed memory kept at the top of a heap before any goes back to the kernel
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest: allocations below it come from the heaps, not from mmap


def steady_heap() -> bool:
    """Make glibc's malloc keep memory it has freed (True when it took; False elsewhere, e.g. musl or macOS).

    Some mechanisms allocate per message in C: zmq copies each message into a new zmq_msg on send and its I/O
    thread allocates one per message on receive, and posix_ipc, multiprocessing and SysV queues return a new
    bytes object per message. glibc hands the top of a heap back to the kernel whenever a free leaves more than
    M_TRIM_THRESHOLD (128 KiB by default) there, so with a few 64 KiB messages queued, the next ones fault every
    page in again. Measured with zmq-ipc sending 64 KiB messages one way: 16 minor faults per message and 0.57
    of the hand-written floor in about half the runs, none and 1.0 in the others, depending only on where the
    heap's top happened to lie in each worker. Setting the threshold fixes the mmap one too (glibc stops
    adjusting it once either is set), so that is raised to glibc's largest: a message below 32 MiB is never a
    fresh mapping either. The cost: a worker keeps up to 64 MiB of freed memory until it exits (peak RSS is
    unchanged: the memory was in use).
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)


def one_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception; an exhausted resource is named with its limit."""
    if isinstance(exc, OSError):
        from ..resources import explain

        exc_text = explain(exc)
    else:
        exc_text = str(exc)
    text = exc_text.strip().splitlines()[0] if exc_text.strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_transport(cfg: dict[str, Any]) -> Any:
    from ..transports import get_transport, load_transport

    ref = cfg.get("transport_ref")
    if ref:  # the class itself, by module: a worker imports its transport's module and nothing else
        return load_transport(ref)
    return get_transport(cfg["transport"])


def serve(ctrl: ControlChannel, *, pin: bool = True, watch_eof: bool = False) -> int:
    """Answer one runner over ``ctrl``; 0 after EXIT, 1 after reporting an ERROR.

    ``pin``: apply the CPUs in CONFIG (a thread of the runner's own process must not). ``watch_eof``: while
    the pattern runs, a closed or written-to control channel ends the process (``--stdio``).
    """
    from ..patterns import get_pattern
    from ..patterns.common import Context

    channel = None
    try:
        cfg: dict[str, Any] = ctrl.recv()
        if cfg.get("type") != "CONFIG":
            raise RuntimeError(f"expected CONFIG, got {cfg.get('type')}")
        if pin and cfg.get("cpus"):
            os.sched_setaffinity(0, cfg["cpus"])
        transport = _load_transport(cfg)
        pattern = get_pattern(cfg["pattern"])
        ctx = Context.from_config(cfg)
        # The address gains the workers' pids (known only after spawning) under "pids": {key: pid}.
        address = {**cfg["address"], "pids": cfg.get("pids", {})}
        # Nothing arrives between CONFIG and READY: under --stdio, EOF there (the runner or its ssh went away
        # while we wait in accept()) ends us too.
        opening = _EofWatchdog(ctrl) if watch_eof else None
        try:
            if cfg.get("bind"):  # on another host: make our own endpoint there (ipclab.engine.remote)
                own, shared = transport.bind_remote(address, cfg["role"], cfg["index"])
                address.update(own)
                ctrl.send({"type": "BOUND", "address": shared})
            channel = transport.connect(address, cfg["role"], cfg["index"])
        finally:
            if opening is not None:
                opening.stop()
        ctrl.send({"type": "READY"})
        start = ctrl.recv()
        if start.get("type") != "START":
            return 0  # the runner gave up on the trial before it started
        if cfg["role"] == "server":
            ctrl.send({"type": "STARTED"})  # the runner starts the clients only after this
        watchdog = _EofWatchdog(ctrl) if watch_eof else None
        try:
            raw = pattern.run(cfg["role"], cfg["index"], channel, ctx)
        finally:
            if watchdog is not None:
                watchdog.stop()
        if channel.foreign:  # traffic from outside our workers was refused: the cell says so
            raw["foreign"] = channel.foreign
        ctrl.send({"type": "RESULT", "raw": raw})
        try:
            ctrl.recv()  # EXIT, or EOF when the runner closes the channel
        except ControlClosed:
            pass
        return 0
    except Exception as exc:  # every failure goes back as one line + the full traceback
        try:
            ctrl.send({"type": "ERROR", "message": one_line(exc), "traceback": traceback.format_exc()})
        except OSError:
            pass
        return 1
    finally:
        if channel is not None:
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - closing a broken endpoint must not mask the real error
                pass


class _EofWatchdog:
    """While the pattern runs nothing may arrive on the control channel: anything (EXIT) or EOF ends us.

    The runner sends nothing between START and RESULT unless it has given the trial up; a remote runner that
    went away shows up as EOF. The thread waits in select() (no GIL held, no cost to the measured loop) on the
    control fd and a wake-up pipe that ``stop()`` writes to.
    """

    def __init__(self, ctrl: ControlChannel) -> None:
        self._fd = ctrl.fileno()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._watch, name="ipclab-eof-watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        ready, _, _ = select.select([self._fd, self._wake_r], [], [])
        if self._wake_r not in ready:
            os._exit(1)  # the runner gave up or went away: nothing of this trial is wanted any more

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _stdio_channel() -> ControlChannel:
    """stdin/stdout as the control channel; fd 0 becomes /dev/null and fd 1 a copy of stderr."""
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # a stray print() must never corrupt the protocol
    return ControlChannel(open(in_fd, "rb", buffering=0), open(out_fd, "wb", buffering=0))


def main(argv: list[str] | None = None) -> int:
    import socket

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m ipclab.worker CONTROL_FD [RUNNER_PID] | --stdio [RUNNER_PID]", file=sys.stderr)
        return 2
    stdio = args[0] == "--stdio"
    if stdio and len(args) == 1:
        runner_pid = None  # started through a command on another host: stdin EOF is how the runner's end shows
    else:
        runner_pid = int(args[1]) if len(args) > 1 else None
        _die_with_parent(runner_pid)
    steady_heap()
    # The runner owns Ctrl-C: it stops the workers itself and cleans up in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stdio:
        ctrl = _stdio_channel()
    else:
        sock = socket.socket(fileno=int(args[0]))
        ctrl = ControlChannel(sock, sock)
    try:
        return serve(ctrl, watch_eof=stdio)
    finally:
        ctrl.close()
