"""The two central interfaces: Transport (parent side, owns the OS objects) and Channel (child side).

A Transport is instantiated in the runner for one trial with a :class:`CellSpec`: the traffic shape it must carry
(one-way or duplex, one or several writers, messages in flight, a connection per iteration), the message size
and the number of clients. It never sees a workload's name. ``setup()`` creates the OS objects (listening
socket, pipes, segment, queue), registering each in ``self.ledger`` (ledger.py) the moment it exists, and returns
a JSON-able address; the runner spawns the workers, passing the file descriptors ``fds_for(role, index)`` names,
calls ``close_parent_fds()`` once they hold their copies and ``teardown()`` in a ``finally``. Each worker calls
``Transport.connect(address, role, index)`` and gets a Channel.

Capabilities are declared class attributes, read by the sweep (``not_applicable``), placement and ``ipclab list``.

Roles: ``server`` is the passive side (answers, or consumes), ``client`` the active side (several of them when
the shape has several writers). Every message of a run has exactly the payload size; ``recv_into`` returns one
whole message.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import format_size
from ..declarations import TrafficShape
from .ledger import OBJECTS_FILE, RUN_FILE, HasFileno, Ledger

__all__ = ["OBJECTS_FILE", "RUN_FILE", "BoundChannel", "CellSpec", "Channel", "HotIO", "MessageTransport",
           "Transport", "optional_import", "set_recv_timeout"]

# (send, recv, finish_send, finish_recv) of a channel that offers raw I/O to the hot loops (channels.hot_io)
HotIO = tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any, Any], Any], Callable[[Any, Any], Any]]


@dataclass(frozen=True)
class CellSpec:
    """What a transport needs to know about the cell it is set up for: a shape, never a workload's name."""

    shape: TrafficShape
    size: int
    clients: int = 1


class Channel(ABC):
    """One endpoint of a measured channel, used by exactly one worker. A context manager.

    Implementations may bind fast closures to ``self.send`` / ``self.recv_into`` in ``__init__`` (instance
    attributes shadow the methods): the hot loops call them once per message.
    """

    # True: ``raw_io`` holds (send, recv, finish_send, finish_recv) for the hot loops; see channels.hot_io.
    has_raw_io: ClassVar[bool] = False
    raw_io: HotIO
    # Connections or datagrams from anyone but our own workers that the endpoint refused (never counted as
    # messages); the worker reports the number with its result.
    foreign: int = 0

    # True: ``wait_readable`` works (the open-loop patterns keep requests in flight only on such channels).
    waits_readable: ClassVar[bool] = False

    def wait_readable(self, timeout_s: float) -> bool:
        """True once ``recv_into`` would find a message (or EOF) without waiting, False after ``timeout_s``
        seconds without one (0: just look). It may return False before ``timeout_s`` (a channel that can only
        look, or waits in coarser units): callers loop. Optional: a channel that can tell sets ``waits_readable``."""
        raise NotImplementedError(f"{type(self).__name__} cannot wait for a message without receiving it")

    # True: ``exchange`` is native (one call for a send and the receive that answers it); see exchange.
    has_exchange: ClassVar[bool] = False

    def exchange(self, msg: memoryview, buf: memoryview) -> int:
        """Send ``msg`` whole, then receive the next message into ``buf``; return its length: what
        ``send(msg); return recv_into(buf)`` does, in one call instead of two (a Python call is ~0.1 us, ~1.5 %
        of a 6 us shared-memory round trip; a ping-pong side makes two per round trip).

        Contract (it lets a channel skip checks a lone ``send`` must make): the caller alternates with its peer,
        which sends only after reading what it was sent, so every message this end sent before the call has
        been read by the peer (a message it sent afterwards has arrived). A client calls it with a request and
        its reply buffer; a server, having received the first request, with the reply and the buffer for the
        next request. Plain ``send`` / ``recv_into`` may be mixed with it on the same channel (a warm-up, the
        last reply). Errors are those of ``send`` and ``recv_into``.

        Optional: the hot loops call it only where ``has_exchange`` is True; other channels keep their own
        send / receive calls (this default, one more Python frame, is for tests and odd callers)."""
        self.send(msg)
        return self.recv_into(buf)

    def in_flight_limit(self) -> int | None:
        """Messages this channel holds before a sender blocks, where it has a fixed depth (a POSIX queue); None:
        no such limit (the open-loop client then caps requests in flight by bytes only)."""
        return None

    def zero_copy_send(self, size: int) -> Callable[[memoryview], Any] | None:
        """A send of ``size``-byte messages by reference that returns a completion tracker (zmq, from its copy
        threshold up), or None: this channel copies what it sends (the default)."""
        return None

    def set_timeout(self, seconds: float | None) -> None:  # noqa: B027 - optional for reliable transports
        """Make ``recv_into`` raise TimeoutError after ``seconds`` without a message (None: block)."""

    @abstractmethod
    def send(self, msg: memoryview) -> None:
        """Send one whole message of exactly len(msg) bytes."""

    @abstractmethod
    def recv_into(self, buf: memoryview) -> int:
        """Receive one whole message into buf; return its length. EOFError when the peer has gone."""

    @abstractmethod
    def close(self) -> None:
        """Release this endpoint (idempotent)."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BoundChannel(Channel):
    """A Channel whose ``send`` / ``recv_into`` are closures bound per instance in ``__init__`` (instance
    attributes shadow these methods, so a message costs no method lookup). An end that cannot send or receive
    (one side of a one-way channel) leaves the method unbound, and it raises OSError."""

    def send(self, msg: memoryview) -> None:
        raise OSError("this endpoint cannot send")

    def recv_into(self, buf: memoryview) -> int:
        raise OSError("this endpoint cannot receive")


class Transport(ABC):
    """A mechanism: declared capabilities, parent-side setup/teardown and the child-side ``connect``."""

    name: ClassVar[str]  # the CLI name; a class that defines one is found by the registry (__init__.py)
    summary: ClassVar[str] = ""
    order: ClassVar[int] = 1000  # position in listings and default runs (ties: by name)
    hidden: ClassVar[bool] = False  # True: found by get_transport(name) only, never listed (in-process fakes)
    reliable: ClassVar[bool] = True  # False: loss/reorder are counted, not fatal
    ordered: ClassVar[bool] = True
    boundaries: ClassVar[bool] = False  # keeps message boundaries (datagrams, queues)
    empty_ok: ClassVar[bool] = False  # can carry an empty (0-byte) message
    max_message: ClassVar[int | None] = None
    spins: ClassVar[bool] = False  # busy-polls: never put two of its workers on one CPU
    multi_writer: ClassVar[bool] = False  # several clients may write to one server at once
    dials: ClassVar[bool] = False  # a client can open a new connection per iteration
    shared_kernel: ClassVar[bool] = True  # both ends must share one kernel (False: works across hosts)
    # True: connect() needs the peers' process ids (address["pids"]) and signals them by pid, so both ends
    # cannot share one process that has other threads (a process-directed signal may reach any of them).
    peer_pids: ClassVar[bool] = False

    def __init__(self, workdir: str, spec: CellSpec) -> None:
        self.workdir = workdir  # private 0700 directory of this run
        self.spec = spec
        self.ledger = Ledger(workdir)
        self._passed: dict[tuple[str, int | None], tuple[HasFileno, ...]] = {}

    # -- declared properties -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the mechanism cannot run here ("pyzmq not installed"), or None."""
        return None

    @classmethod
    def limit(cls) -> int | None:
        """Largest message this machine lets the mechanism carry (may read kernel limits)."""
        return cls.max_message

    @classmethod
    def limit_reason(cls, size: int) -> str:
        """The n/a text for a size above ``limit()``; transports name the sysctl that raises it."""
        return f"{format_size(size)} exceeds the {cls.name} message limit of {cls.limit()} bytes"

    @classmethod
    def not_applicable(cls, shape: TrafficShape, size: int) -> str | None:
        """None if a cell of this shape and size can run, else the reason shown in its n/a cell."""
        if size == 0 and not cls.empty_ok:
            return "a byte stream cannot carry an empty message"
        limit = cls.limit()
        if limit is not None and size > limit:
            return cls.limit_reason(size)
        if shape.many_writers and not cls.multi_writer:
            return (f"{cls.name} connects one writer to one reader; this workload needs several writers "
                    "(a multi_writer transport)")
        if shape.dials and not cls.dials:
            return (f"{cls.name} has no connections to set up; only transports that dial "
                    f"({_dialers()}) can open one per iteration")
        return None

    @classmethod
    def properties(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "summary": cls.summary,
            "reliable": cls.reliable,
            "ordered": cls.ordered,
            "boundaries": cls.boundaries,
            "empty_ok": cls.empty_ok,
            "max_message": cls.limit(),
            "spins": cls.spins,
            "multi_writer": cls.multi_writer,
            "dials": cls.dials,
            "shared_kernel": cls.shared_kernel,
        }

    # -- parent side ---------------------------------------------------------------------------------
    @abstractmethod
    def setup(self) -> dict[str, Any]:
        """Create the OS objects, each registered in ``self.ledger``; return a JSON-able address for ``connect``."""

    def pass_fds(self, role: str, *owners: HasFileno, index: int | None = None) -> None:
        """The worker(s) of ``role`` inherit these (owned fds, sockets); ``index`` None: every index of the role."""
        self._passed[(role, index)] = owners

    def fds_for(self, role: str, index: int = 0) -> tuple[int, ...]:
        """File descriptor numbers the worker of ``role`` must inherit, taken from the owning objects."""
        owners = self._passed.get((role, index), self._passed.get((role, None), ()))
        return tuple(owner.fileno() for owner in owners)

    def close_parent_fds(self) -> None:
        """Close the parent's copies once the workers hold theirs (so EOF reaches a survivor)."""
        self.ledger.handed_over()

    def teardown(self) -> None:
        """Remove everything setup created. Always called, possibly twice, possibly after a failed setup."""
        self.ledger.undo()

    # -- child side ----------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        """Open the worker's endpoint."""


class MessageTransport(Transport):
    """A mechanism of whole messages many may send to one (queues, datagrams, zmq): it keeps boundaries, carries
    empty messages and takes several writers."""

    boundaries = True
    empty_ok = True
    multi_writer = True


def optional_import(module: str) -> Any:
    """The module, or None when it is not installed: optional dependencies are imported only when asked."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _dialers() -> str:
    """The registered transports that dial, as "a, b and c" (read from the registry: never a fixed list)."""
    from . import registered_classes

    names = sorted(cls.name for cls in registered_classes() if cls.dials)
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def set_recv_timeout(sock: Any, seconds: float | None) -> None:
    """SO_RCVTIMEO on a blocking socket: recv fails with EAGAIN after ``seconds``.

    Unlike ``sock.settimeout`` it adds no poll() before every recv, so timed loops stay as cheap as blocking ones.
    """
    import socket

    secs = 0.0 if seconds is None else seconds
    value = struct.pack("ll", int(secs), int((secs - int(secs)) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
