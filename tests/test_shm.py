"""The shared-memory ring (shm, shm-spin, mmap): wrap-around, messages larger than the ring, empty messages,
end-of-channel signalling, segment naming/modes/cleanup (also after a worker is SIGKILLed mid-run), and the
CPU cost of busy-polling showing up in the results. Timing is never asserted."""

from __future__ import annotations

import copy
import glob
import json
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from ipclab.config import RunConfig
from ipclab.declarations import TrafficShape
from ipclab.transports import ring, shm, slot
from ipclab.transports.base import OBJECTS_FILE, CellSpec
from ipclab.transports.mmapfile import MmapTransport
from ipclab.transports.segment import RingTransport
from ipclab.transports.shm import ShmSpinTransport, ShmTransport

RING_CLASSES = [ShmTransport, ShmSpinTransport, MmapTransport]
DUPLEX = TrafficShape(duplex=True)  # one message in flight: the slot protocol (slot.py)
RING = TrafficShape(duplex=True, in_flight=None)  # a duplex shape that gets the ring (both directions in use)
ONE_WAY = TrafficShape(duplex=False, in_flight=None)


def _shm_entries() -> set[str]:
    return {p for p in glob.glob("/dev/shm/*") if "ipclab" in os.path.basename(p)}


def _dup_address(address: dict) -> dict:
    """The fds a worker would inherit, duplicated so that two in-process channels can each close their own."""
    out = copy.deepcopy(address)
    out["fd"] = os.dup(out["fd"])
    for r in out["rings"]:
        for key in ("data_efd", "space_efd"):
            if r[key] is not None:
                r[key] = os.dup(r[key])
    return out


@contextmanager
def ring_pair(cls: type[RingTransport], ring_bytes: int, shape: TrafficShape = RING,
              size: int = 0) -> Iterator[tuple]:
    """(client, server) channels of one segment in this process, on rings (or slots) of ``ring_bytes``."""
    small = type(f"Small{cls.__name__}", (cls,), {"ring_bytes": ring_bytes})
    workdir = tempfile.mkdtemp(prefix="ipclab-test-")
    transport = small(workdir, CellSpec(shape=shape, size=size))
    try:
        address = transport.setup()
        client = small.connect(_dup_address(address), "client")
        server = small.connect(_dup_address(address), "server")
        transport.close_parent_fds()
        try:
            yield client, server
        finally:
            client.close()
            server.close()
    finally:
        transport.teardown()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)


def _in_thread(fn) -> tuple[threading.Thread, list]:
    errors: list = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _through_ring(cls: type[RingTransport], ring_bytes: int, messages: list[bytes], exact: bool,
                  shape: TrafficShape = RING) -> list[bytes]:
    """Send ``messages`` from the client while a thread reads them on the server; what it read, in order.

    ``exact``: each read asks for exactly the message's length (else for up to the largest message)."""
    with ring_pair(cls, ring_bytes, shape) as (client, server):
        got: list[bytes] = []

        def consume() -> None:
            buf = memoryview(bytearray(max(map(len, messages))))
            for msg in messages:
                n = server.recv_into(buf[:len(msg)] if exact else buf)
                got.append(bytes(buf[:n]))

        thread, errors = _in_thread(consume)
        for msg in messages:
            client.send(memoryview(msg))
        thread.join(30)
        assert not thread.is_alive() and not errors, errors
    return got


@pytest.mark.parametrize("cls", [ShmTransport, MmapTransport])
def test_wraparound_and_larger_than_ring(cls: type[RingTransport]) -> None:
    """A 256-byte ring: record lengths that are no multiple of 8 wrap at every position, and messages of up
    to 20x the ring stream through it in chunks while the other side drains it."""
    sizes = [0, 1, 7, 8, 9, 63, 100, 201, 241, 249, 250, 1000, 5003]
    rng = random.Random(7)
    messages = [rng.randbytes(rng.choice(sizes)) for _ in range(400)]
    assert _through_ring(cls, 256, messages, exact=True) == messages


@pytest.mark.parametrize("shape", [RING, DUPLEX], ids=["ring", "slot"])
@pytest.mark.parametrize("cls", [ShmTransport, MmapTransport, ShmSpinTransport])
def test_pingpong_both_rings_in_process(cls: type[RingTransport], shape: TrafficShape) -> None:
    """Echo through ring 0 and back through ring 1, with sizes around and above the ring (slot) size."""
    sizes = [0, 13, 120, 127, 128, 129, 700]
    with ring_pair(cls, 128, shape) as (client, server):

        def echo() -> None:
            buf = memoryview(bytearray(1000))
            for size in sizes * 20:
                n = server.recv_into(buf[:size])
                server.send(buf[:n])

        thread, errors = _in_thread(echo)
        rbuf = memoryview(bytearray(1000))
        for i, size in enumerate(sizes * 20):
            msg = bytes((i + j) & 0xFF for j in range(size))
            client.send(memoryview(msg))
            assert client.recv_into(rbuf[:size]) == size
            assert rbuf[:size] == msg
        thread.join(30)
        assert not errors, errors


@pytest.mark.parametrize("cls", RING_CLASSES)
def test_empty_message_and_many_records_without_a_reader_thread(cls: type[RingTransport]) -> None:
    """Empty messages are 8-byte records; a ring of 4 KiB holds many small ones without blocking."""
    assert cls.empty_ok and cls.not_applicable(ONE_WAY, 0) is None
    with ring_pair(cls, 4096) as (client, server):
        buf = memoryview(bytearray(16))
        for i in range(1000):  # 1000 x 8 bytes laps the 4 KiB ring
            client.send(memoryview(b""))
            client.send(memoryview(bytes([i & 0xFF])))
            assert server.recv_into(buf) == 0
            assert server.recv_into(buf) == 1 and buf[0] == i & 0xFF


@pytest.mark.parametrize("shape", [RING, DUPLEX], ids=["ring", "slot"])
@pytest.mark.parametrize("cls", [ShmTransport, ShmSpinTransport])
def test_message_larger_than_the_buffer_is_an_error(cls: type[RingTransport], shape: TrafficShape) -> None:
    """The error leaves the message where it was: a large enough buffer receives it next."""
    with ring_pair(cls, 4096, shape) as (client, server):
        client.send(memoryview(b"x" * 10))
        with pytest.raises(ValueError, match="10-byte message"):
            server.recv_into(memoryview(bytearray(4)))
        buf = memoryview(bytearray(16))
        assert server.recv_into(buf) == 10 and buf[:10] == b"x" * 10


@pytest.mark.parametrize("shape", [RING, DUPLEX], ids=["ring", "slot"])
@pytest.mark.parametrize("cls", [ShmTransport, ShmSpinTransport])
def test_closing_one_side_wakes_the_other(cls: type[RingTransport], shape: TrafficShape) -> None:
    """A consumer waiting for data gets EOFError when the producer closes (after the data already sent), and
    a producer waiting for space gets BrokenPipeError when the consumer closes."""
    with ring_pair(cls, 256, shape) as (client, server):
        client.send(memoryview(b"last words"))
        buf = memoryview(bytearray(64))
        outcome: list = []

        def consume() -> None:
            outcome.append(bytes(buf[:server.recv_into(buf[:10])]))
            try:
                server.recv_into(buf[:10])
            except EOFError:
                outcome.append("eof")

        thread, errors = _in_thread(consume)
        time.sleep(0.05)  # let it block (or spin) on the empty ring; correctness does not depend on it
        client.close()
        thread.join(10)
        assert not thread.is_alive() and not errors
        assert outcome == [b"last words", "eof"]

    with ring_pair(cls, 256, shape) as (client, server):
        def produce() -> None:
            with pytest.raises(BrokenPipeError):
                for _ in range(100):  # the ring holds two of these; nobody reads them
                    client.send(memoryview(bytes(100)))

        thread, errors = _in_thread(produce)
        time.sleep(0.05)
        server.close()
        thread.join(10)
        assert not thread.is_alive() and not errors, errors


@pytest.mark.parametrize("shape", [RING, DUPLEX], ids=["ring", "slot"])
@pytest.mark.parametrize("cls", [ShmTransport, ShmSpinTransport])
def test_last_message_then_close_gives_the_message_then_eof(cls: type[RingTransport], shape: TrafficShape) -> None:
    """The producer's last wake-up and its close can reach a sleeping consumer as one eventfd count: the
    consumer must still see the message, then EOF (not sleep forever on a count already consumed)."""
    for i in range(20):
        with ring_pair(cls, 4096, shape) as (client, server):
            outcome: list = []

            def consume(server=server, outcome=outcome) -> None:
                buf = memoryview(bytearray(8))
                outcome.append(server.recv_into(buf))
                try:
                    server.recv_into(buf)
                except EOFError:
                    outcome.append("eof")

            thread, errors = _in_thread(consume)
            time.sleep(0.002 * (i % 3))  # sometimes the consumer sleeps first, sometimes not
            client.send(memoryview(b"12345678"))
            client.close()
            thread.join(5)
            assert not thread.is_alive() and not errors, (i, errors)
            assert outcome == [8, "eof"], i


def test_rings_are_sized_to_the_messages(tmp_path) -> None:
    """A few messages per ring (fewer wake-ups per message), within [DEFAULT, max_ring_bytes]; a one-way
    workload gets a token back ring; an explicit ring_bytes wins."""
    def caps(cls: type[RingTransport], shape: TrafficShape, size: int) -> list[int]:
        transport = cls(str(tmp_path), CellSpec(shape=shape, size=size))
        try:
            address = transport.setup()
            assert address["segment_bytes"] == os.fstat(address["fd"]).st_size
            return [r["ring_bytes"] for r in address["rings"]]
        finally:
            transport.teardown()

    mib = 1024 * 1024
    assert caps(ShmTransport, RING, 64) == [ring.DEFAULT_RING_BYTES] * 2
    assert caps(ShmTransport, RING, mib) == [4 * mib] * 2
    assert caps(ShmTransport, DUPLEX, 64) == [slot.MIN_SLOT_BYTES] * 2  # one message in flight: a slot
    assert caps(ShmTransport, DUPLEX, mib) == [2 * mib] * 2  # the message and its 8 bytes
    assert caps(MmapTransport, ONE_WAY, mib) == [4 * mib, 4096]
    assert caps(ShmSpinTransport, ONE_WAY, mib + 1) == [8 * mib, 4096]
    assert ring.ring_bytes_for(1 << 30) == ring.MAX_RING_BYTES
    fixed = type("Fixed", (ShmTransport,), {"ring_bytes": 128})
    assert caps(fixed, ONE_WAY, mib) == [128, 128]
    with ring_pair(ShmTransport, 4096, shape=ONE_WAY) as (client, server):  # ring 1 unused but usable
        server.send(memoryview(b"back"))
        assert client.recv_into(memoryview(bytearray(4))) == 4


def test_fast_and_slow_paths_agree_across_many_laps() -> None:
    """Sizes chosen so that records land at every 8-byte position of a 1 KiB ring and wrap often: the
    fast path (no wrap) and the slow one (wrap, ring full) must hand over the same bytes, in order."""
    rng = random.Random(11)
    sizes = [rng.choice([0, 1, 5, 8, 24, 57, 64, 100, 333, 500]) for _ in range(3000)]
    messages = [rng.randbytes(n) for n in sizes]
    assert _through_ring(ShmTransport, 1024, messages, exact=False) == messages


@pytest.mark.parametrize("cls", RING_CLASSES)
def test_segment_name_mode_tracking_and_idempotent_teardown(cls: type[RingTransport], tmp_path) -> None:
    transport = cls(str(tmp_path), CellSpec(shape=DUPLEX, size=64))
    transport.setup()
    path = transport.path
    try:
        assert os.path.basename(path).startswith("ipclab-")
        assert os.stat(path).st_mode & 0o777 == 0o600
        if cls is MmapTransport:
            assert os.path.dirname(path) == str(tmp_path)
        else:
            assert path.startswith("/dev/shm/")
            record = json.loads((tmp_path / OBJECTS_FILE).read_text())  # tracked for `ipclab clean`
            assert record == {"kind": "shm", "id": "/" + os.path.basename(path)}
    finally:
        transport.teardown()
    assert not os.path.exists(path)
    transport.teardown()  # a second teardown is harmless


def test_shm_name_is_gone_once_the_workers_hold_the_segment(tmp_path) -> None:
    """close_parent_fds() (called right after spawning) unlinks the name: a SIGKILLed runner leaves none, and
    the workers' inherited descriptors still reach the segment."""
    transport = ShmTransport(str(tmp_path), CellSpec(shape=ONE_WAY, size=64))
    address = transport.setup()
    client_view, server_view = _dup_address(address), _dup_address(address)
    assert os.path.exists(transport.path)
    name = transport.path
    transport.close_parent_fds()
    try:
        assert not os.path.exists(name)
        with ShmTransport.connect(client_view, "client") as client, \
                ShmTransport.connect(server_view, "server") as server:
            client.send(memoryview(b"still mapped"))
            buf = memoryview(bytearray(12))
            assert server.recv_into(buf) == 12 and buf == b"still mapped"
    finally:
        transport.teardown()


def test_unavailable_reasons(monkeypatch) -> None:
    monkeypatch.setattr(shm, "SHM_DIR", "/nonexistent-ipclab-dir")
    assert ShmTransport.unavailable_reason() == "no /nonexistent-ipclab-dir"
    monkeypatch.undo()
    assert ShmTransport.unavailable_reason() is None
    monkeypatch.setattr(ring.platform, "machine", lambda: "aarch64")
    for cls in RING_CLASSES:
        reason = cls.unavailable_reason()
        assert reason and "TSO" in reason and "aarch64" in reason


def _run(transports: tuple[str, ...], patterns: tuple[str, ...], sizes: tuple[int, ...], **kw) -> dict:
    from ipclab.runner import Runner

    config = RunConfig(transports=transports, patterns=patterns, sizes=sizes, warmup=2, timeout=30, **kw)
    return Runner(config).run()


@pytest.mark.process
def test_messages_larger_than_the_ring_through_the_runner(monkeypatch) -> None:
    # Rings are sized to the messages; capping them at the smallest ring forces chunks again.
    monkeypatch.setattr(RingTransport, "max_ring_bytes", ring.DEFAULT_RING_BYTES)
    size = 3 * ring.DEFAULT_RING_BYTES + 13  # chunks of the ring plus a tail, not a multiple of 8
    result = _run(("shm", "shm-spin", "mmap"), ("pingpong", "stream"), (size,), count=6, verify=True)
    for cell in result["cells"]:
        where = f"{cell['pattern']} {cell['transport']}"
        assert cell["status"] == "ok", f"{where}: {cell['reason']}"
        m = cell["trials"][0]["metrics"]
        assert m["corrupt"] == 0, where
        assert m.get("round_trips", m.get("received")) == 6, where


@pytest.mark.process
def test_spin_cpu_cost_is_recorded() -> None:
    """The price of busy-polling is in the result: CPU-us per message, and each spinner on its own CPU."""
    result = _run(("shm-spin", "shm"), ("pingpong",), (64,), count=300)
    cells = {c["transport"]: c for c in result["cells"]}
    for name, cell in cells.items():
        assert cell["status"] == "ok", cell["reason"]
        cpu = cell["summary"]["cpu_us_msg"]
        assert isinstance(cpu, float) and cpu > 0, name
    if len(os.sched_getaffinity(0)) >= 2:
        spin = cells["shm-spin"]
        assert spin["placement"].startswith("cross CPUs")
        assert spin["cpus"]["server"] != spin["cpus"]["client"]


def _kill_a_worker(killed: list, stop: threading.Event) -> None:
    """SIGKILL the first ipclab worker found once it has run for a moment."""
    me = psutil.Process()
    deadline = time.monotonic() + 20
    while not stop.is_set() and time.monotonic() < deadline:
        workers = [p for p in me.children() if "ipclab.worker" in " ".join(p.cmdline())]
        if len(workers) == 2:
            time.sleep(0.5)  # well inside the measured phase of a 5 s trial
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)
            return
        time.sleep(0.02)


@pytest.mark.process
@pytest.mark.parametrize("name", ["shm", "shm-spin", "mmap"])
def test_sigkilled_worker_fails_the_cell_and_leaves_nothing(name: str) -> None:
    before = _shm_entries()
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        result = _run((name,), ("pingpong",), (64,), duration=5.0)
    finally:
        stop.set()
        killer.join(5)
    assert killed, "no worker was found to kill"
    (cell,) = result["cells"]
    assert cell["status"] == "failed"
    assert "SIGKILL" in cell["reason"] or "exited" in cell["reason"] or "closed" in cell["reason"]
    assert _shm_entries() == before  # the no_leaks fixture also checks processes and private dirs


@pytest.mark.process
def test_cli_run_has_no_resource_tracker_warnings(cli, tmp_path) -> None:
    proc = cli("run", "-t", "shm,shm-spin,mmap", "-s", "0,64", "-n", "50", "-q", "-o", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert "resource_tracker" not in proc.stderr
    assert "leaked" not in proc.stderr
