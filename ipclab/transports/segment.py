"""The shared segment of two rings: RingChannel / SlotChannel (worker side) and RingTransport (parent side).

RingTransport is the base of shm, shm-spin and mmap, which only say where the segment's file lives. The
segment and the eventfds reach the workers as inherited file descriptors, so the children never open anything
by name (and no multiprocessing resource_tracker is involved). Ring 0 carries client -> server, ring 1
server -> client; a one-way workload uses only ring 0. The ring itself and its memory-ordering argument: ring.py.
A shape with one message in flight (ping-pong, reqrep) uses each ring's memory as a single slot instead, with a
cheaper protocol (slot.py) and a native ``exchange`` (SlotChannel); the address says which (``slot``), so both
workers agree.
"""

from __future__ import annotations

import errno
import mmap
import os
from typing import Any, ClassVar

from .base import CellSpec, Channel, Transport
from .ledger import OwnedFd, owned_name
from .ring import (
    DEFAULT_RING_BYTES,
    HEADER_BYTES,
    MAX_RING_BYTES,
    RingEnd,
    check_capacity,
    ring_bytes_for,
    ring_unavailable_reason,
    segment_bytes,
)
from .slot import MIN_SLOT_BYTES, STATE, SlotEnd, slot_bytes_for

BACK_RING_BYTES = 4096  # ring 1 of a one-way workload: never used, kept so that both ends look alike


class RingChannel(Channel):
    """A worker's endpoint: the shared mapping, the end it writes and/or the end it reads."""

    def __init__(self, address: dict[str, Any], role: str) -> None:
        size = address["segment_bytes"]
        fd = address["fd"]
        try:
            # MAP_POPULATE: fault every page in now, not inside the measured loop on the first lap of the ring.
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            self._mem: mmap.mmap | None = mmap.mmap(fd, size, flags=flags)
        finally:
            os.close(fd)  # the mapping keeps the segment alive
        self._efds = [OwnedFd(e) for ring in address["rings"] for e in (ring["data_efd"], ring["space_efd"])
                      if e is not None]
        self._view = memoryview(self._mem)
        to_server, to_client = self._ends(address)  # the eventfd numbers, owned by self._efds
        self._tx, self._rx = (to_server, to_client) if role == "client" else (to_client, to_server)
        self.send = self._tx.sender()  # type: ignore[method-assign,assignment]
        self.recv_into = self._rx.receiver()  # type: ignore[method-assign,assignment]

    def _ends(self, address: dict[str, Any]) -> list[RingEnd]:
        """Both directions of the segment: client -> server, then server -> client."""
        return [RingEnd(self._view, r["offset"], r["ring_bytes"], r["data_efd"], r["space_efd"])
                for r in address["rings"]]

    def send(self, msg: memoryview) -> None:  # shadowed by the ring's closure until close()
        raise OSError("the ring channel is closed")

    def recv_into(self, buf: memoryview) -> int:  # shadowed by the ring's closure until close()
        raise OSError("the ring channel is closed")

    waits_readable = True

    def wait_readable(self, timeout_s: float) -> bool:
        """Looks only (returns at once, whatever ``timeout_s``): a message is there when the peer's published
        head is past our tail, or the peer closed (recv_into then raises EOFError). Sleeping on the eventfd
        here would take part in the ring's wake-up protocol; the caller sleeps in short slices instead."""
        from .ring import HEAD, PROD_CLOSED, TAIL

        hdr = self._rx.hdr

        def wait_readable(timeout_s: float) -> bool:
            return hdr[HEAD] != hdr[TAIL] or bool(hdr[PROD_CLOSED])

        self.wait_readable = wait_readable  # type: ignore[method-assign]
        return wait_readable(timeout_s)

    def close(self) -> None:
        if self._mem is None:
            return
        self._tx.close_side(producer=True)
        self._rx.close_side(producer=False)
        for efd in self._efds:
            efd.close()
        # The hot closures still reference views of the mapping: drop them, then unmap if nothing else holds
        # a view (process exit unmaps in any case).
        for name in ("send", "recv_into", "exchange"):
            self.__dict__.pop(name, None)
        self._tx.release()
        self._rx.release()
        mem, self._mem = self._mem, None
        try:
            self._view.release()
            mem.close()
        except BufferError:
            pass


class SlotChannel(RingChannel):
    """One message in flight (ping-pong, reqrep): each ring's memory is a single slot (slot.py), and a send
    with the receive that answers it is one call (``exchange``, Channel's contract)."""

    has_exchange = True
    _tx: SlotEnd
    _rx: SlotEnd

    def __init__(self, address: dict[str, Any], role: str) -> None:
        super().__init__(address, role)
        self.exchange = self._tx.exchanger(self._rx, self.send, self.recv_into)  # type: ignore[method-assign,assignment]

    def _ends(self, address: dict[str, Any]) -> list[RingEnd]:
        return [SlotEnd(self._view, r["offset"], r["ring_bytes"], r["data_efd"], r["space_efd"], address["size"])
                for r in address["rings"]]

    def exchange(self, msg: memoryview, buf: memoryview) -> int:  # shadowed by the slots' closure until close()
        raise OSError("the ring channel is closed")

    def wait_readable(self, timeout_s: float) -> bool:
        """Blocking ends: the data eventfd, waited on with select (readable while it holds a frame's count, which
        select does not consume): it sees a frame sent by exchange, whose state word stays 0. Spinning ends: a
        look at the state word, which is their frame's count (returns at once; the caller sleeps in slices)."""
        from .ring import PROD_CLOSED

        rx = self._rx
        if rx.blocking:
            from .channels import fd_waiter

            wait_readable = fd_waiter(rx.efd)  # a close adds CLOSED_COUNT: readable, recv_into raises EOFError
        else:
            hdr = rx.hdr

            def wait_readable(timeout_s: float) -> bool:
                return bool(hdr[STATE]) or bool(hdr[PROD_CLOSED])

        self.wait_readable = wait_readable  # type: ignore[method-assign,assignment]
        return wait_readable(timeout_s)


class RingTransport(Transport):
    """Parent side shared by shm, shm-spin and mmap: a segment of two rings, plus eventfds unless spinning.

    Subclasses only say where the segment lives (``_create_segment``). The segment and the eventfds reach the
    workers as inherited file descriptors, so the children never open anything by name.
    """

    boundaries = True  # length-prefixed records
    empty_ok = True  # an empty message is an 8-byte record holding length 0
    max_message = None  # larger than the ring: carried in chunks
    # None: each ring is sized in setup() to the cell's messages (ring.ring_bytes_for: RING_MESSAGES of them,
    # DEFAULT_RING_BYTES..max_ring_bytes); a power of two fixes it (the tests' small rings).
    ring_bytes: ClassVar[int | None] = None
    max_ring_bytes: ClassVar[int] = MAX_RING_BYTES

    def __init__(self, workdir: str, spec: CellSpec) -> None:
        super().__init__(workdir, spec)
        self.path: str | None = None  # the segment's file, once setup has named it

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return ring_unavailable_reason(blocking=not cls.spins)

    def setup(self) -> dict[str, Any]:
        slot = self.spec.shape.in_flight == 1  # one message in flight: the slot protocol (slot.py)
        if slot:
            cap = self.ring_bytes or slot_bytes_for(self.spec.size, MIN_SLOT_BYTES, self.max_ring_bytes)
        else:
            cap = self.ring_bytes or ring_bytes_for(self.spec.size, DEFAULT_RING_BYTES, self.max_ring_bytes)
        check_capacity(cap)
        caps = [cap, cap if self.spec.shape.duplex or self.ring_bytes else BACK_RING_BYTES]
        size = segment_bytes(caps)
        segment = self._create_segment(size)
        owned = [segment]
        rings = []
        offset = 0
        for ring_cap in caps:
            efds: list[int | None] = [None, None]
            if not self.spins:
                data_efd, space_efd = self.ledger.fd(os.eventfd(0)), self.ledger.fd(os.eventfd(0))
                owned += [data_efd, space_efd]
                efds = [data_efd.fileno(), space_efd.fileno()]
            rings.append({"offset": offset, "ring_bytes": ring_cap, "data_efd": efds[0], "space_efd": efds[1]})
            offset += HEADER_BYTES + ring_cap
        self.pass_fds("server", *owned)
        self.pass_fds("client", *owned)
        return {"fd": segment.fileno(), "segment_bytes": size, "ring_bytes": cap, "rings": rings,
                "spin": self.spins, "slot": slot, "size": self.spec.size}

    def _create_segment(self, size: int) -> OwnedFd:
        """Create the backing file (mode 0600, zero-filled), registered in the ledger; return its open fd."""
        raise NotImplementedError

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        return (SlotChannel if address.get("slot") else RingChannel)(address, role)


def create_file(path: str, size: int) -> int:
    """A new file of ``size`` zero bytes, mode 0600, never following or reusing an existing name."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size)
        try:
            os.posix_fallocate(fd, 0, size)  # reserve the pages now: a full tmpfs is an error here, not SIGBUS
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            # EOPNOTSUPP and the like: a filesystem without fallocate; the pages come on first touch
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    return fd


def random_name(suffix: str = "") -> str:
    """A segment's name, stamped with its owner (ipclab clean leaves it alone while the owner lives)."""
    return owned_name(suffix)
