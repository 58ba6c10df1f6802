"""mp-pipe and mp-queue: Python's multiprocessing conveniences, rebuilt from inherited fds in fresh workers.

The workers are fresh interpreters (``python -m ipclab.worker``), not multiprocessing children, and the control
channel carries JSON only, so nothing is pickled to them. Instead the parent creates the OS objects and the
workers rebuild the Python objects around the inherited file descriptors:

mp-pipe: ``multiprocessing.Pipe()`` (duplex: a socketpair) made in the parent; each worker wraps its end in
``multiprocessing.connection.Connection(fd)``, exactly what a spawned child gets when a Connection is pickled to
it. Messages go through ``send_bytes`` (a 4-byte length header, then the payload) and ``recv_bytes_into`` (into
the caller's buffer; the library still builds an intermediate buffer per message: part of what it costs).

mp-queue: ``multiprocessing.Queue`` is a pipe plus a feeder thread plus pickling plus locks. The parent makes
the pipe (one per direction: ``os.pipe()``, what ``Pipe(duplex=False)`` uses) and every worker gets both ends,
as every real Queue user does. Each worker then rebuilds the Queue through its own unpickling entry point,
``Queue.__setstate__``, with Connections on the inherited fds: ``put`` appends to the buffer, the feeder thread
pickles (``_ForkingPickler.dumps``) and ``send_bytes`` it under the write lock, ``get`` takes the read lock,
``recv_bytes`` and unpickles. What differs from a Queue shared by a multiprocessing parent:
- the locks and the size semaphore are local to each process (fresh SemLocks), not one shared object. With one
  producer and one consumer they are uncontended either way, so the cost per message is the same; but several
  producers would not exclude each other, which is why mp-queue is not multi_writer.
- the size semaphore: a default (unbounded) Queue never blocks on it; here the writer's counts down from
  SEM_VALUE_MAX and the reader's counts up from 0, so neither ever blocks either.
Unpickling happens only on this private pipe between our own two workers (never on a socket, never on data from
outside). ``send`` must hand the Queue an immutable copy (``bytes(msg)``): the feeder pickles it later, while the
workload's loop already rewrites its buffer for the next message.
"""

from __future__ import annotations

import os
from typing import Any

from .base import BoundChannel, Channel, Transport


class _Multiprocessing(Transport):
    """multiprocessing frames every message (a length header): boundaries are kept, empty messages carried."""

    boundaries = True
    empty_ok = True


class MpPipeTransport(_Multiprocessing):
    name = "mp-pipe"
    summary = "multiprocessing.Pipe (socketpair), Connection.send_bytes / recv_bytes_into"
    order = 140

    def setup(self) -> dict[str, Any]:
        from multiprocessing import Pipe

        address: dict[str, Any] = {}
        for role, end in zip(("server", "client"), Pipe(duplex=True)):
            with end:  # the ledger owns a copy of the fd; the Connection closes its own now
                owned = self.ledger.fd(os.dup(end.fileno()))
            self.pass_fds(role, owned)
            address[role] = owned.fileno()
        return address

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        from multiprocessing.connection import Connection

        return MpPipeChannel(Connection(address[role]))


class MpPipeChannel(BoundChannel):
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.send = conn.send_bytes  # type: ignore[method-assign]
        self.recv_into = conn.recv_bytes_into  # type: ignore[method-assign]  # EOFError when the peer closed

    def set_timeout(self, seconds: float | None) -> None:
        conn, recv = self.conn, self.conn.recv_bytes_into
        if seconds is None:
            self.recv_into = recv  # type: ignore[method-assign]
            return

        def recv_into(buf: memoryview) -> int:
            if not conn.poll(seconds):
                raise TimeoutError("no message before the receive timeout")
            return recv(buf)

        self.recv_into = recv_into  # type: ignore[method-assign]

    waits_readable = True

    def wait_readable(self, timeout_s: float) -> bool:
        """The connection's own fd, polled (microsecond timeouts through select, see channels.fd_waiter)."""
        from .channels import fd_waiter

        self.wait_readable = fd_waiter(self.conn.fileno())  # type: ignore[method-assign,assignment]
        return self.wait_readable(timeout_s)

    def close(self) -> None:
        self.conn.close()


class MpQueueTransport(_Multiprocessing):
    name = "mp-queue"
    summary = "multiprocessing.Queue (pickling, feeder thread, pipe) rebuilt on inherited pipes"
    order = 150

    def setup(self) -> dict[str, Any]:
        address: dict[str, Any] = {"creator_pid": os.getpid()}
        every: list[Any] = []
        for direction in ("c2s", "s2c") if self.spec.shape.duplex else ("c2s",):
            ends = self.ledger.pipe()
            every += ends
            address[direction] = [end.fileno() for end in ends]
        self.pass_fds("server", *every)  # both ends to both sides, as for a real Queue
        self.pass_fds("client", *every)
        return address

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        inbox = "c2s" if role == "server" else "s2c"
        outbox = "s2c" if role == "server" else "c2s"
        incoming = _queue(address[inbox], address["creator_pid"], writer=False) if inbox in address else None
        outgoing = _queue(address[outbox], address["creator_pid"], writer=True) if outbox in address else None
        return MpQueueChannel(incoming, outgoing)


def _queue(fds: list[int], creator_pid: int, writer: bool) -> Any:
    """A multiprocessing.Queue over an inherited pipe, built the way unpickling builds one (see the docstring)."""
    import multiprocessing
    from multiprocessing.connection import Connection
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import SEM_VALUE_MAX  # type: ignore[attr-defined]

    # The fork context's SemLocks are unlinked at creation: nothing named survives, no resource tracker starts.
    ctx = multiprocessing.get_context("fork")
    reader = Connection(fds[0], writable=False)
    writer_conn = Connection(fds[1], readable=False)
    sem = ctx.Semaphore(SEM_VALUE_MAX if writer else 0)
    queue = Queue.__new__(Queue)
    state = (False, SEM_VALUE_MAX, reader, writer_conn, ctx.Lock(), ctx.Lock(), sem, creator_pid)
    queue.__setstate__(state)  # type: ignore[arg-type]
    # closed by MpQueueChannel.close if no feeder thread does it
    queue._ipclab_conns = (reader, writer_conn)  # type: ignore[attr-defined]
    return queue


class MpQueueChannel(BoundChannel):
    def __init__(self, incoming: Any, outgoing: Any) -> None:
        self.incoming, self.outgoing = incoming, outgoing
        if outgoing is not None:
            put = outgoing.put

            def send(msg: memoryview) -> None:
                put(bytes(msg))  # an immutable copy: the feeder thread pickles it after we return

            self.send = send  # type: ignore[method-assign]
        if incoming is not None:
            get = incoming.get

            def recv_into(buf: memoryview) -> int:
                data = get()  # recv_bytes + unpickle: a new bytes object per message
                n = len(data)
                buf[:n] = data
                return n

            self.recv_into = recv_into  # type: ignore[method-assign]

    def set_timeout(self, seconds: float | None) -> None:
        if self.incoming is None:
            return
        import queue as queue_module

        get = self.incoming.get

        def recv_into(buf: memoryview) -> int:
            try:
                data = get(True, seconds)
            except queue_module.Empty:
                raise TimeoutError("no message before the receive timeout") from None
            n = len(data)
            buf[:n] = data
            return n

        self.recv_into = recv_into  # type: ignore[method-assign]

    def close(self) -> None:
        for q in (self.outgoing, self.incoming):
            if q is None:
                continue
            # By protocol the consumer already has every message when a worker closes (EXIT comes after all
            # RESULTs), so the feeder need not be joined: a join could hang on a full pipe to a dead peer.
            q.cancel_join_thread()
            started = q._thread is not None  # the feeder closes both Connections when it gets the sentinel
            q.close()
            if not started:
                for conn in q._ipclab_conns:
                    conn.close()
        self.incoming = self.outgoing = None
