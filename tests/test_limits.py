"""Message-size limits read or measured on this kernel (limits.py and each transport's limit), and n/a reasons that
name the sysctl or knob raising them."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import run_cli

from ipclab.declarations import TrafficShape
from ipclab.transports import get_transport, limits

DUPLEX = TrafficShape(duplex=True)
ONE_WAY = TrafficShape(duplex=False, in_flight=None)


def _proc_int(path: str) -> int:
    with open(path, encoding="ascii") as f:
        return int(f.read())


# -- the helper ---------------------------------------------------------------------------------------------------
def test_read_int(tmp_path) -> None:
    (tmp_path / "v").write_text("8192\n")
    (tmp_path / "bad").write_text("many\n")
    assert limits.read_int(str(tmp_path / "v")) == 8192
    assert limits.read_int(str(tmp_path / "bad")) is None
    assert limits.read_int(str(tmp_path / "absent")) is None


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_SEQPACKET])
def test_sndbuf_limit_is_what_the_kernel_accepts(kind: int) -> None:
    limit, sndbuf = limits.sndbuf_limit(kind)
    assert 0 < limit < sndbuf
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    with a, b:
        assert a.send(bytes(limit), socket.MSG_DONTWAIT) == limit
        assert len(b.recv(limit + 1)) == limit
        with pytest.raises(OSError):
            a.send(bytes(limit + 1), socket.MSG_DONTWAIT)


def test_sndbuf_limited_reason_names_the_knob() -> None:
    class Probe(limits.SndbufLimited):
        name = "probe"
        sock_type = socket.SOCK_SEQPACKET

    limit = Probe.limit()
    assert limit == limits.sndbuf_limit(socket.SOCK_SEQPACKET)[0]
    reason = Probe.limit_reason(limit + 1)
    assert "probe" in reason and str(limit) in reason and "SO_SNDBUF" in reason and "net.core.wmem_default" in reason


def test_sysctl_reason() -> None:
    text = limits.sysctl_reason(16384, "SysV message limit", 8192, "kernel.msgmax")
    assert text == "16 KiB exceeds the SysV message limit of 8192 bytes (kernel.msgmax; raise it with sysctl -w " \
                   "kernel.msgmax=N)"


# -- each transport's limit -------------------------------------------------------------------------------------
def test_posix_mq_limit_comes_from_proc_and_names_the_sysctl() -> None:
    cls = get_transport("posix-mq")
    msgsize_max = _proc_int("/proc/sys/fs/mqueue/msgsize_max")
    assert cls.limit() <= msgsize_max
    assert cls.not_applicable(ONE_WAY, cls.limit()) is None
    reason = cls.not_applicable(ONE_WAY, cls.limit() + 1)
    assert reason and str(cls.limit()) in reason
    if cls.limit() == msgsize_max:
        assert "fs.mqueue.msgsize_max" in reason and "sysctl" in reason
    if cls.limit() < 16 * 1024:
        reason_16k = cls.not_applicable(DUPLEX, 16 * 1024)
        assert reason_16k and ("fs.mqueue.msgsize_max" in reason_16k or "ulimit -q" in reason_16k)


def test_sysv_mq_limit_comes_from_proc_and_names_the_sysctl() -> None:
    cls = get_transport("sysv-mq")
    msgmax, msgmnb = _proc_int("/proc/sys/kernel/msgmax"), _proc_int("/proc/sys/kernel/msgmnb")
    assert cls.limit() == min(msgmax, msgmnb)
    reason = cls.not_applicable(ONE_WAY, cls.limit() + 1)
    assert reason and str(cls.limit()) in reason
    assert ("kernel.msgmax" if msgmax <= msgmnb else "kernel.msgmnb") in reason and "sysctl" in reason
    if cls.limit() < 16 * 1024:
        assert "kernel.msg" in cls.not_applicable(DUPLEX, 16 * 1024)


@pytest.mark.process
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
    assert "net.core.wmem_default" in get_transport("unix-dgram").not_applicable(ONE_WAY, limit + 1)


def test_signal_carries_only_empty_messages() -> None:
    cls = get_transport("signal")
    assert cls.not_applicable(DUPLEX, 0) is None
    assert cls.not_applicable(ONE_WAY, 0) is None
    assert "no payload" in cls.not_applicable(DUPLEX, 1)
    assert cls.limit() == 0
