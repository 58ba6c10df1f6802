"""Mechanism-specific behaviour of fifo, unix-dgram, unix-seqpacket, posix-mq, sysv-mq, zmq-ipc/tcp, mp-pipe/queue
and signal.

The registry-wide suite (test_transports.py) checks setup/teardown, an echo, bytes and counts for every
transport, and test_limits.py the size limits; here: `ipclab list`, modes 0600, objects removed after a normal run
and after a worker is SIGKILLed mid-run, and the behaviours each module's docstring promises (unix-seqpacket's:
test_unixseqpacket.py).
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pytest
from conftest import ROOT, posix_mq_exists, run_cli
from inprocess import connect, pair, rt_signals_blocked

from ipclab.config import RunConfig
from ipclab.declarations import TrafficShape
from ipclab.runner import Runner
from ipclab.transports import TRANSPORTS, get_transport
from ipclab.transports.base import OBJECTS_FILE, RUN_FILE, CellSpec, Transport
from ipclab.transports.ledger import Ledger

MINE = ["fifo", "unix-dgram", "unix-seqpacket", "posix-mq", "sysv-mq", "zmq-ipc", "zmq-tcp", "mp-pipe", "mp-queue",
        "signal"]
DUPLEX = TrafficShape(duplex=True)
ONE_WAY = TrafficShape(duplex=False, in_flight=None)
MANY_WRITERS = TrafficShape(duplex=False, many_writers=True, in_flight=None)


def _proc_int(path: str) -> int:
    with open(path, encoding="ascii") as f:
        return int(f.read())


def _sysv_perms() -> dict[int, int]:
    """key -> permission bits of every System V message queue, from the kernel's own table."""
    out = {}
    with open("/proc/sysvipc/msg", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            out[int(fields[0])] = int(fields[2], 8)
    return out



def _setup(name: str, workdir: str, shape: TrafficShape = DUPLEX, size: int = 64, clients: int = 1) -> Transport:
    return get_transport(name)(workdir, CellSpec(shape=shape, size=size, clients=clients))


# -- ipclab list ---------------------------------------------------------------------------------------
@pytest.mark.process
def test_list_shows_every_mechanism_available() -> None:
    proc = run_cli("list", "--json", check=True)
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(TRANSPORTS)
    for name in MINE:
        cls = get_transport(name)
        assert rows[name]["available"], f"{name}: {rows[name]['unavailable_reason']}"
        for key in ("reliable", "ordered", "boundaries", "empty_ok", "max_message", "multi_writer", "dials",
                    "shared_kernel"):
            assert rows[name][key] == cls.properties()[key], (name, key)
    available = [n for n, r in rows.items() if r["available"]]
    assert available == [n for n in TRANSPORTS if get_transport(n).unavailable_reason() is None]
    if {"pipe", "unix", "tcp", "udp", "shm", "shm-spin", "mmap"} <= set(available):
        assert len(available) >= 14
    text = run_cli("list", check=True).stdout
    assert f"{len(available)} of {len(rows)} transports available" in text


# -- modes and teardown ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kind", [("fifo", stat.S_ISFIFO), ("unix-dgram", stat.S_ISSOCK),
                                       ("unix-seqpacket", stat.S_ISSOCK), ("zmq-ipc", stat.S_ISSOCK)])
def test_files_are_0600_and_removed(name: str, kind, workdir: str) -> None:
    t = _setup(name, workdir)
    try:
        t.setup()
        files = [os.path.join(workdir, f) for f in os.listdir(workdir) if "ipclab" in f]
        assert files
        for path in files:
            st = os.lstat(path)
            assert kind(st.st_mode), path
            assert stat.S_IMODE(st.st_mode) == 0o600, (path, oct(st.st_mode))
    finally:
        t.teardown()
        t.teardown()  # idempotent
    assert not [f for f in os.listdir(workdir) if "ipclab" in f]


def test_posix_mq_is_0600_tracked_and_removed(workdir: str) -> None:
    import posix_ipc

    t = _setup("posix-mq", workdir)
    try:
        address = t.setup()
        names = [address["c2s"], address["s2c"]]
        for name in names:
            assert name.startswith("/ipclab-")
            q = posix_ipc.MessageQueue(name)
            try:
                assert stat.S_IMODE(os.fstat(q.mqd).st_mode) == 0o600
                assert q.max_messages == _proc_int("/proc/sys/fs/mqueue/msg_max")
            finally:
                q.close()
        with open(os.path.join(workdir, OBJECTS_FILE), encoding="utf-8") as f:
            assert [json.loads(line) for line in f] == [{"kind": "posix-mq", "id": n} for n in names]
    finally:
        t.teardown()
    assert not any(posix_mq_exists(n) for n in names)


def test_sysv_mq_is_0600_tracked_and_removed(workdir: str) -> None:
    t = _setup("sysv-mq", workdir)
    try:
        key = t.setup()["key"]
        assert _sysv_perms()[key] == 0o600
        with open(os.path.join(workdir, OBJECTS_FILE), encoding="utf-8") as f:
            assert {"kind": "sysv-mq", "id": key} in [json.loads(line) for line in f]
    finally:
        t.teardown()
    assert key not in _sysv_perms()


@pytest.mark.process
def test_normal_run_leaves_no_queue(monkeypatch) -> None:
    tracked: list[tuple[str, object]] = []
    real_record = Ledger.record
    monkeypatch.setattr(Ledger, "record", lambda self, kind, ident: (tracked.append((kind, ident)),
                                                                      real_record(self, kind, ident)))
    config = RunConfig(transports=("posix-mq", "sysv-mq"), patterns=("pingpong", "stream"), sizes=(0, 100),
                       count=30, warmup=2, timeout=30)
    result = Runner(config).run()
    assert all(c["status"] == "ok" for c in result["cells"]), [c["reason"] for c in result["cells"]]
    assert {k for k, _ in tracked} == {"posix-mq", "sysv-mq"}
    assert not [i for k, i in tracked if k == "posix-mq" and posix_mq_exists(i)]
    assert not set(_sysv_perms()) & {i for k, i in tracked if k == "sysv-mq"}


def _wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.process
@pytest.mark.parametrize("name", ["fifo", "unix-dgram", "unix-seqpacket", "posix-mq", "sysv-mq", "zmq-ipc",
                                  "mp-queue"])
def test_sigkill_of_a_worker_mid_run_leaves_nothing(name: str, tmp_path) -> None:
    """A SIGKILLed worker fails the cell; its queue / FIFOs / socket files and the run's directory are gone."""
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "ipclab", "run", "-t", name, "-p", "pingpong", "-s", "64",
                             "-n", "5000000", "--timeout", "60", "-q", "-o", str(tmp_path / "r.json"), "-f", "csv"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        me = psutil.Process(proc.pid)

        def running_workers():
            kids = [p for p in me.children() if "ipclab.worker" in " ".join(p.cmdline())]
            return kids if len(kids) == 2 and all(p.cpu_times().user > 0.05 for p in kids) else None

        workers = _wait_for(running_workers, "two busy workers")
        (workdir,) = [d for d in tmp_path.iterdir() if d.name.startswith("ipclab-")]
        assert json.loads((workdir / RUN_FILE).read_text())["pid"] == proc.pid
        objects_file = workdir / OBJECTS_FILE
        records = [json.loads(x) for x in objects_file.read_text().splitlines()] if objects_file.exists() else []
        files = [p for p in workdir.iterdir() if ".fifo" in p.name or "sock" in p.name]
        assert records or files or name == "mp-queue"
        workers[0].kill()  # the echo server
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "SIGKILL" in err, err
    assert not workdir.exists()
    for rec in records:
        if rec["kind"] == "posix-mq":
            assert not posix_mq_exists(rec["id"])
        elif rec["kind"] == "sysv-mq":
            assert rec["id"] not in _sysv_perms()


# -- behaviour of each mechanism, in one process --------------------------------------------------------
def _pair(name: str, workdir: str, shape: TrafficShape = DUPLEX, size: int = 64):
    """(transport, server channel, client channel), both ends opened in this process."""
    t = _setup(name, workdir, shape, size)
    _, server, (client,) = pair(t)
    return t, server, client


def test_fifo_opens_in_either_start_order(workdir: str) -> None:
    """The server may open first or last: the shared open order cannot deadlock."""
    t = _setup("fifo", workdir)
    address = t.setup()
    try:
        box: dict[str, object] = {}
        th = threading.Thread(target=lambda: box.update(server=connect(t, address, "server")), daemon=True)
        th.start()
        time.sleep(0.05)  # let the server block in open() first this time
        client = connect(t, address, "client")
        th.join(10)
        server = box["server"]
        client.send(memoryview(b"x"))
        buf = bytearray(1)
        assert server.recv_into(memoryview(buf)) == 1 and buf == b"x"
        client.close()
        with pytest.raises(EOFError):  # the only writer closed
            server.recv_into(memoryview(bytearray(1)))
        server.close()
    finally:
        t.teardown()


def test_unix_dgram_empty_message_waits_for_a_datagram(workdir: str) -> None:
    """recv(2) of 0 bytes returns at once on Linux; the channel must really wait for the empty datagram."""
    t, server, client = _pair("unix-dgram", workdir, size=0)
    try:
        empty = memoryview(bytearray(0))
        server.set_timeout(0.1)
        with pytest.raises(TimeoutError):
            server.recv_into(empty)
        client.send(empty)
        assert server.recv_into(empty) == 0
        client.send(memoryview(b"ab"))
        with pytest.raises(ValueError):
            server.recv_into(empty)
    finally:
        client.close()
        server.close()
        t.teardown()


def test_zmq_socket_types_per_shape(workdir: str) -> None:
    import zmq

    for shape, server_type, client_type in ((DUPLEX, zmq.PAIR, zmq.PAIR), (ONE_WAY, zmq.PULL, zmq.PUSH)):
        t, server, client = _pair("zmq-tcp", workdir, shape=shape)
        try:
            assert (server.sock.type, client.sock.type) == (server_type, client_type)
            assert server.sock.getsockopt(zmq.LINGER) == 0
        finally:
            client.close()
            server.close()
            t.teardown()


def test_zmq_close_does_not_hang_with_unsent_data(workdir: str) -> None:
    """A PUSH whose peer is gone still closes at once (linger 0), so a worker can always exit."""
    t, server, client = _pair("zmq-ipc", workdir, shape=ONE_WAY, size=64)
    server.close()
    for _ in range(50):
        client.send(memoryview(bytes(64)))
    closer = threading.Thread(target=client.close, daemon=True)
    closer.start()
    closer.join(10)
    t.teardown()
    assert not closer.is_alive()


def test_mp_queue_really_pickles_through_the_pipe(workdir: str) -> None:
    """mp-queue keeps the real Queue path: the bytes on the pipe are a pickle written by the feeder thread."""
    from multiprocessing.connection import Connection

    t = _setup("mp-queue", workdir, shape=ONE_WAY)
    address = t.setup()
    client = connect(t, address, "client")
    try:
        client.send(memoryview(b"payload"))
        spy = Connection(os.dup(address["c2s"][0]), writable=False)
        assert spy.poll(10)
        frame = spy.recv_bytes()
        spy.close()
        assert frame[:1] == b"\x80"  # a pickle protocol header
        assert pickle.loads(frame) == b"payload"  # our own frame, from our own pipe
        assert any(th.name == "QueueFeederThread" for th in threading.enumerate())
    finally:
        client.close()
        t.teardown()


@pytest.mark.process
def test_signal_stream_is_reliable_beyond_rlimit_sigpending(tmp_path) -> None:
    """With RLIMIT_SIGPENDING at 32, a 3000-signal stream still delivers every one (sigqueue EAGAIN -> retry);
    kill() would have dropped the excess silently and the counted consumer would never finish."""
    out = tmp_path / "r.json"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_SIGPENDING, (32, 32))

    proc = subprocess.run([sys.executable, "-m", "ipclab", "run", "-t", "signal", "-p", "stream", "-s", "0",
                           "-n", "3000", "--warmup", "0", "--timeout", "20", "-q", "-o", str(out), "-f", "csv"],
                          env=env, capture_output=True, text=True, timeout=60, preexec_fn=low_limit)
    assert proc.returncode == 0, proc.stderr
    (cell,) = json.loads(out.read_text())["cells"]
    m = cell["trials"][0]["metrics"]
    assert m["sent"] == 3000 and m["received"] == 3000 and m["lost"] == 0


def test_signal_pingpong_blocks_signals_and_echoes() -> None:
    """Each worker blocks both signals in connect(): a pair in this process exchanges them with sigwait."""
    cls = get_transport("signal")
    t = cls(tempfile.gettempdir(), CellSpec(DUPLEX, 0))
    address = {**t.setup(), "pids": {"server": os.getpid(), "client": os.getpid()}}
    with rt_signals_blocked(cls):
        server = t.connect(address, "server")
        client = t.connect(address, "client")
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set())
        assert {address["c2s"], address["s2c"]} <= blocked
        empty = memoryview(bytearray(0))
        for _ in range(3):
            client.send(empty)
            assert server.recv_into(empty) == 0
            server.send(empty)
            assert client.recv_into(empty) == 0
        server.set_timeout(0.05)
        with pytest.raises(TimeoutError):
            server.recv_into(empty)
        with pytest.raises(ValueError):
            client.send(memoryview(b"x"))


def test_signal_queues_when_more_than_one_message_is_in_flight() -> None:
    """kill() only where at most one signal per direction is ever pending; sigqueue() (back-pressure on EAGAIN)
    for a writer that may run ahead."""
    cls = get_transport("signal")
    for shape, queued in ((DUPLEX, False), (ONE_WAY, True), (TrafficShape(duplex=True, in_flight=8), True)):
        assert cls(tempfile.gettempdir(), CellSpec(shape, 0)).setup()["queued"] is queued
