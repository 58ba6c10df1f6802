"""unix-seqpacket: what its module docstring promises beyond the registry-wide suite (test_transports.py):
message boundaries kept, an empty message told from the end of the connection, the limit measured like
unix-dgram's, the largest record through real workers."""

from __future__ import annotations

import socket

import pytest
from inprocess import pair

from ipclab.config import RunConfig
from ipclab.declarations import TrafficShape
from ipclab.transports import get_transport
from ipclab.transports.base import CellSpec

DUPLEX = TrafficShape(duplex=True)



def _pair(workdir: str, size: int):
    t = get_transport("unix-seqpacket")(workdir, CellSpec(shape=DUPLEX, size=size))
    _, server, (client,) = pair(t)
    return t, server, client


def test_unix_seqpacket_keeps_message_boundaries(workdir: str) -> None:
    """Records of different sizes arrive one per receive, each whole, however large the buffer."""
    t, server, client = _pair(workdir, 64)
    try:
        records = [b"a", b"bb" * 100, b"c" * 3]
        for rec in records:
            client.send(memoryview(rec))
        buf = memoryview(bytearray(4096))
        assert [bytes(buf[:server.recv_into(buf)]) for _ in records] == records
        client.close()
        with pytest.raises(EOFError):  # the peer closed: EOF, not an empty message
            server.recv_into(buf)
    finally:
        client.close()
        server.close()
        t.teardown()


def test_unix_seqpacket_tells_an_empty_message_from_eof(workdir: str) -> None:
    t, server, client = _pair(workdir, 0)
    try:
        empty = memoryview(bytearray(0))
        server.set_timeout(0.1)
        with pytest.raises(TimeoutError):  # nothing queued: it waits, it does not return 0 at once
            server.recv_into(empty)
        client.send(empty)
        client.send(empty)
        assert server.recv_into(empty) == 0 and server.recv_into(empty) == 0
        client.send(memoryview(b"ab"))
        with pytest.raises(ValueError, match="2-byte message"):
            server.recv_into(empty)
        client.send(empty)
        client.close()
        assert server.recv_into(empty) == 0  # the last empty message, then the end
        with pytest.raises(EOFError):
            server.recv_into(empty)
    finally:
        client.close()
        server.close()
        t.teardown()


def test_unix_seqpacket_limit_is_measured_like_unix_dgram() -> None:
    from ipclab.transports import limits

    cls = get_transport("unix-seqpacket")
    limit, sndbuf = limits.sndbuf_limit(socket.SOCK_SEQPACKET)
    assert cls.limit() == limit
    assert cls.not_applicable(DUPLEX, limit) is None
    reason = cls.not_applicable(DUPLEX, limit + 1)
    assert reason and str(limit) in reason and str(sndbuf) in reason and "net.core.wmem_default" in reason
    assert cls.boundaries and cls.reliable and cls.ordered and cls.empty_ok and cls.multi_writer


@pytest.mark.process
def test_unix_seqpacket_through_workers_at_its_limit() -> None:
    """The largest record this kernel allows goes through real workers, every byte checked."""
    limit = get_transport("unix-seqpacket").limit()
    from ipclab.runner import Runner

    config = RunConfig(transports=("unix-seqpacket",), patterns=("pingpong", "stream"), sizes=(0, limit),
                       count=20, warmup=2, verify=True, timeout=30)
    for cell in Runner(config).run()["cells"]:
        assert cell["status"] == "ok", cell["reason"]
        assert cell["trials"][0]["metrics"]["corrupt"] == 0
