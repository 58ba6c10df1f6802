"""posix-mq: POSIX message queues (mq_open/mq_send/mq_receive through posix_ipc), mode 0600.

Names are random and say their owner: "/ipclab-PID-START-<hex>.c2s" (client -> server) and, for a duplex
workload, ".s2c" (see ledger.owned_name). The parent creates them in setup() (each recorded in the ledger first,
so ``ipclab clean`` can remove what a SIGKILLed runner leaves) and the ledger unlinks them in teardown(); the
workers open them by name. A queue keeps message boundaries and carries empty messages. Several writers may send
into one queue.

Limits are this kernel's, read from /proc: a message holds at most fs.mqueue.msgsize_max bytes and a queue at most
fs.mqueue.msg_max messages (the depth used here). Larger sizes are n/a with the sysctl that raises them, never
clamped. The user's RLIMIT_MSGQUEUE (bytes of all queues together) is checked too, for the two queues of a
duplex workload.

Allocation: posix_ipc has no receive-into-buffer call; ``receive()`` returns a new bytes object (and a tuple
with the priority) per message, which recv_into copies into the caller's buffer. A ctypes mq_receive into a
preallocated buffer was measured slower (ctypes argument conversion costs more than the small allocation).
"""

from __future__ import annotations

import os
import resource
from functools import partial
from typing import Any

from ..config import format_size
from .base import BoundChannel, Channel, MessageTransport, optional_import
from .ledger import owned_name
from .limits import read_int, sysctl_reason

MQ_DIR = "/proc/sys/fs/mqueue"
MSG_OVERHEAD = 128  # bytes of kernel bookkeeping per message charged to RLIMIT_MSGQUEUE (msg_msg + tree node)


def kernel_limits() -> dict[str, int | None]:
    """msgsize_max, msg_max (from /proc/sys/fs/mqueue) and RLIMIT_MSGQUEUE (None: unknown / unlimited)."""
    rlim = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[0] if hasattr(resource, "RLIMIT_MSGQUEUE") else -1
    return {
        "msgsize_max": read_int(os.path.join(MQ_DIR, "msgsize_max")),
        "msg_max": read_int(os.path.join(MQ_DIR, "msg_max")),
        "rlimit_msgqueue": None if rlim == resource.RLIM_INFINITY or rlim < 0 else rlim,
    }


def _depth() -> int:
    return kernel_limits()["msg_max"] or 10  # 10: the kernel's default when /proc cannot be read


def _rlimit_size() -> int | None:
    """Largest message two queues of depth msg_max can hold within RLIMIT_MSGQUEUE."""
    rlim = kernel_limits()["rlimit_msgqueue"]
    if rlim is None:
        return None
    return max(0, rlim // (2 * _depth()) - MSG_OVERHEAD)


class PosixMqTransport(MessageTransport):
    name = "posix-mq"
    summary = "POSIX message queues (posix_ipc), one per direction, depth fs.mqueue.msg_max"
    order = 100

    @classmethod
    def unavailable_reason(cls) -> str | None:
        posix_ipc = optional_import("posix_ipc")
        if posix_ipc is None:
            return "posix_ipc not installed"
        if not posix_ipc.MESSAGE_QUEUES_SUPPORTED:
            return "POSIX message queues are not supported by this system"
        return None

    @classmethod
    def limit(cls) -> int | None:
        msgsize = kernel_limits()["msgsize_max"]
        rl = _rlimit_size()
        known = [v for v in (msgsize, rl) if v is not None]
        return min(known) if known else None

    @classmethod
    def limit_reason(cls, size: int) -> str:
        lim = kernel_limits()
        msgsize, rl = lim["msgsize_max"], _rlimit_size()
        if rl is not None and (msgsize is None or rl < msgsize):
            return (f"{format_size(size)} exceeds {rl} bytes: two queues of {_depth()} messages must fit in "
                    f"RLIMIT_MSGQUEUE ({lim['rlimit_msgqueue']} B); raise it with ulimit -q")
        return sysctl_reason(size, "POSIX mq message limit", msgsize, "fs.mqueue.msgsize_max")

    def setup(self) -> dict[str, Any]:
        tag = owned_name()  # its owner's pid and start time: ipclab clean leaves the queues of a live run alone
        depth = _depth()
        # mq_open refuses a zero message size; an empty message still fits in a 1-byte queue.
        msgsize = max(1, self.spec.size)
        address: dict[str, Any] = {}
        for direction in ("c2s", "s2c") if self.spec.shape.duplex else ("c2s",):
            name = address[direction] = f"/{tag}.{direction}"
            create = partial(_create_queue, name, depth, msgsize)
            self.ledger.os_object("posix-mq", name, create, partial(_unlink_queue, name))
        return address

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        import posix_ipc  # type: ignore[import-not-found,unused-ignore]

        c2s = posix_ipc.MessageQueue(address["c2s"])
        s2c = posix_ipc.MessageQueue(address["s2c"]) if "s2c" in address else None
        inbox, outbox = (c2s, s2c) if role == "server" else (s2c, c2s)
        if inbox is not None and outbox is not None:
            return PosixMqDuplexChannel(inbox, outbox)
        return PosixMqChannel(inbox, outbox)


def _create_queue(name: str, depth: int, msgsize: int) -> str:
    import posix_ipc

    queue = posix_ipc.MessageQueue(name, posix_ipc.O_CREX, mode=0o600, max_messages=depth, max_message_size=msgsize)
    queue.close()  # the name keeps the queue alive until the ledger unlinks it
    return name


def _unlink_queue(name: str, created: object = None) -> None:
    import posix_ipc

    try:
        posix_ipc.unlink_message_queue(name)
    except posix_ipc.ExistentialError:
        pass


class PosixMqChannel(BoundChannel):
    """Receive from one queue, send to the other (either may be absent in a one-way workload)."""

    def __init__(self, inbox: Any, outbox: Any) -> None:
        self.inbox, self.outbox = inbox, outbox
        if outbox is not None:
            self.send = outbox.send  # type: ignore[method-assign]  # mq_send straight from the buffer
        if inbox is not None:
            receive = inbox.receive

            def recv_into(buf: memoryview) -> int:
                data = receive()[0]  # allocates: a bytes object and a (bytes, priority) tuple
                try:
                    buf[:] = data  # the usual case, a message of the buffer's size: no length or bounds to compute
                except ValueError:  # shorter (or longer: raises again) than the buffer
                    n = len(data)
                    buf[:n] = data
                    return n
                return len(data)

            self.recv_into = recv_into  # type: ignore[method-assign]

    waits_readable = True

    def wait_readable(self, timeout_s: float) -> bool:
        """A Linux message queue descriptor is pollable: readable while the inbox holds a message."""
        if self.inbox is None:
            raise OSError("this endpoint cannot receive")
        from .channels import fd_waiter

        self.wait_readable = fd_waiter(self.inbox.mqd)  # type: ignore[method-assign,assignment]
        return self.wait_readable(timeout_s)

    def in_flight_limit(self) -> int:
        """Messages the inbox holds before a sender blocks (its depth, fs.mqueue.msg_max)."""
        return int(self.inbox.max_messages) if self.inbox is not None else 1

    def set_timeout(self, seconds: float | None) -> None:
        """mq_timedreceive: TimeoutError after ``seconds`` without a message (None: block again)."""
        if self.inbox is None:
            return
        import posix_ipc

        receive = self.inbox.receive
        if seconds is None:
            self.recv_into = PosixMqChannel(self.inbox, None).recv_into  # type: ignore[method-assign]
            return

        def recv_into(buf: memoryview) -> int:
            try:
                data = receive(seconds)[0]
            except posix_ipc.BusyError:
                raise TimeoutError("no message before the receive timeout") from None
            n = len(data)
            buf[:n] = data
            return n

        self.recv_into = recv_into  # type: ignore[method-assign]

    def close(self) -> None:
        for queue in (self.inbox, self.outbox):
            if queue is not None:
                try:
                    queue.close()
                except Exception:  # noqa: BLE001 - already closed
                    pass
        self.inbox = self.outbox = None


class PosixMqDuplexChannel(PosixMqChannel):
    """Both queues: a send and the receive that answers it are one call (Channel.exchange), one Python frame
    per round trip and side fewer in the ping-pong and reqrep loops (64 B ping-pong: ~3 % of a round trip).
    Queues need nothing of exchange's contract; it is only the two calls fused."""

    has_exchange = True

    def __init__(self, inbox: Any, outbox: Any) -> None:
        super().__init__(inbox, outbox)
        send, receive = outbox.send, inbox.receive

        def exchange(msg: memoryview, buf: memoryview) -> int:
            send(msg)
            data = receive()[0]
            try:
                buf[:] = data  # a message of the buffer's size: the usual case
            except ValueError:
                n = len(data)
                buf[:n] = data  # shorter (or longer: raises again) than the buffer
                return n
            return len(data)

        self.exchange = exchange  # type: ignore[method-assign]

    def set_timeout(self, seconds: float | None) -> None:
        """As PosixMqChannel's; exchange then goes through send and the timed recv_into (Channel.exchange)."""
        super().set_timeout(seconds)
        self.__dict__.pop("exchange", None)
