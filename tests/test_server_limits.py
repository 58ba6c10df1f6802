"""The servers' event loop against hostile clients, in this process (fast tier: no child process).

The loop is driven step by step (``serve_forever(stop_after=STEP)``) between the client's moves, so each test
is one thread and no sleep decides the outcome: a slowloris request must be dropped at its deadline from the
accept however it trickles in, an echo client that sends but never reads must be dropped although it keeps
sending, and a stop request or a half-finished close must never leave the Unix socket file behind.
"""

from __future__ import annotations

import os
import socket

import pytest

from ipclab.servers.conn import Stop
from ipclab.servers.echo import EchoService
from ipclab.servers.fileserver import FileService
from ipclab.servers.loop import BUFFER_LIMIT, Server, ServerConfig

STEP = 0.05  # s the loop runs between two client moves
IDLE = 0.5  # s: --idle-timeout of these servers
MAX_STEPS = 200  # >= 10 s of steps: far beyond every deadline here, and still a bound


def start(service, tmp_path, **kw) -> tuple[Server, list[str]]:
    lines: list[str] = []
    cfg = ServerConfig(service=service.name, kind="tcp", idle_timeout=IDLE, **kw)
    server = Server(cfg, service, log=lines.append)
    server.open()
    return server, lines


def address(server: Server) -> tuple[str, int]:
    assert server.sock is not None
    return server.sock.getsockname()[:2]


def test_a_trickled_request_is_dropped_at_its_deadline_from_the_accept(tmp_path) -> None:
    (tmp_path / "hello.txt").write_bytes(b"hello\n")
    server, log = start(FileService(str(tmp_path), 1024), tmp_path, max_clients=1)
    try:
        client = socket.create_connection(address(server), timeout=5)
        server.serve_forever(stop_after=STEP)
        assert server.active == 1
        for _ in range(MAX_STEPS):  # one byte per step: each byte is progress, none ends the request
            try:
                client.send(b"a")
            except OSError:  # reset: the server dropped it
                break
            server.serve_forever(stop_after=STEP)
            if not server.active:
                break
        assert server.active == 0, "a trickling client held its slot"
        assert any("request not complete 0.5 s after connecting" in line for line in log), log
        # The slot is free: a client with a whole request is answered.
        with socket.create_connection(address(server), timeout=5) as other:
            other.sendall(b"hello.txt\n")
            reply = b""
            for _ in range(MAX_STEPS):
                server.serve_forever(stop_after=STEP)
                other.setblocking(False)
                try:
                    chunk = other.recv(100)
                except BlockingIOError:
                    continue
                reply += chunk
                if not chunk or reply.endswith(b"hello\n"):
                    break
            assert reply == b"OK 6\nhello\n"
        client.close()
    finally:
        server.close()


def test_an_echo_client_that_sends_but_never_reads_is_dropped(tmp_path) -> None:
    server, log = start(EchoService(), tmp_path)
    try:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small: the echo backs up quickly
        client.connect(address(server))
        server.serve_forever(stop_after=STEP)
        (conn,) = server.conns.values()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.setblocking(False)
        # Less than the server's buffer limit waits for the client: the server keeps reading from it.
        left = BUFFER_LIMIT // 2
        for _ in range(MAX_STEPS):
            if left:
                try:
                    left -= client.send(b"x" * min(left, 16384))
                except BlockingIOError:
                    pass
            server.serve_forever(stop_after=STEP)
            if not left and conn.out:
                break
        assert conn.out and len(conn.out) < BUFFER_LIMIT  # read is still enabled: trickled bytes are progress
        dropped = False
        for _ in range(MAX_STEPS):  # keeps sending a byte per step, never reads
            try:
                client.send(b"y")
            except OSError:
                pass
            server.serve_forever(stop_after=STEP)
            if not server.conns:
                dropped = True
                break
        assert dropped, "a client that never reads held its slot by trickling bytes"
        assert server.active == 0
        assert any("read none of its replies for 0.5 s" in line for line in log), log
        client.close()
    finally:
        server.close()


def test_a_stop_request_ends_the_loop_without_waiting(tmp_path) -> None:
    server, _ = start(EchoService(), tmp_path)
    try:
        server.request_stop(15)
        with pytest.raises(Stop) as stopped:
            server.serve_forever()  # no client, no timeout: only the stop request can end it
        assert stopped.value.signum == 15
    finally:
        server.close()


def test_close_after_a_half_finished_close_still_removes_the_socket_file(tmp_path) -> None:
    path = str(tmp_path / "s.sock")
    server = Server(ServerConfig(service="echo", kind="unix", path=path, idle_timeout=IDLE), EchoService(),
                    log=lambda line: None)
    server.open()
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    try:
        server.serve_forever(stop_after=STEP)
        (conn,) = server.conns.values()
        server.sel.unregister(conn.sock)  # what an exception between two lines of _close() used to leave
        server.close()
        assert not os.path.exists(path)
        assert conn.sock.fileno() == -1
    finally:
        client.close()
        server.close()
