"""loopback: an in-process fake transport (queues in this process) for running the engine without processes.

Only the Inline launcher (ipclab.engine.inline) can use it: its workers are threads of the runner's process, so
``connect`` finds the channels ``setup`` made in a module-level table. In any other process the address names
nothing and ``connect`` says so in one line.

It is ``hidden``: a registry that discovers transport modules must skip a class with ``hidden = True`` when it
lists transports (``ipclab list``, the default sweep, parametrised tests) and return it only when asked for it by
name (``get_transport("loopback")``). It never measures anything real.

Declared like a real mechanism: message boundaries, empty messages, several writers into one reader (fan-in),
dialing a new connection per iteration (``dial``/``accept``), no size limit. ``drop_every = N`` (a subclass with
``reliable = False``) drops every Nth message a channel sends, for tests of the lossy paths.
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any, ClassVar

from .base import Channel, Transport

_TORN = object()  # teardown: every reader gets EOF, now and forever
_hubs: dict[int, _Hub] = {}
_ids = itertools.count(1)
_lock = threading.Lock()


class _ByteStream:
    """One direction of a dialed connection: bytes in order, EOF once the writer closed (or teardown)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.closed = False
        self.cond = threading.Condition()

    def write(self, data: memoryview | bytes) -> None:
        with self.cond:
            if self.closed:
                raise BrokenPipeError("loopback connection closed")
            self.buf += data
            self.cond.notify_all()

    def read_into(self, view: memoryview) -> int:
        with self.cond:
            while not self.buf and not self.closed:
                self.cond.wait()
            n = min(len(view), len(self.buf))
            view[:n] = self.buf[:n]
            del self.buf[:n]
            return n

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class _Conn:
    """A dialed connection, socket-like: sendall, recv_into (0 at EOF), close."""

    def __init__(self, inbound: _ByteStream, outbound: _ByteStream) -> None:
        self._in, self._out = inbound, outbound

    def sendall(self, data: memoryview | bytes) -> None:
        self._out.write(data)

    def recv_into(self, view: memoryview) -> int:
        return self._in.read_into(memoryview(view))

    def close(self) -> None:
        self._out.close()


class _Hub:
    """Everything one trial's loopback carries: the server's inbox, one inbox per client, the accept queue."""

    def __init__(self, writers: int) -> None:
        self.writers = max(1, writers)
        self.server: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.clients: dict[int, queue.SimpleQueue[Any]] = {}
        self.accepts: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.streams: list[_ByteStream] = []
        self.lock = threading.Lock()
        self.torn = False

    def client(self, index: int) -> queue.SimpleQueue[Any]:
        with self.lock:
            return self.clients.setdefault(index, queue.SimpleQueue())

    def dial(self) -> _Conn:
        up, down = _ByteStream(), _ByteStream()
        with self.lock:
            if self.torn:
                raise ConnectionRefusedError("loopback torn down")
            self.streams += [up, down]
        self.accepts.put(_Conn(up, down))
        return _Conn(down, up)

    def tear_down(self) -> None:
        with self.lock:
            self.torn = True
            inboxes = [self.server, self.accepts, *self.clients.values()]
            streams = list(self.streams)
        for inbox in inboxes:
            inbox.put(_TORN)
        for stream in streams:
            stream.close()


class LoopbackChannel(Channel):
    """Whole messages through in-process queues. ``None`` in an inbox is one writer's EOF."""

    def __init__(self, hub: _Hub, inbox: queue.SimpleQueue[Any], outbox: queue.SimpleQueue[Any], writers: int,
                 drop_every: int) -> None:
        self._hub = hub
        self._inbox, self._outbox = inbox, outbox
        self._writers = writers  # EOFs to see before this reader's EOF (fan-in: every producer's)
        self._eofs = 0
        self._timeout: float | None = None
        self._drop_every = drop_every
        self._sent = 0
        self._closed = False

    def set_timeout(self, seconds: float | None) -> None:
        self._timeout = seconds

    def send(self, msg: memoryview) -> None:
        if self._closed:
            raise BrokenPipeError("loopback channel closed")
        self._sent += 1
        if self._drop_every and self._sent % self._drop_every == 0:
            return  # lost on the way, as a datagram can be
        self._outbox.put(bytes(msg))

    def recv_into(self, buf: memoryview) -> int:
        while True:
            try:
                item = self._inbox.get(timeout=self._timeout)
            except queue.Empty:
                raise TimeoutError("no loopback message in time") from None
            if item is _TORN:
                self._inbox.put(_TORN)  # every later read sees it too
                raise EOFError("loopback torn down")
            if item is None:
                self._eofs += 1
                if self._eofs >= self._writers:
                    raise EOFError("peer closed the loopback channel")
                continue
            n = min(len(item), len(buf))
            buf[:n] = item[:n]
            return n

    def dial(self) -> _Conn:
        return self._hub.dial()

    def accept(self) -> _Conn:
        conn = self._hub.accepts.get()
        if conn is _TORN:
            self._hub.accepts.put(_TORN)
            raise EOFError("loopback torn down")
        return conn

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._outbox.put(None)


class LoopbackTransport(Transport):
    name = "loopback"
    summary = "in-process queues (tests: the Inline launcher's workers are threads of the runner)"
    hidden: ClassVar[bool] = True  # found only when asked for by name, never listed
    boundaries = True
    empty_ok = True
    multi_writer = True
    dials: ClassVar[bool] = True
    drop_every: ClassVar[int] = 0

    @classmethod
    def not_applicable(cls, shape: Any, size: int) -> str | None:
        if isinstance(shape, str):  # a registry that still passes a pattern's name: read its declared shape
            from ..patterns import get_pattern

            shape = get_pattern(shape).SPEC.shape
        if size == 0 and shape.dials:
            return "an empty message on a dialed connection looks like the closing one"
        return super().not_applicable(shape, size)

    def setup(self) -> dict[str, Any]:
        ident = next(_ids)
        with _lock:
            _hubs[ident] = _Hub(self.spec.clients)
        self._hub_id = ident
        return {"loopback": ident}

    def teardown(self) -> None:
        ident = getattr(self, "_hub_id", None)
        if ident is not None:
            with _lock:
                hub = _hubs.pop(ident, None)
            if hub is not None:
                hub.tear_down()
        super().teardown()

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        with _lock:
            hub = _hubs.get(address.get("loopback", 0))
        if hub is None:
            raise RuntimeError("loopback channels live inside the runner's process: use the Inline launcher")
        if role == "server":
            return LoopbackChannel(hub, hub.server, hub.client(0), hub.writers, cls.drop_every)
        return LoopbackChannel(hub, hub.client(index), hub.server, 1, cls.drop_every)


def live_hubs() -> set[int]:
    """Loopbacks set up and not yet torn down (tests check that none is left)."""
    with _lock:
        return set(_hubs)
