"""sysv-mq: one System V message queue (msgget/msgsnd/msgrcv through sysv_ipc), mode 0600.

The classic SysV idiom: one queue, one message type per direction (1: client -> server, 2: server -> client),
so a duplex workload needs a single kernel object. The key is random with a recognisable prefix (0x1bc00000 |
20 random bits); the parent records it in the ledger before creating the queue with IPC_CREAT|IPC_EXCL (another
key is drawn if it is taken) and the ledger removes the queue in teardown(). Several writers may send into the
queue; boundaries are kept and empty messages are valid.

Limits are this kernel's, read from /proc: one message holds at most kernel.msgmax bytes, and a queue at most
kernel.msgmnb bytes in total (a message larger than msgmnb could never be queued: msgsnd would wait forever).
Larger sizes are n/a with the sysctl that raises them, never clamped.

Allocation: sysv_ipc has no receive-into-buffer call; ``receive()`` returns a new bytes object (and a
(bytes, type) tuple) per message, which recv_into copies into the caller's buffer.
"""

from __future__ import annotations

import os
import secrets
from functools import partial
from typing import Any

from .base import BoundChannel, Channel, MessageTransport, optional_import
from .limits import read_int, sysctl_reason

KEY_PREFIX = 0x1BC << 20  # "ipc lab": keys 0x1bc00000..0x1bcfffff
KEY_BITS = 20
KEY_ATTEMPTS = 16
TYPE_C2S, TYPE_S2C = 1, 2


def kernel_limits() -> dict[str, int | None]:
    """kernel.msgmax (bytes per message) and kernel.msgmnb (bytes per queue), None if unreadable."""
    return {"msgmax": read_int("/proc/sys/kernel/msgmax"), "msgmnb": read_int("/proc/sys/kernel/msgmnb")}


class SysvMqTransport(MessageTransport):
    name = "sysv-mq"
    summary = "one System V message queue (sysv_ipc), one message type per direction"
    order = 110

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if optional_import("sysv_ipc") is None:
            return "sysv_ipc not installed"
        if not os.path.exists("/proc/sysvipc/msg") and os.path.exists("/proc"):
            return "System V message queues are not available in this kernel"
        return None

    @classmethod
    def limit(cls) -> int | None:
        known = [v for v in kernel_limits().values() if v is not None]
        return min(known) if known else None

    @classmethod
    def limit_reason(cls, size: int) -> str:
        lim = kernel_limits()
        msgmax, msgmnb = lim["msgmax"], lim["msgmnb"]
        if msgmnb is not None and (msgmax is None or msgmnb < msgmax):
            return sysctl_reason(size, "SysV queue capacity", msgmnb, "kernel.msgmnb")
        return sysctl_reason(size, "SysV message limit", msgmax, "kernel.msgmax")

    def setup(self) -> dict[str, Any]:
        import sysv_ipc  # type: ignore[import-not-found,unused-ignore]

        # sysv_ipc checks sizes itself (default 2048) and sizes its receive buffer from this.
        msgsize = max(1, self.spec.size)
        for _ in range(KEY_ATTEMPTS):
            key = KEY_PREFIX | secrets.randbits(KEY_BITS)
            try:
                create = partial(sysv_ipc.MessageQueue, key, sysv_ipc.IPC_CREX, mode=0o600, max_message_size=msgsize)
                self.ledger.os_object("sysv-mq", key, create, _remove_queue)
            except sysv_ipc.ExistentialError:
                continue  # someone else's queue has this key: draw another (it is never removed: not ours)
            return {"key": key, "msgsize": msgsize}
        raise OSError(f"no free System V key among {KEY_ATTEMPTS} random ones with prefix {KEY_PREFIX:#x}")

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        import sysv_ipc

        queue = sysv_ipc.MessageQueue(address["key"], max_message_size=address["msgsize"])
        if role == "server":
            return SysvMqChannel(queue, send_type=TYPE_S2C, recv_type=TYPE_C2S)
        return SysvMqChannel(queue, send_type=TYPE_C2S, recv_type=TYPE_S2C)


def _remove_queue(queue: Any) -> None:
    import sysv_ipc

    try:
        sysv_ipc.remove_message_queue(queue.id)
    except sysv_ipc.ExistentialError:
        pass


class SysvMqChannel(BoundChannel):
    """Send messages of one type and receive messages of the other, on one shared queue."""

    def __init__(self, queue: Any, send_type: int, recv_type: int) -> None:
        self.queue = queue
        qsend, qreceive = queue.send, queue.receive

        def send(msg: memoryview) -> None:
            qsend(msg, True, send_type)  # msgsnd copies straight from the buffer (plus the type word)

        def recv_into(buf: memoryview) -> int:
            data = qreceive(True, recv_type)[0]  # allocates: a bytes object and a (bytes, type) tuple
            n = len(data)
            buf[:n] = data
            return n

        self.send = send  # type: ignore[method-assign]
        self.recv_into = recv_into  # type: ignore[method-assign]

    def close(self) -> None:
        self.queue = None  # a SysV queue has no per-process descriptor: nothing to close
