"""The event loop shared by the classic servers: one thread, one selector, non-blocking sockets.

Many clients at once, none able to hold the others up:
- every socket is non-blocking and the loop only reads or writes what the kernel takes right now;
- each client has a bounded output buffer (BUFFER_LIMIT): when a client does not read its replies, the server
  stops reading from it (backpressure) instead of buffering without end, so its memory stays bounded;
- a client that makes no progress (nothing read from it, nothing written to it) for --idle-timeout seconds is
  dropped, which is how a stalled client (connects and sends nothing, or never reads) ends; so is one whose
  replies wait for --idle-timeout without a byte taken, however much it keeps sending, and (for a one-request
  service: file) one whose request is not whole --idle-timeout after the accept, however it trickles in;
- at most --max-clients connections: the next one gets the service's "busy" reply and is closed (a client
  never takes a silent end of stream for an answer);
- a finished connection is closed gracefully ("lingering close"): the server shuts its sending side, discards what
  the client still sends until the client closes (or LINGER seconds pass), so a request still in flight cannot
  turn the close into a reset that destroys the reply before the client has read it.

Files are sent with sendfile(2) in bounded chunks straight from the page cache, never read whole into memory.
A signal never interrupts the loop's bookkeeping: the handler calls ``request_stop``, which sets a flag and wakes
the selector through a socketpair; the loop raises ``Stop`` at the top of its next turn, between events.
``close()`` closes every socket and removes the Unix socket file (only if it is still the one this server
created).
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from .conn import Conn, ServerConfig, Service, Stop

__all__ = ["Conn", "DATAGRAM_MAX", "Server", "ServerConfig", "Service", "Stop"]

BUFFER_LIMIT = 256 * 1024  # pending output per client before the server stops reading from it
READ_CHUNK = 64 * 1024
FILE_CHUNK = 256 * 1024  # bytes per sendfile call: one fast client cannot monopolise the loop
ACCEPT_BATCH = 64  # connections (datagrams) taken per readiness event before others get a turn
SWEEP = 0.25  # s between idle checks while clients are connected
LINGER = 2.0  # s a finished connection waits for the client to close before it is closed anyway
DATAGRAM_MAX = 65507


class Server:
    """A listening socket (or a UDP socket) plus its clients, driven by ``serve_forever``."""

    def __init__(self, cfg: ServerConfig, service: Service, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.service = service
        self.log = log or (lambda line: None if cfg.quiet else print(line, file=sys.stderr, flush=True))
        self.sel = selectors.DefaultSelector()
        self.sock: socket.socket | None = None
        self.conns: dict[int, Conn] = {}
        self.active = 0  # connections that count against --max-clients
        self.served = 0
        self._path_ino: int | None = None
        self._last_sweep = time.monotonic()  # kept across serve_forever calls (tests drive the loop in steps)
        self.stopping: int | None = None  # the signal that asked us to stop (see request_stop)
        # The selector's wake-up call: a signal handler writes a byte, so a stop never waits for a timeout.
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._wake_r)

    def wakeup_fd(self) -> int:
        """The fd to give ``signal.set_wakeup_fd``: the C-level handler writes the signal's number there the moment
        the signal arrives, on whichever thread the kernel delivered it to, so the selector wakes even when the
        Python-level handler could only run once the selector returned (a signal taken by another thread)."""
        return self._wake_w.fileno()

    def request_stop(self, signum: int) -> None:
        """Ask the loop to stop (from a signal handler): ``serve_forever`` raises Stop(signum) at its next turn."""
        if self.stopping is None:
            self.stopping = signum
        try:
            self._wake_w.send(b"!")
        except OSError:  # already closed, or full: the loop is awake anyway
            pass

    # -- set up / tear down -----------------------------------------------------------------------------
    def open(self) -> str:
        """Create and bind the socket; return the address as printed ("tcp 127.0.0.1:40123")."""
        cfg = self.cfg
        if cfg.kind == "unix":
            assert cfg.path is not None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)  # the socket file is born 0600: no window where others could connect
            try:
                sock.bind(cfg.path)
            except BaseException:
                sock.close()
                raise
            finally:
                os.umask(old)
            self._path_ino = os.stat(cfg.path).st_ino
            where = cfg.path
        else:
            kind = socket.SOCK_DGRAM if cfg.kind == "udp" else socket.SOCK_STREAM
            sock = socket.socket(cfg.family, kind)
            try:
                if kind == socket.SOCK_STREAM:  # restart at once on the same port after a stop
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((cfg.host, cfg.port))
            except BaseException:
                sock.close()
                raise
            host, port = sock.getsockname()[:2]
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.sock = sock
        if cfg.kind != "udp":
            sock.listen(min(cfg.max_clients, socket.SOMAXCONN))
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ, None)
        return f"{cfg.kind} {where}"

    def close(self) -> None:
        """Close every client and the server socket; remove our Unix socket file. Idempotent.

        Signal handlers only set a flag (request_stop), so nothing here can be cut short half-way.
        """
        for conn in list(self.conns.values()):
            self._close(conn)
        if self.sock is not None:
            self.sock.close()  # closing unregisters it from epoll; the selector itself is closed next
            self.sock = None
        self.sel.close()
        self._wake_r.close()
        self._wake_w.close()
        path = self.cfg.path
        if path and self._path_ino is not None:
            try:
                if os.stat(path).st_ino == self._path_ino:  # never remove a file someone else put there
                    os.unlink(path)
            except FileNotFoundError:
                pass
            self._path_ino = None

    # -- the loop -------------------------------------------------------------------------------------
    def serve_forever(self, stop_after: float | None = None) -> None:
        """Serve until ``request_stop`` (Stop is raised) or ``stop_after`` seconds have passed."""
        end = None if stop_after is None else time.monotonic() + stop_after
        datagram = self.cfg.kind == "udp"
        buf = bytearray(DATAGRAM_MAX + 1) if datagram else bytearray()
        while True:
            if self.stopping is not None:
                raise Stop(self.stopping)
            timeout = SWEEP if self.conns else None
            if end is not None:
                timeout = max(0.0, min(timeout if timeout is not None else SWEEP, end - time.monotonic()))
            for key, events in self.sel.select(timeout):
                conn = key.data
                if conn is self._wake_r:
                    self._drain_wake()
                    continue
                if conn is None:
                    if datagram:
                        self._datagrams(buf)
                    else:
                        self._accept()
                    continue
                if events & selectors.EVENT_READ:
                    self._read(conn)
                if events & selectors.EVENT_WRITE and conn.sock.fileno() >= 0:
                    self._write(conn)
                self._update(conn)
            now = time.monotonic()
            if now - self._last_sweep >= SWEEP:
                self._last_sweep = now
                self._sweep(now)
            if end is not None and now >= end:
                return

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except OSError:  # BlockingIOError: drained
            pass

    def _accept(self) -> None:
        assert self.sock is not None
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE, ECONNABORTED: log and let the next event retry
                self.log(f"accept failed: {exc.strerror or exc}")
                return
            sock.setblocking(False)
            peer = _peer_name(addr, self.cfg.kind)
            if self.active >= self.cfg.max_clients:
                self.log(f"{peer} refused: {self.cfg.max_clients} clients already connected (--max-clients)")
                if len(self.conns) - self.active >= self.cfg.max_clients:  # refusals are bounded too
                    sock.close()
                    continue
                conn = Conn(sock, peer, counted=False)
                self.conns[sock.fileno()] = conn
                conn.write(self.service.busy(self.cfg.max_clients))
                conn.finish()
                conn.done = True
            else:
                conn = Conn(sock, peer)
                self.conns[sock.fileno()] = conn
                self.active += 1
                self.served += 1
                self.log(f"{peer} connected ({self.active} client(s))")
                self.service.on_connect(conn)
            if conn.pending():
                self._write(conn)  # most short replies leave without another trip through select
            self._update(conn)

    def _read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(conn, f"dropped ({exc.strerror or exc})")
            return
        if not conn.lingering:  # a lingering client cannot extend its grace period by sending
            conn.last = time.monotonic()
        if not data:
            conn.eof = True
            if not conn.done:
                self.service.on_eof(conn)
            conn.closing = True
            return
        if not conn.done and not conn.closing:
            self.service.on_data(conn, data)

    def _write(self, conn: Conn) -> None:
        try:
            if conn.out:
                n = conn.sock.send(conn.out)
                del conn.out[:n]
            elif conn.file_left:
                n = os.sendfile(conn.sock.fileno(), conn.file_fd, conn.file_off, min(conn.file_left, FILE_CHUNK))
                if n == 0:  # the file shrank after its length was promised: the client must see a short read
                    self._close(conn, "dropped (the file shrank while it was being sent)")
                    return
                conn.file_off += n
                conn.file_left -= n
                if not conn.file_left:
                    conn._close_file()
            else:
                return
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(conn, f"dropped ({exc.strerror or exc})")
            return
        conn.last = conn.out_since = time.monotonic()  # the client took some of its replies

    def _update(self, conn: Conn) -> None:
        """Re-arm the selector for what this client needs next, or close it when it is finished."""
        if conn.sock.fileno() < 0:
            return
        if conn.closing and not conn.pending():
            if conn.eof:
                self._close(conn)
                return
            if not conn.lingering:  # lingering close: shut our side, read until the client closes
                conn.lingering = True
                conn.last = time.monotonic()
                try:
                    conn.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    self._close(conn)
                    return
        mask = 0
        if not conn.eof and len(conn.out) < BUFFER_LIMIT:  # backpressure: a client that does not read is not read
            mask |= selectors.EVENT_READ
        if conn.pending():
            mask |= selectors.EVENT_WRITE
        if mask == conn.mask:
            return
        if not mask:  # waiting for nothing: the client shut its side and everything was sent
            self._close(conn)
            return
        if conn.mask:
            self.sel.modify(conn.sock, mask, conn)
        else:
            self.sel.register(conn.sock, mask, conn)
        conn.mask = mask

    def _sweep(self, now: float) -> None:
        limit = self.cfg.idle_timeout
        one_request = getattr(self.service, "request_deadline", False)
        for conn in list(self.conns.values()):
            if conn.lingering:
                if now - conn.last > min(limit, LINGER):
                    self._close(conn)
            elif now - conn.last > limit:
                self._close(conn, f"dropped: no progress for {limit:g} s (--idle-timeout)")
            elif conn.pending() and now - conn.out_since > limit:  # sends, but never reads its replies
                self._close(conn, f"dropped: read none of its replies for {limit:g} s (--idle-timeout)")
            elif one_request and not conn.done and now - conn.accepted > limit:  # trickles its request in
                self._close(conn, f"dropped: request not complete {limit:g} s after connecting (--idle-timeout)")

    def _close(self, conn: Conn, why: str = "closed") -> None:
        fd = conn.sock.fileno()
        if fd < 0:
            return
        self.conns.pop(fd, None)
        if conn.mask:
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.mask = 0
        if conn.counted:
            self.active -= 1
        conn._close_file()
        conn.sock.close()
        if conn.counted:
            self.log(f"{conn.peer} {why}")

    def _datagrams(self, buf: bytearray) -> None:
        assert self.sock is not None
        view = memoryview(buf)
        for _ in range(ACCEPT_BATCH):
            try:
                n, addr = self.sock.recvfrom_into(buf)
            except BlockingIOError:
                return
            except OSError:  # an ICMP error from an earlier reply: nothing to do for UDP
                continue
            if n > self.cfg.max_request:
                self.log(f"{_peer_name(addr, 'udp')}: datagram of {n} bytes dropped (--max-request "
                         f"{self.cfg.max_request})")
                continue
            self.served += 1
            reply = self.service.on_datagram(bytes(view[:n]))
            if reply is None:
                continue
            try:
                self.sock.sendto(reply, addr)
            except OSError as exc:  # a full send buffer drops the reply, as UDP may
                if exc.errno not in (errno.EAGAIN, errno.ECONNREFUSED):
                    self.log(f"{_peer_name(addr, 'udp')}: reply dropped ({exc.strerror or exc})")


def _peer_name(addr: Any, kind: str) -> str:
    if kind == "unix":
        return "unix client"
    host, port = addr[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
