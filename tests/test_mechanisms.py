"""Mechanism-specific behaviour of fifo, unix-dgram, posix-mq, sysv-mq, zmq-ipc/tcp, mp-pipe/queue and signal.

The registry-wide suite (test_transports.py) checks bytes, counts and both patterns for every transport; here:
limits read from this kernel and n/a reasons that name the sysctl, `ipclab list`, modes 0600, objects removed
after a normal run and after a worker is SIGKILLed mid-run, and the behaviours each module's docstring promises.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pytest
from conftest import ROOT, posix_mq_exists, run_cli

from ipclab.config import RunConfig
from ipclab.runner import Runner
from ipclab.transports import TRANSPORTS, get_transport
from ipclab.transports.base import OBJECTS_FILE, RUN_FILE, CellSpec, Transport

MINE = ["fifo", "unix-dgram", "posix-mq", "sysv-mq", "zmq-ipc", "zmq-tcp", "mp-pipe", "mp-queue", "signal"]


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


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="mechtest-")
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def _setup(name: str, workdir: str, pattern: str = "pingpong", size: int = 64, clients: int = 1) -> Transport:
    return get_transport(name)(workdir, CellSpec(pattern=pattern, size=size, clients=clients))


# -- limits --------------------------------------------------------------------------------------------
def test_posix_mq_limit_comes_from_proc_and_names_the_sysctl() -> None:
    cls = get_transport("posix-mq")
    msgsize_max = _proc_int("/proc/sys/fs/mqueue/msgsize_max")
    assert cls.limit() <= msgsize_max
    assert cls.not_applicable("stream", cls.limit()) is None
    reason = cls.not_applicable("stream", cls.limit() + 1)
    assert reason and str(cls.limit()) in reason
    if cls.limit() == msgsize_max:
        assert "fs.mqueue.msgsize_max" in reason and "sysctl" in reason
    if cls.limit() < 16 * 1024:
        reason_16k = cls.not_applicable("pingpong", 16 * 1024)
        assert reason_16k and ("fs.mqueue.msgsize_max" in reason_16k or "ulimit -q" in reason_16k)


def test_sysv_mq_limit_comes_from_proc_and_names_the_sysctl() -> None:
    cls = get_transport("sysv-mq")
    msgmax, msgmnb = _proc_int("/proc/sys/kernel/msgmax"), _proc_int("/proc/sys/kernel/msgmnb")
    assert cls.limit() == min(msgmax, msgmnb)
    reason = cls.not_applicable("stream", cls.limit() + 1)
    assert reason and str(cls.limit()) in reason
    assert ("kernel.msgmax" if msgmax <= msgmnb else "kernel.msgmnb") in reason and "sysctl" in reason
    if cls.limit() < 16 * 1024:
        assert "kernel.msg" in cls.not_applicable("pingpong", 16 * 1024)


def test_a_run_reports_16k_queues_as_na_with_the_sysctl(tmp_path) -> None:
    out = tmp_path / "r.json"
    proc = run_cli("run", "-t", "posix-mq,sysv-mq", "-p", "stream", "-s", "16K", "-q", "-o", str(out), "-f", "csv")
    assert proc.returncode == 0, proc.stderr
    cells = json.loads(out.read_text())["cells"]
    assert len(cells) == 2
    for cell in cells:
        limit = get_transport(cell["transport"]).limit()
        if limit >= 16 * 1024:
            pytest.skip(f"{cell['transport']} carries 16 KiB on this kernel")
        assert cell["status"] == "n/a"
        assert "sysctl" in cell["reason"] and str(limit) in cell["reason"]


def test_unix_dgram_limit_is_what_the_kernel_accepts() -> None:
    limit = get_transport("unix-dgram").limit()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        assert a.send(bytes(limit), socket.MSG_DONTWAIT) == limit
        assert len(b.recv(limit + 1)) == limit
        with pytest.raises(OSError):
            a.send(bytes(limit + 1), socket.MSG_DONTWAIT)
    assert "net.core.wmem_default" in get_transport("unix-dgram").not_applicable("stream", limit + 1)


def test_signal_carries_only_empty_messages() -> None:
    cls = get_transport("signal")
    assert cls.not_applicable("pingpong", 0) is None
    assert cls.not_applicable("stream", 0) is None
    assert "no payload" in cls.not_applicable("pingpong", 1)
    assert cls.limit() == 0


def test_fifo_fan_in_above_pipe_buf_is_na() -> None:
    cls = get_transport("fifo")
    assert cls.not_applicable("stream", 1 << 20) is None  # one writer: any size
    assert cls.not_applicable("fanin", 4096) is None
    assert "PIPE_BUF" in cls.not_applicable("fanin", 4097)


# -- ipclab list ---------------------------------------------------------------------------------------
def test_list_shows_every_mechanism_available() -> None:
    proc = run_cli("list", "--json", check=True)
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(TRANSPORTS)
    for name in MINE:
        cls = get_transport(name)
        assert rows[name]["available"], f"{name}: {rows[name]['unavailable_reason']}"
        for key in ("reliable", "ordered", "boundaries", "empty_ok", "max_message", "multi_writer"):
            assert rows[name][key] == cls.properties()[key], (name, key)
    available = [n for n, r in rows.items() if r["available"]]
    assert available == [n for n in TRANSPORTS if get_transport(n).unavailable_reason() is None]
    if {"pipe", "unix", "tcp", "udp", "shm", "shm-spin", "mmap"} <= set(available):
        assert len(available) >= 14
    text = run_cli("list", check=True).stdout
    assert f"{len(available)} of {len(rows)} transports available" in text


# -- modes and teardown ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kind", [("fifo", stat.S_ISFIFO), ("unix-dgram", stat.S_ISSOCK),
                                       ("zmq-ipc", stat.S_ISSOCK)])
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


def test_normal_run_leaves_no_queue(monkeypatch) -> None:
    tracked: list[tuple[str, object]] = []
    real_track = Transport.track
    monkeypatch.setattr(Transport, "track", lambda self, kind, ident: (tracked.append((kind, ident)),
                                                                        real_track(self, kind, ident)))
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


@pytest.mark.parametrize("name", ["fifo", "unix-dgram", "posix-mq", "sysv-mq", "zmq-ipc", "mp-queue"])
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
def _connect(t: Transport, address: dict, role: str, index: int = 0):
    """Open an endpoint in this process the way a worker does: on its own copies of the passed fds (a worker
    inherits copies; the parent's originals are closed by close_parent_fds)."""
    passed = set(t.fds_for("server")) | {fd for i in range(t.spec.clients) for fd in t.fds_for("client", i)}
    dups: dict[int, int] = {}

    def copy(value):
        if isinstance(value, dict):
            return {k: v if k == "pids" else copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and value in passed:
            return dups.setdefault(value, os.dup(value))
        return value

    return t.connect(copy(address), role, index)


def _pair(name: str, workdir: str, pattern: str = "pingpong", size: int = 64):
    """(transport, server channel, client channel), both ends opened in this process."""
    t = _setup(name, workdir, pattern, size)
    address = t.setup()
    address["pids"] = {"server": os.getpid(), "client": os.getpid()}
    box: dict[str, object] = {}
    # Blocking opens (FIFOs) pair up only when both sides open: the client opens in a thread.
    th = threading.Thread(target=lambda: box.update(client=_connect(t, address, "client")), daemon=True)
    th.start()
    server = _connect(t, address, "server")
    th.join(10)
    t.close_parent_fds()
    assert "client" in box, f"{name}: client side never connected"
    return t, server, box["client"]


@pytest.mark.parametrize("name", ["fifo", "unix-dgram", "posix-mq", "sysv-mq", "zmq-ipc", "zmq-tcp", "mp-pipe",
                                  "mp-queue"])
def test_echo_in_one_process(name: str, workdir: str) -> None:
    t, server, client = _pair(name, workdir, size=1000)
    try:
        msg = memoryview(bytearray(os.urandom(1000)))
        buf = memoryview(bytearray(1000))
        client.send(msg)
        assert server.recv_into(buf) == 1000 and buf == msg
        server.send(buf)
        back = memoryview(bytearray(1000))
        assert client.recv_into(back) == 1000 and back == msg
        if get_transport(name).empty_ok:
            client.send(memoryview(b""))
            assert server.recv_into(memoryview(bytearray(0))) == 0
    finally:
        client.close()
        server.close()
        t.teardown()


def test_fifo_opens_in_either_start_order(workdir: str) -> None:
    """The server may open first or last: the shared open order cannot deadlock."""
    t = _setup("fifo", workdir)
    address = t.setup()
    try:
        box: dict[str, object] = {}
        th = threading.Thread(target=lambda: box.update(server=_connect(t, address, "server")), daemon=True)
        th.start()
        time.sleep(0.05)  # let the server block in open() first this time
        client = _connect(t, address, "client")
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


@pytest.mark.parametrize("name", ["unix-dgram", "posix-mq", "sysv-mq", "zmq-ipc", "fifo"])
def test_multi_writer_fan_in(name: str, workdir: str) -> None:
    cls = get_transport(name)
    assert cls.multi_writer
    t = _setup(name, workdir, pattern="fanin", size=16, clients=3)
    address = t.setup()
    box: dict[int, object] = {}

    def open_client(i: int) -> None:
        box[i] = _connect(t, address, "client", i)

    threads = [threading.Thread(target=open_client, args=(i,), daemon=True) for i in range(3)]
    for th in threads:
        th.start()
    server = _connect(t, address, "server")
    for th in threads:
        th.join(10)
    t.close_parent_fds()
    try:
        assert sorted(box) == [0, 1, 2]
        for i, ch in box.items():
            ch.send(memoryview(bytes([i]) * 16))
        got = set()
        buf = bytearray(16)
        for _ in range(3):
            assert server.recv_into(memoryview(buf)) == 16
            got.add(bytes(buf))
        assert got == {bytes([i]) * 16 for i in range(3)}
    finally:
        for ch in box.values():
            ch.close()
        server.close()
        t.teardown()


def test_zmq_socket_types_per_pattern(workdir: str) -> None:
    import zmq

    for pattern, server_type, client_type in (("pingpong", zmq.PAIR, zmq.PAIR), ("stream", zmq.PULL, zmq.PUSH)):
        t, server, client = _pair("zmq-tcp", workdir, pattern=pattern)
        try:
            assert (server.sock.type, client.sock.type) == (server_type, client_type)
            assert server.sock.getsockopt(zmq.LINGER) == 0
        finally:
            client.close()
            server.close()
            t.teardown()


def test_zmq_close_does_not_hang_with_unsent_data(workdir: str) -> None:
    """A PUSH whose peer is gone still closes at once (linger 0), so a worker can always exit."""
    t, server, client = _pair("zmq-ipc", workdir, pattern="stream", size=64)
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

    t = _setup("mp-queue", workdir, pattern="stream")
    address = t.setup()
    client = _connect(t, address, "client")
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
    t = get_transport("signal")(tempfile.gettempdir(), CellSpec("pingpong", 0))
    address = {**t.setup(), "pids": {"server": os.getpid(), "client": os.getpid()}}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    try:
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
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
