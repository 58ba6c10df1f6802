"""The classic servers, run for real (``python -m ipclab serve ...`` as a subprocess) and used by real clients on
loopback: concurrent clients get exact answers, traversal attempts are refused, stalled clients do not stop the
others, limits hold, and a signal leaves nothing behind."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from conftest import ROOT, run_cli

pytestmark = pytest.mark.process  # every test here runs a real server process

ADDRESS = re.compile(r"listening on (tcp|udp|unix) (\S+)")
TIMEOUT = 10.0  # s any single client operation may take before the test fails


@contextmanager
def serve(tmp_path, *args: str, expect_exit: int | None = None) -> Iterator[tuple[subprocess.Popen, object, str]]:
    """Start ``ipclab serve ARGS``; yield (process, address, stderr path); SIGTERM it and check it exited 143."""
    out_path, err_path = tmp_path / f"serve-{os.getpid()}-{time.monotonic_ns()}.out", tmp_path / "serve.err"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ipclab", "serve", *args], stdout=out, stderr=err, env=env,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        match = None
        while match is None:
            assert proc.poll() is None, f"server exited {proc.returncode}: {err_path.read_text()}"
            assert time.monotonic() < deadline, "server printed no address"
            match = ADDRESS.search(out_path.read_text())
            time.sleep(0.02)
        kind, where = match.groups()
        if kind == "unix":
            address: object = where
        else:
            host, _, port = where.rpartition(":")
            address = (host.strip("[]"), int(port))
        yield proc, address, str(err_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("server did not stop on SIGTERM") from None
    if expect_exit is not None:
        assert code == expect_exit, err_path.read_text()


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def connect(address: object) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(address)
        return sock
    return socket.create_connection(address, timeout=TIMEOUT)  # type: ignore[arg-type]


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += data
    return bytes(buf)


def echo_session(address: object, seed: int, rounds: int = 40) -> bool:
    rng = random.Random(seed)
    with connect(address) as sock:
        for _ in range(rounds):
            msg = rng.randbytes(rng.randint(1, 8192))
            sock.sendall(msg)
            if recv_exactly(sock, len(msg)) != msg:
                return False
    return True


def file_request(address: object, name: bytes) -> tuple[str, bytes]:
    """Send one request line; return (status, body) after checking the length header against the body."""
    with connect(address) as sock:
        sock.sendall(name + b"\n")
        reply = read_all(sock)
    header, _, body = reply.partition(b"\n")
    status, length = header.decode().split(" ")
    assert int(length) == len(body), f"{name!r}: header says {length}, body has {len(body)}"
    return status, body


# -- echo ------------------------------------------------------------------------------------------------
def test_echo_tcp_many_concurrent_clients(tmp_path) -> None:
    with serve(tmp_path, "echo", "--bind", "127.0.0.1:0", "-q") as (_, address, _err):
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda i: echo_session(address, i), range(16)))
        assert results == [True] * 16
        # A 2 MB blob, written while it is read back: backpressure slows it down but loses nothing.
        blob = random.Random(99).randbytes(2 * 1024 * 1024)
        with connect(address) as sock:
            sender = threading.Thread(target=lambda: (sock.sendall(blob), sock.shutdown(socket.SHUT_WR)))
            sender.start()
            echoed = read_all(sock)
            sender.join(TIMEOUT)
        assert echoed == blob


def test_echo_udp_each_datagram(tmp_path) -> None:
    with serve(tmp_path, "echo", "--udp", "-q") as (_, address, _err), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        for size in (1, 100, 1400, 9000, 65507):
            msg = random.Random(size).randbytes(size)
            sock.sendto(msg, address)
            assert sock.recv(70000) == msg, size


def test_echo_unix_sigterm_removes_socket(tmp_path) -> None:
    path = str(tmp_path / "echo.sock")
    with serve(tmp_path, "echo", "--unix", path, expect_exit=143) as (proc, address, _err):
        assert address == path
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert echo_session(address, 1, rounds=5)
    assert proc.returncode == 143
    assert not os.path.exists(path)


def test_sigint_exits_130(tmp_path) -> None:
    with serve(tmp_path, "time", "-q") as (proc, address, err):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 130
    assert "stopped by SIGINT" in read_text(err)


# -- time ------------------------------------------------------------------------------------------------
def check_time_line(line: bytes) -> None:
    text = line.decode("ascii")
    assert text.endswith("\n") and text.count("\n") == 1
    iso, _, ctime = text.strip().partition(" ")
    stamp = datetime.fromisoformat(iso)
    assert stamp.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 60
    parsed = time.strptime(ctime, "%a %b %d %H:%M:%S %Y")
    assert parsed.tm_min == stamp.minute and parsed.tm_sec == stamp.second


def test_time_tcp_unix_and_udp(tmp_path) -> None:
    with serve(tmp_path, "time", "-q") as (_, address, _err):
        with ThreadPoolExecutor(max_workers=8) as pool:
            lines = list(pool.map(lambda _: read_all(connect(address)), range(8)))
        for line in lines:
            check_time_line(line)  # one line, then the server closed
    path = str(tmp_path / "t.sock")
    with serve(tmp_path, "time", "--unix", path, "-q") as (_, address, _err):
        check_time_line(read_all(connect(address)))
    with serve(tmp_path, "time", "--udp", "-q") as (_, address, _err), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        for request in (b"", b"what time is it?"):
            sock.sendto(request, address)
            check_time_line(sock.recv(1000))


# -- file ------------------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "empty").write_bytes(b"")
    (root / "sub" / "big.bin").write_bytes(random.Random(7).randbytes(700_000))
    (tmp_path / "secret.txt").write_bytes(b"outside the root\n")
    os.symlink("sub/big.bin", root / "inside-link")
    os.symlink(str(tmp_path / "secret.txt"), root / "link-out")
    os.symlink("/dev/zero", root / "zero")
    os.symlink("..", root / "up")
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as listener:  # the socket file stays after the close
        listener.bind(str(root / "sock"))
    return root


def test_file_serves_regular_files_concurrently(tmp_path, tree) -> None:
    big = (tree / "sub" / "big.bin").read_bytes()
    with serve(tmp_path, "file", "--root", str(tree), "-q") as (_, address, _err):
        names = [b"hello.txt", b"sub/big.bin", b"./sub//big.bin", b"inside-link", b"empty"] * 4
        with ThreadPoolExecutor(max_workers=10) as pool:
            replies = list(pool.map(lambda n: file_request(address, n), names))
        for name, (status, body) in zip(names, replies):
            assert status == "OK", (name, body[:80])
            expected = {b"hello.txt": b"hello world\n", b"empty": b""}.get(name, big)
            assert body == expected, name
        with connect(address) as sock:  # a name ended by the client's shutdown instead of a newline
            sock.sendall(b"hello.txt")
            sock.shutdown(socket.SHUT_WR)
            assert read_all(sock) == b"OK 12\nhello world\n"


@pytest.mark.parametrize(("name", "code"), [
    (b"../secret.txt", "forbidden"),
    (b"sub/../../secret.txt", "forbidden"),
    (b"/etc/passwd", "forbidden"),
    (b"link-out", "forbidden"),
    (b"zero", "forbidden"),
    (b"up/secret.txt", "forbidden"),
    (b"sub", "not-a-file"),
    (b".", "not-a-file"),
    (b"fifo", "not-a-file"),
    (b"sock", "not-a-file"),
    (b"hello.txt/", "not-a-file"),
    (b"hello.txt/.", "not-a-file"),
    (b"sub/big.bin/", "not-a-file"),
    (b"missing.txt", "not-found"),
    (b"a\x00b", "bad-request"),
    (b"\xff\xfe", "bad-request"),
    (b"", "bad-request"),
    (b"x" * 5000, "bad-request"),
])
def test_file_refuses(tmp_path, tree, name: bytes, code: str) -> None:
    with serve(tmp_path, "file", "--root", str(tree), "-q") as (proc, address, _err):
        status, body = file_request(address, name)
        assert status == "ERR"
        assert body.decode().startswith(f"{code}: "), body
        assert b"outside the root" not in body
        assert file_request(address, b"hello.txt") == ("OK", b"hello world\n")  # still serving
        assert proc.poll() is None


def test_device_inside_root_is_refused(tmp_path) -> None:
    root = tmp_path / "devroot"
    root.mkdir()
    try:
        os.mknod(root / "null", 0o600 | 0o020000, os.makedev(1, 3))  # a character device, like /dev/null
    except (PermissionError, OSError):
        pytest.skip("cannot create a device node here")
    with serve(tmp_path, "file", "--root", str(root), "-q") as (_, address, _err):
        status, body = file_request(address, b"null")
        assert status == "ERR" and body.startswith(b"not-a-file: null is a device")


# -- many clients, stalled clients, limits ----------------------------------------------------------------
def test_stalled_clients_do_not_block_others_and_are_dropped(tmp_path) -> None:
    with serve(tmp_path, "echo", "--idle-timeout", "1") as (_, address, err):
        silent = connect(address)  # connects, never sends
        hog = connect(address)  # sends without ever reading
        hog.setblocking(False)
        chunk = b"x" * 65536
        sent = 0
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                sent += hog.send(chunk)
            except BlockingIOError:
                break
        assert sent > 256 * 1024  # more than the server buffers for one client
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(lambda i: echo_session(address, i, rounds=10), range(8))) == [True] * 8
        assert time.monotonic() - started < TIMEOUT
        ports = {silent.getsockname()[1], hog.getsockname()[1]}
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            log = read_text(err)
            if all(f"127.0.0.1:{p} dropped: no progress" in log for p in ports):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"stalled clients not dropped:\n{read_text(err)}")
        silent.settimeout(TIMEOUT)
        assert silent.recv(10) == b""  # the server closed it
        silent.close()
        hog.close()


def test_slowloris_clients_lose_their_slots_at_the_request_deadline(tmp_path, tree) -> None:
    """Four clients trickling a byte at a time hold all four slots only until the request deadline (--idle-timeout
    from the accept, not from their last byte); then a real request is answered while they still trickle."""
    with serve(tmp_path, "file", "--root", str(tree), "--max-clients", "4", "--idle-timeout", "1") as (_, address,
                                                                                                      err):
        loris = [connect(address) for _ in range(4)]
        time.sleep(0.2)  # accepted
        answered = None
        deadline = time.monotonic() + 4 * TIMEOUT
        while answered is None and time.monotonic() < deadline:
            for sock in loris:
                try:
                    sock.send(b"a")  # never a newline
                except OSError:
                    pass
            status, body = file_request(address, b"hello.txt")
            if status == "OK":
                answered = body
            else:
                assert body.startswith(b"busy: "), body
                time.sleep(0.3)
        assert answered == b"hello world\n", f"slots never freed:\n{read_text(err)}"
        assert read_text(err).count("dropped: request not complete 1 s after connecting") == 4
        for sock in loris:
            sock.close()


def test_max_clients_busy_reply(tmp_path, tree) -> None:
    with serve(tmp_path, "file", "--root", str(tree), "--max-clients", "2", "-q") as (_, address, _err):
        held = [connect(address), connect(address)]
        time.sleep(0.2)  # the server has accepted both
        status, body = file_request(address, b"hello.txt")
        assert status == "ERR" and body.startswith(b"busy: ")
        for sock in held:
            sock.close()
        deadline = time.monotonic() + TIMEOUT
        while file_request(address, b"hello.txt")[0] != "OK":
            assert time.monotonic() < deadline, "slots never freed"
            time.sleep(0.05)


# -- the command line ------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("nope",),
    ("file",),
    ("file", "--udp", "--root", "."),
    ("echo", "--tcp", "--udp"),
    ("echo", "--root", "."),
    ("echo", "--bind", "127.0.0.1:70000"),
    ("echo", "--bind", "no-such-host.invalid:1"),
    ("echo", "--bind", "[::1"),
    ("echo", "--bind", "[::1]9000"),
    ("echo", "--bind", "[]:9000"),
    ("echo", "--unix", "/nonexistent-dir/x.sock"),
    ("echo", "--unix", "/tmp/x.sock", "--bind", "127.0.0.1:1"),
    ("echo", "--max-clients", "0"),
    ("echo", "--idle-timeout", "soon"),
    ("file", "--root", "/nonexistent-dir"),
])
def test_bad_flags_one_line_exit_2(args: tuple[str, ...]) -> None:
    proc = run_cli("serve", *args, timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipclab: error: "), proc.stderr


def test_port_in_use_is_a_config_error(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = run_cli("serve", "echo", "--bind", f"127.0.0.1:{taken.getsockname()[1]}", timeout=30)
    assert proc.returncode == 2 and "already in use" in proc.stderr


def test_unix_path_in_use_or_stale(tmp_path) -> None:
    path = str(tmp_path / "busy.sock")
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(path)
        live.listen()
        proc = run_cli("serve", "echo", "--unix", path, timeout=30)
        assert proc.returncode == 2 and "already listening" in proc.stderr
    assert os.path.exists(path)  # stale now: its listener is closed
    with serve(tmp_path, "echo", "--unix", path, "-q") as (_, address, _err):
        assert echo_session(address, 3, rounds=3)
    assert not os.path.exists(path)


def test_help_shows_client_one_liners() -> None:
    proc = run_cli("serve", "--help", timeout=30)
    assert proc.returncode == 0
    for needle in ("nc -N 127.0.0.1 PORT", "nc -u -w1 127.0.0.1 PORT", "socat - UDP:127.0.0.1:PORT", "nc -N -U PATH",
                   "printf 'hello.txt\\n' | nc -N 127.0.0.1 PORT", "python3 -c"):
        assert needle in proc.stdout, needle
