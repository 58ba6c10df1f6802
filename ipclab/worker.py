"""Worker entry point: ``python -m ipclab.worker CONTROL_FD [RUNNER_PID]``.

Protocol on the control socket (never on the measured channel):
    runner -> CONFIG   worker connects its endpoint, prepares buffers -> READY
    runner -> START    worker runs the pattern (servers first say STARTED; clients get START only after
                       every server did)                              -> RESULT | ERROR
    runner -> EXIT     worker closes its endpoint and exits
The worker stays alive after RESULT until EXIT so that a producer never tears its endpoint down while the
consumer is still draining it. It dies with the runner (PR_SET_PDEATHSIG), so a SIGKILLed runner leaves no
orphan spinning on a channel.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback
from typing import Any


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


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        from .resources import explain

        exc_text = explain(exc)  # an exhausted resource is named with its limit
    else:
        exc_text = str(exc)
    text = exc_text.strip().splitlines()[0] if exc_text.strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def serve(ctrl: socket.socket) -> int:
    from . import control
    from .patterns import get_pattern
    from .patterns.common import Context
    from .transports import get_transport, load_transport

    reader = control.Reader(ctrl)
    channel = None
    try:
        cfg: dict[str, Any] = reader.recv()
        if cfg.get("type") != "CONFIG":
            raise RuntimeError(f"expected CONFIG, got {cfg.get('type')}")
        if cfg.get("cpus"):
            os.sched_setaffinity(0, cfg["cpus"])
        # The ref imports this transport's module alone; looking the name up would scan the registry.
        ref = cfg.get("transport_ref")
        transport = load_transport(ref) if ref else get_transport(cfg["transport"])
        pattern = get_pattern(cfg["pattern"])
        ctx = Context.from_config(cfg)
        # The address gains the workers' pids (known only after spawning) under "pids": {key: pid}.
        address = {**cfg["address"], "pids": cfg.get("pids", {})}
        channel = transport.connect(address, cfg["role"], cfg["index"])
        control.send(ctrl, {"type": "READY"})
        start = reader.recv()
        if start.get("type") != "START":
            return 0  # the runner gave up on the trial before it started
        if cfg["role"] == "server":
            control.send(ctrl, {"type": "STARTED"})  # the runner starts the clients only after this
        raw = pattern.run(cfg["role"], cfg["index"], channel, ctx)
        control.send(ctrl, {"type": "RESULT", "raw": raw})
        try:
            reader.recv()  # EXIT, or EOF when the runner closes the channel
        except EOFError:
            pass
        return 0
    except Exception as exc:  # every failure goes back as one line + the full traceback
        try:
            control.send(ctrl, {"type": "ERROR", "message": _one_line(exc), "traceback": traceback.format_exc()})
        except OSError:
            pass
        return 1
    finally:
        if channel is not None:
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - closing a broken endpoint must not mask the real error
                pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _die_with_parent(int(args[1]) if len(args) > 1 else None)
    # The runner owns Ctrl-C: it stops the workers itself and cleans up in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl = socket.socket(fileno=int(args[0]))
    try:
        return serve(ctrl)
    finally:
        ctrl.close()


if __name__ == "__main__":
    sys.exit(main())
