"""zmq-ipc and zmq-tcp: ZeroMQ (pyzmq) over ipc:// (a Unix socket file in the private 0700 directory, mode
0600) and over tcp://127.0.0.1 (a kernel-chosen port, never a fixed one).

Socket types, chosen by the traffic shape:
- duplex: PAIR <-> PAIR. Exactly one peer, either side may send at any time, and no envelope frame (REQ/REP
  would add an empty delimiter frame to every message and enforce the lock-step the workload already keeps).
- one-way: PUSH (clients, zmq_connect) -> PULL (server, zmq_bind). PULL fair-queues between several PUSH peers, so
  several writers are natural (multi_writer).

The parent creates the listening socket (bound, mode 0600 for ipc, listening) exactly like the unix and tcp
transports (sockets.py), and the server hands it to libzmq with ZMQ_USE_FD before bind(): the port is known
before any worker starts, clients may reach it at once, and no port is ever guessed. libzmq owns and closes the
server's inherited copy; the parent's closes once the workers are spawned.

Across hosts (ipclab.engine.remote), zmq-tcp's server listens on its own host's address (never a wildcard):
made by its worker there (``bind_remote``, which reports the endpoint) or, with --reverse, by the parent here.

Copies: ``send`` copies the message once into a zmq_msg (copy=True): the patterns rewrite their buffer for the
next message while the I/O thread may still be sending the previous one. ``zero_copy_send(size)`` offers a
stream producer the other way for messages of ZERO_COPY_MIN (512 KiB) and up, where the copy (a malloc and a
memcpy of the whole message in the producer, a free in the I/O thread) is what the producer spends its time on:
a send of the caller's buffer by reference (copy=False) that returns a MessageTracker, done once libzmq has
released the buffer. The caller must not touch the buffer before then: streamloops keeps a pool of buffers and
waits on a buffer's tracker before rewriting it. It is not free: each message costs a pyzmq Frame and tracker,
and pyzmq's garbage-collector thread (a third thread in the producer, woken for every message) releases it.
Measured on one CPU (zmq-ipc stream, ipclab / floor, medians of 4-5 alternated pairs, workers with
steady_heap): 64 KiB 0.73 by reference against 0.99 copied, 256 KiB 1.01 and 1.01, 512 KiB 1.10-1.12 and
1.03-1.08, 1 MiB 1.17 and 1.03. Below 512 KiB the memcpy is cheaper than the collector's wake-ups.
``recv_into`` (pyzmq >= 26.4) receives straight into the caller's buffer; the hot loops call it directly
(raw_io), a message longer than the buffer is an error (finish_recv).

High-water marks: the default (1000 messages each side) would let 1 MiB messages queue up to 2 GB; the HWM
is set so that about HWM_BYTES are in flight per side (never below 4 or above 1000 messages).

Linger 0 at close: safe here because a worker closes only after EXIT, which the runner sends once every worker
has reported RESULT, i.e. after the consumer has received everything; a linger would only delay the exit of a
worker whose peer died.
"""

from __future__ import annotations

import socket
from typing import Any

from .base import BoundChannel, Channel, MessageTransport, optional_import
from .channels import no_count
from .sockets import BACKLOG, HOST, bound_socket, loopback_socket, remote_listener, unix_socket

HWM_BYTES = 16 * 1024 * 1024
ZERO_COPY_MIN = 512 * 1024  # messages from this size up may be sent by reference (see the module docstring)


def _hwm(size: int) -> int:
    return max(4, min(1000, HWM_BYTES // max(size, 1)))


class _ZmqTransport(MessageTransport):
    """Shared by zmq-ipc and zmq-tcp: they differ only in the listening socket the parent creates."""

    @classmethod
    def unavailable_reason(cls) -> str | None:
        zmq = optional_import("zmq")
        if zmq is None:
            return "pyzmq not installed"
        if not hasattr(zmq, "USE_FD"):
            return f"libzmq {zmq.zmq_version()} lacks ZMQ_USE_FD (needs libzmq >= 4.2)"
        if not hasattr(zmq.Socket, "recv_into"):
            return f"pyzmq {zmq.__version__} lacks Socket.recv_into (needs pyzmq >= 26.4: pip install -U pyzmq)"
        return None

    def _listener(self) -> tuple[socket.socket, str]:
        """A bound socket registered in the ledger (sockets.py), and its zmq endpoint."""
        raise NotImplementedError

    def setup(self) -> dict[str, Any]:
        listener, endpoint = self._listener()
        listener.listen(max(BACKLOG, self.spec.clients))
        self.pass_fds("server", listener)
        return {"endpoint": endpoint, "listen_fd": listener.fileno(), "one_way": not self.spec.shape.duplex,
                "hwm": _hwm(self.spec.size)}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        import zmq

        ctx = zmq.Context(io_threads=1)
        try:
            if address["one_way"]:
                kind = zmq.PULL if role == "server" else zmq.PUSH
            else:
                kind = zmq.PAIR
            sock = ctx.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, address["hwm"])
            sock.setsockopt(zmq.RCVHWM, address["hwm"])
            if role == "server":
                sock.setsockopt(zmq.USE_FD, address["listen_fd"])
                sock.bind(address["endpoint"])
            else:
                sock.connect(address["endpoint"])
        except BaseException:
            ctx.destroy(linger=0)
            raise
        return ZmqChannel(ctx, sock)


class ZmqIpcTransport(_ZmqTransport):
    name = "zmq-ipc"
    summary = "ZeroMQ over ipc:// (PAIR for two-way, PUSH/PULL for one-way), pyzmq"
    order = 120

    def _listener(self) -> tuple[socket.socket, str]:
        sock = unix_socket(self.ledger, self.workdir, ".zsock")
        return sock, f"ipc://{sock.getsockname()}"


class ZmqTcpTransport(_ZmqTransport):
    name = "zmq-tcp"
    summary = "ZeroMQ over tcp://127.0.0.1, kernel-chosen port (PAIR two-way, PUSH/PULL one-way), pyzmq"
    order = 130
    shared_kernel = False  # tcp:// reaches other hosts
    bind_host: str | None = None  # across hosts: this host's address the parent's listener binds

    def _listener(self) -> tuple[socket.socket, str]:
        if self.bind_host is not None:
            sock = bound_socket(self.ledger, self.bind_host)
            return sock, f"tcp://{self.bind_host}:{sock.getsockname()[1]}"
        sock = loopback_socket(self.ledger)
        return sock, f"tcp://{HOST}:{sock.getsockname()[1]}"

    # -- across hosts (ipclab.engine.remote): the server binds its own host's address, as tcp does -------------
    def setup_remote(self, remote_roles: frozenset[str], here: str, there: str) -> dict[str, Any]:
        if "server" not in remote_roles:
            self.bind_host = here
            return self.setup()
        return {"endpoint": None, "bind_host": there, "listen_fd": None, "one_way": not self.spec.shape.duplex,
                "hwm": _hwm(self.spec.size), "clients": self.spec.clients}

    @classmethod
    def bind_remote(cls, address: dict[str, Any], role: str, index: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
        if role != "server":
            return {}, {}
        host = address["bind_host"]
        fd, port = remote_listener(host, address.get("clients", 1))
        endpoint = f"tcp://{host}:{port}"
        return {"listen_fd": fd, "endpoint": endpoint}, {"endpoint": endpoint}


def _finish_recv(buf: memoryview, n: int) -> None:
    """A zmq message is whole: a length other than the buffer's is a wrong message, never a partial one."""
    raise ValueError(f"a {n}-byte message arrived where {len(buf)} bytes were due")


class ZmqChannel(BoundChannel):
    """One zmq socket and its private context. libzmq sets TCP_NODELAY on tcp:// connections itself."""

    has_raw_io = True

    def __init__(self, ctx: Any, sock: Any) -> None:
        import zmq

        self.ctx, self.sock = ctx, sock
        self.send = sock.send  # type: ignore[method-assign]  # copy=True: one memcpy into a zmq_msg
        zrecv_into = sock.recv_into
        again = zmq.Again

        def recv_into(buf: memoryview) -> int:
            try:
                n = zrecv_into(buf)
            except again:  # RCVTIMEO expired (set_timeout)
                raise TimeoutError("no message before the receive timeout") from None
            if n > len(buf):
                raise ValueError(f"a {n}-byte message was truncated to the {len(buf)}-byte buffer")
            return n

        self.recv_into = recv_into  # type: ignore[method-assign]
        # The hot loops' C calls: send returns None (whole message or an exception), recv_into the length.
        self.raw_io = (sock.send, zrecv_into, no_count, _finish_recv)

    def zero_copy_send(self, size: int) -> Any:
        """A send of ``size``-byte messages by reference that returns a MessageTracker (see the module
        docstring), or None below ZERO_COPY_MIN (or pyzmq's copy threshold, below which it copies anyway)."""
        threshold = self.sock.copy_threshold
        if not threshold or size < max(threshold, ZERO_COPY_MIN):
            return None
        send = self.sock.send

        def send_tracked(msg: memoryview) -> Any:
            return send(msg, copy=False, track=True)

        return send_tracked

    waits_readable = True

    def wait_readable(self, timeout_s: float) -> bool:
        """zmq's notification fd, waited on with select (microseconds; zmq_poll counts whole milliseconds).

        The fd is edge-triggered: it signals that ZMQ_EVENTS may have changed, not that a message is there, so
        ZMQ_EVENTS is read before and after the wait (reading it also re-arms the fd). A wake-up without a message
        returns False early, which callers allow for."""
        import select

        import zmq

        sock, events, pollin = self.sock, zmq.EVENTS, zmq.POLLIN
        fds, wait = [sock.getsockopt(zmq.FD)], select.select

        def wait_readable(timeout_s: float) -> bool:
            if sock.getsockopt(events) & pollin:
                return True
            if timeout_s > 0:
                wait(fds, (), (), timeout_s)
                return bool(sock.getsockopt(events) & pollin)
            return False

        self.wait_readable = wait_readable  # type: ignore[method-assign]
        return wait_readable(timeout_s)

    def set_timeout(self, seconds: float | None) -> None:
        import zmq

        self.sock.setsockopt(zmq.RCVTIMEO, -1 if seconds is None else max(1, int(seconds * 1000)))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None
        if self.ctx is not None:
            self.ctx.term()
            self.ctx = None
