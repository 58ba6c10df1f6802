"""Every registered transport, found by the registry (no list here: a new module is tested as it lands).

Fast tier (no child processes): discovery, declared capabilities, ``not_applicable`` over traffic shapes, setup
and teardown in this process (every fd, file and OS object registered in the ledger and undone, also after a
setup that fails at any step), and an echo through both endpoints opened in this process.

Process tier: both kinds of traffic through real workers at several sizes (including ones that are not a
multiple of any internal chunk), every byte checked (--verify), counts exact on reliable transports, nothing
left behind.
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import Any

import pytest
from inprocess import open_fds, pair, rt_signals_blocked

from ipclab import transports
from ipclab.config import RunConfig
from ipclab.declarations import TrafficShape
from ipclab.transports import available_names, get_transport, load_transport, transport_ref
from ipclab.transports.base import CellSpec, Transport
from ipclab.transports.ledger import Ledger

SIZES = (0, 1, 15, 16, 17, 4099, 65536 + 7)  # around the header, and sizes no buffer is a multiple of
REGISTERED = list(transports.TRANSPORTS)
AVAILABLE = available_names()

DUPLEX = TrafficShape(duplex=True)
ONE_WAY = TrafficShape(duplex=False, in_flight=None)
MANY_WRITERS = TrafficShape(duplex=False, many_writers=True, in_flight=None)
DIALS = TrafficShape(duplex=True, dials=True)
AHEAD = TrafficShape(duplex=True, in_flight=8)  # a writer that runs a few messages ahead, then waits
SHAPES = {"duplex": DUPLEX, "one-way": ONE_WAY, "several writers": MANY_WRITERS, "dials": DIALS, "ahead": AHEAD}


def _size_for(cls: type[Transport], shape: TrafficShape = DUPLEX) -> int | None:
    """A message size this transport carries in this shape (64 B if it can), or None."""
    return next((s for s in (64, 16, 0) if cls.not_applicable(shape, s) is None), None)


# -- discovery --------------------------------------------------------------------------------------------------
def test_discovery_finds_every_module_and_keeps_the_order() -> None:
    classes = transports.discover()
    names = [cls.name for cls in classes if not cls.hidden]  # hidden ones (the in-process loopback): never listed
    assert "loopback" not in transports.TRANSPORTS and get_transport("loopback").hidden
    assert names == [n for n in REGISTERED if n in names]  # the registry lists them in declared order
    assert names[:4] == ["pipe", "unix", "tcp", "udp"]  # today's order, kept
    assert {"shm", "shm-spin", "zmq-ipc", "zmq-tcp", "mp-pipe", "mp-queue", "unix-seqpacket"} <= set(names)
    for cls in classes:
        assert transport_ref(cls.name) == f"{cls.__module__}:{cls.__qualname__}"
        assert load_transport(transport_ref(cls.name)) is cls is get_transport(cls.name)


def test_a_new_module_is_found_without_editing_a_list(tmp_path, monkeypatch) -> None:
    """A plug-in package with one module holding two transports (and a base without a name, skipped)."""
    package = tmp_path / "ipclab_plugtest"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "loop.py").write_text(textwrap.dedent('''
        """Two transports in one module."""
        from ipclab.transports.pipe import PipeTransport

        class _Shared(PipeTransport):
            pass

        class LoopB(_Shared):
            name = "loop-b"
            order = 2

        class LoopA(_Shared):
            name = "loop-a"
            order = 1
            hidden = True
    '''))
    (package / "_private.py").write_text("raise RuntimeError('modules starting with _ are not scanned')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = transports.discover("ipclab_plugtest")
    assert [cls.name for cls in found] == ["loop-a", "loop-b"]
    assert found[0].hidden and not found[1].hidden
    assert load_transport("ipclab_plugtest.loop:LoopB").name == "loop-b"
    monkeypatch.delitem(sys.modules, "ipclab_plugtest.loop")
    monkeypatch.delitem(sys.modules, "ipclab_plugtest")


def test_load_transport_refuses_what_is_not_a_transport() -> None:
    with pytest.raises(ValueError):
        load_transport("ipclab.transports.pipe")
    with pytest.raises(ValueError):
        load_transport("ipclab.transports.base:CellSpec")


def test_duplicate_names_are_a_bug(tmp_path, monkeypatch) -> None:
    package = tmp_path / "ipclab_duptest"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for mod in ("one", "two"):
        (package / f"{mod}.py").write_text("from ipclab.transports.pipe import PipeTransport\n\n"
                                           f"class T{mod}(PipeTransport):\n    name = 'same'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="defined twice"):
        transports.discover("ipclab_duptest")
    for mod in ("ipclab_duptest.one", "ipclab_duptest.two", "ipclab_duptest"):
        monkeypatch.delitem(sys.modules, mod, raising=False)


# -- declared capabilities and not_applicable --------------------------------------------------------------------
@pytest.mark.parametrize("name", REGISTERED)
def test_declared_properties(name: str) -> None:
    cls = get_transport(name)
    props = cls.properties()
    assert props["name"] == name
    for key in ("reliable", "ordered", "boundaries", "empty_ok", "spins", "multi_writer", "dials", "shared_kernel"):
        assert isinstance(props[key], bool), key
    limit = props["max_message"]
    assert limit is None or (isinstance(limit, int) and limit >= 0)
    if limit is not None:
        reason = cls.not_applicable(DUPLEX, limit + 1)
        assert reason and str(limit) in reason.replace(" ", "").replace(",", "")


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_not_applicable_follows_the_shape(name: str, shape_name: str) -> None:
    """The n/a reason comes from declared capabilities alone, and says what is missing."""
    cls = get_transport(name)
    shape = SHAPES[shape_name]
    limit = cls.limit()
    for size in (0, 1, 64, 4097, 1 << 20):
        reason = cls.not_applicable(shape, size)
        plain = cls.not_applicable(DUPLEX, size)  # what the size alone allows
        if plain is not None:
            assert reason is not None, (size, "a size that is n/a stays n/a in every shape")
            continue
        assert limit is None or size <= limit
        if shape.many_writers and not cls.multi_writer:
            assert reason and "one writer" in reason and "several writers" in reason and name in reason
        elif shape.dials and not cls.dials:
            assert reason and "dial" in reason and name in reason
            dialers = sorted(n for n in REGISTERED if get_transport(n).dials)
            assert {"tcp", "unix"} <= set(dialers) and all(d in reason for d in dialers)
        elif not (shape.many_writers and name == "fifo" and size > 4096):
            assert reason is None, (size, reason)


def test_fifo_several_writers_above_pipe_buf_is_na() -> None:
    cls = get_transport("fifo")
    assert cls.not_applicable(ONE_WAY, 1 << 20) is None  # one writer: any size
    assert cls.not_applicable(MANY_WRITERS, 4096) is None
    assert "PIPE_BUF" in cls.not_applicable(MANY_WRITERS, 4097)


def test_shared_kernel_is_declared_for_what_crosses_hosts() -> None:
    across = {name for name in REGISTERED if not get_transport(name).shared_kernel}
    assert across == {"tcp", "udp", "zmq-tcp"}


# -- setup and teardown in this process -------------------------------------------------------------------------
def _cases() -> list[tuple[str, str, int]]:
    """(transport, shape name, clients) for every available transport and every shape it can carry."""
    out = []
    for name in AVAILABLE:
        cls = get_transport(name)
        for shape_name, shape in SHAPES.items():
            if _size_for(cls, shape) is not None:
                out.append((name, shape_name, 3 if shape.many_writers else 1))
    return out


def _check_nothing_left(workdir: str, fds_before: set[int]) -> None:
    assert not [f for f in os.listdir(workdir) if f != "objects.jsonl"], os.listdir(workdir)
    assert open_fds() == fds_before


@pytest.mark.parametrize("name,shape_name,clients", _cases())
def test_setup_registers_everything_and_teardown_undoes_it(name: str, shape_name: str, clients: int,
                                                          tmp_path) -> None:
    cls = get_transport(name)
    shape = SHAPES[shape_name]
    before = open_fds()
    t = cls(str(tmp_path), CellSpec(shape=shape, size=_size_for(cls, shape) or 0, clients=clients))
    address = t.setup()
    try:
        roles = [("server", 0)] + [("client", i) for i in range(clients)]
        for role, index in roles:
            fds = t.fds_for(role, index)
            assert all(isinstance(fd, int) and os.fstat(fd) for fd in fds)  # live numbers from owned objects
        if any(t.fds_for(r, i) for r, i in roles):
            assert len(t.ledger)
        assert isinstance(address, dict)
        t.close_parent_fds()
        assert open_fds() == before  # the parent keeps no fd once the workers would hold theirs
    finally:
        t.teardown()
        t.teardown()  # idempotent
    _check_nothing_left(str(tmp_path), before)


@pytest.mark.parametrize("name", AVAILABLE)
def test_a_setup_failing_at_any_step_is_undone(name: str, tmp_path) -> None:
    """Make the k-th thing the transport registers be the last one before setup fails, for every k: teardown
    must leave no fd, file or OS object (the no_leaks fixture checks shm and queues)."""
    cls = get_transport(name)
    shape = DUPLEX if cls.not_applicable(DUPLEX, 64) is None else ONE_WAY
    size = _size_for(cls, shape) or 0

    class Boom(Exception):
        pass

    class FailingLedger(Ledger):
        def __init__(self, workdir: str, after: int) -> None:
            super().__init__(workdir)
            self.after = after

        def add(self, *args: Any, **kwargs: Any) -> None:
            super().add(*args, **kwargs)
            if len(self) == self.after:
                raise Boom

    whole = cls(str(tmp_path), CellSpec(shape=shape, size=size))
    whole.setup()
    steps = len(whole.ledger)
    whole.teardown()
    before = open_fds()
    for k in range(1, steps + 1):
        t = cls(str(tmp_path), CellSpec(shape=shape, size=size))
        t.ledger = FailingLedger(str(tmp_path), k)
        with pytest.raises(Boom):
            t.setup()
        t.teardown()
        _check_nothing_left(str(tmp_path), before)


# -- an echo with both endpoints in this process ----------------------------------------------------------------
def _echo_cases() -> list[tuple[str, int]]:
    out = []
    for name in AVAILABLE:
        cls = get_transport(name)
        size = _size_for(cls)
        assert size is not None, f"{name} carries no duplex message of 64, 16 or 0 bytes"
        out.append((name, size))
        if cls.empty_ok and size:
            out.append((name, 0))
    return out


@pytest.mark.parametrize("name,size", _echo_cases())
def test_echo_in_one_process(name: str, size: int, tmp_path) -> None:
    cls = get_transport(name)
    with rt_signals_blocked(cls):
        before = open_fds()
        t = cls(str(tmp_path), CellSpec(shape=DUPLEX, size=size))
        try:
            _, server, (client,) = pair(t)
            try:
                msg = memoryview(bytearray(os.urandom(size)))
                for _ in range(3):
                    buf = memoryview(bytearray(size))
                    client.send(msg)
                    assert server.recv_into(buf) == size and buf == msg
                    server.send(buf)
                    back = memoryview(bytearray(size))
                    assert client.recv_into(back) == size and back == msg
            finally:
                client.close()
                server.close()
        finally:
            t.teardown()
    _check_nothing_left(str(tmp_path), before)


def _writers() -> list[str]:
    return [name for name in AVAILABLE if get_transport(name).multi_writer
            and _size_for(get_transport(name), MANY_WRITERS) is not None]


@pytest.mark.parametrize("name", _writers())
def test_several_writers_reach_one_reader(name: str, tmp_path) -> None:
    """Every transport declaring multi_writer: three clients, one server, each client's message arrives whole."""
    cls = get_transport(name)
    size = 16
    assert cls.not_applicable(MANY_WRITERS, size) is None
    with rt_signals_blocked(cls):
        before = open_fds()
        t = cls(str(tmp_path), CellSpec(shape=MANY_WRITERS, size=size, clients=3))
        try:
            _, server, clients = pair(t, clients=3)
            try:
                for i, ch in enumerate(clients):
                    ch.send(memoryview(bytes([i]) * size))
                got = set()
                buf = memoryview(bytearray(size))
                for _ in clients:
                    assert server.recv_into(buf) == size
                    got.add(bytes(buf))
                assert got == {bytes([i]) * size for i in range(3)}
            finally:
                for ch in clients:
                    ch.close()
                server.close()
        finally:
            t.teardown()
    _check_nothing_left(str(tmp_path), before)


# -- through real workers ---------------------------------------------------------------------------------------
def _sizes_for(name: str, shape: TrafficShape) -> list[int]:
    cls = get_transport(name)
    return [s for s in SIZES if cls.not_applicable(shape, s) is None]


def _run(name: str, pattern: str, sizes: list[int], count: int = 60) -> dict:
    from ipclab.runner import Runner

    config = RunConfig(transports=(name,), patterns=(pattern,), sizes=tuple(sizes), count=count, warmup=5,
                       verify=True, timeout=30)
    return Runner(config).run()


@pytest.mark.process
@pytest.mark.parametrize("pattern", ["pingpong", "stream"])
@pytest.mark.parametrize("name", AVAILABLE)
def test_every_byte_arrives(name: str, pattern: str) -> None:
    from ipclab.patterns import get_pattern

    cls = get_transport(name)
    sizes = _sizes_for(name, get_pattern(pattern).SPEC.shape)
    assert sizes, f"{name} accepts none of {SIZES}"
    result = _run(name, pattern, sizes)
    assert len(result["cells"]) == len(sizes)
    for cell in result["cells"]:
        where = f"{name} {pattern} {cell['size_bytes']} B"
        assert cell["status"] == "ok", f"{where}: {cell['reason']}"
        (trial,) = cell["trials"]
        m = trial["metrics"]
        assert m["corrupt"] == 0, where
        if pattern == "pingpong":
            if cls.reliable:
                assert m["round_trips"] == 60, where
                assert m["lost"] == 0, where
            else:
                assert m["round_trips"] + m["lost"] == 60, where
            assert m["rtt_p50_us"] > 0, where
        else:
            assert m["sent"] == 60, where
            if cls.reliable:
                assert m["received"] == 60 and m["lost"] == 0, where
                assert m["reordered"] == 0 and m["duplicated"] == 0, where
            else:
                assert m["received"] + m["lost"] == 60, where
            assert m["received"] < 2 or m["msg_s"] > 0, where


@pytest.mark.process
@pytest.mark.parametrize("name", AVAILABLE)
def test_duration_mode(name: str) -> None:
    """A --duration trial ends by itself (end marker) and measures something."""
    from ipclab.runner import Runner

    cls = get_transport(name)
    size = next((s for s in (64, 1) if cls.not_applicable(ONE_WAY, s) is None), 0)
    config = RunConfig(transports=(name,), patterns=("pingpong", "stream"), sizes=(size,), duration=0.1,
                       warmup=5, timeout=30)
    result = Runner(config).run()
    if size == 0:  # only empty messages (signals): no end marker is possible, so a duration run is n/a
        assert all(c["status"] == "n/a" and "--count" in c["reason"] for c in result["cells"])
        return
    for cell in result["cells"]:
        assert cell["status"] == "ok", f"{name} {cell['pattern']}: {cell['reason']}"
        m = cell["trials"][0]["metrics"]
        assert (m.get("round_trips") or m.get("received")) > 0
