"""The measured workloads reqrep, fanin and connect: end to end through the CLI, every byte checked on the
transports that carry them, n/a with a reason elsewhere, and their checks able to fail."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from conftest import run_cli

from ipclab.config import RunConfig
from ipclab.patterns import PATTERNS, common, fanin, get_spec, reqrep
from ipclab.runner import Runner
from ipclab.transports.multistream import MultiStreamChannel


@pytest.mark.process
def test_cli_every_cell_is_a_figure_or_na(tmp_path) -> None:
    out = tmp_path / "run.json"
    proc = run_cli("run", "--pattern", "pingpong,reqrep,fanin,connect", "--transport", "tcp,unix,udp",
                   "-s", "64,4K", "-n", "200", "--clients", "3", "-q", "-o", str(out), timeout=180)
    assert proc.returncode == 0, proc.stderr
    for title in ("reqrep: request to last reply byte, p50", "fanin: fairness across producers",
                  "connect: connect + message + close, p50"):
        assert title in proc.stdout
    result = json.loads(out.read_text())
    cells = {(c["pattern"], c["transport"], c["size_bytes"]): c for c in result["cells"]}
    assert len(cells) == 4 * 3 * 2
    headline = {"pingpong": "rtt_p50_us", "reqrep": "ttlb_p50_us", "fanin": "mb_s", "connect": "conn_p50_us"}
    for (pattern, transport, size), cell in cells.items():
        where = f"{pattern} {transport} {size}"
        if pattern == "connect" and transport == "udp":
            assert cell["status"] == "n/a" and "tcp and unix" in cell["reason"], where
            continue
        assert cell["status"] == "ok", f"{where}: {cell['reason']}"
        m = cell["trials"][0]["metrics"]
        assert m["corrupt"] == 0, where
        assert cell["summary"][headline[pattern]] > 0, where
        if pattern == "reqrep":
            assert m["sha256_checked"] >= 1 and m["reply_bytes"] == size and m["request_bytes"] == 16, where
            if transport != "udp":
                assert m["requests"] == 200 and m["lost"] == 0, where
        if pattern == "fanin":
            assert m["producers"] == 3 and sum(m["per_producer"]) == m["received"], where
            assert m["sent"] == 600, where
            if transport != "udp":
                assert m["received"] == 600 and m["per_producer"] == [200, 200, 200], where
        if pattern == "connect":
            assert m["connections"] == 200 and m["served"] == 200 and m["short"] == 0, where


@pytest.mark.process
@pytest.mark.parametrize("name", ["tcp", "unix", "pipe", "udp"])
def test_reqrep_verifies_every_reply(name: str) -> None:
    sizes = (1, 17, 65536 + 7) if name != "udp" else (1, 16, 65507)
    config = RunConfig(transports=(name,), patterns=("reqrep",), sizes=sizes, count=50, warmup=3, verify=True,
                       timeout=30)
    for cell in Runner(config).run()["cells"]:
        where = f"{name} {cell['size_bytes']}"
        assert cell["status"] == "ok", f"{where}: {cell['reason']}"
        m = cell["trials"][0]["metrics"]
        assert m["corrupt"] == 0, where
        assert m["requests"] + m["lost"] == 50, where
        assert m["sha256_checked"] == m["requests"], where
        if name != "udp":
            assert m["requests"] == 50, where


@pytest.mark.process
def test_fanin_and_connect_na_with_reason() -> None:
    config = RunConfig(transports=("pipe", "tcp"), patterns=("fanin", "connect", "reqrep"), sizes=(0, 8, 64),
                       count=20, clients=2, timeout=30)
    cells = {(c["pattern"], c["transport"], c["size_bytes"]): c for c in Runner(config).run()["cells"]}
    assert "multi_writer" in cells[("fanin", "pipe", 64)]["reason"]
    assert "16 B or more" in cells[("fanin", "tcp", 8)]["reason"]
    assert "tcp and unix" in cells[("connect", "pipe", 64)]["reason"]
    assert cells[("reqrep", "tcp", 0)]["status"] == "n/a"
    for key in (("fanin", "tcp", 64), ("connect", "tcp", 8), ("reqrep", "tcp", 8), ("reqrep", "pipe", 64)):
        assert cells[key]["status"] == "ok", f"{key}: {cells[key]['reason']}"


@pytest.mark.process
@pytest.mark.parametrize("name", ["unix", "udp"])
def test_fanin_duration_ends_by_markers(name: str) -> None:
    config = RunConfig(transports=(name,), patterns=("fanin",), sizes=(64,), duration=0.3, warmup=5, clients=2,
                       timeout=30)
    (cell,) = Runner(config).run()["cells"]
    assert cell["status"] == "ok", cell["reason"]
    m = cell["trials"][0]["metrics"]
    assert m["received"] > 0 and len(m["per_producer"]) == 2
    assert cell["trials"][0]["raw"]["server"]["ended_by"] in ("end markers", "idle timeout")


@pytest.mark.process
@pytest.mark.parametrize("name", list(PATTERNS))
def test_every_pattern_measures_its_declared_figures(name: str) -> None:
    """Over tcp (reliable, several writers, dials): every sample counted, the headline and every table's
    figure recorded or explained, whatever the pattern."""
    from ipclab.report.tables import missing_reason

    spec = get_spec(name)
    config = RunConfig(transports=("tcp",), patterns=(name,), sizes=(64,), count=40, warmup=2, clients=2,
                       timeout=30)
    (cell,) = Runner(config).run()["cells"]
    assert cell["status"] == "ok", cell["reason"]
    m = cell["trials"][0]["metrics"]
    assert m.get("corrupt", 0) == 0
    if spec.sample_key:
        writers = 2 if spec.shape.many_writers else 1
        assert m[spec.sample_key] == 40 * writers
    assert cell["summary"][spec.headline] > 0
    for key in spec.tables:
        assert key in cell["summary"] or missing_reason(cell, key), key
    if spec.quantiles_key:
        assert len(m[spec.quantiles_key]) > 0


# -- the checks themselves can fail ----------------------------------------------------------------------
class _FakeReplier:
    """An in-process 'server' that answers each request with the payload, one byte of the body flipped."""

    def __init__(self, payload: bytes, corrupt_at: int | None) -> None:
        self.payload, self.corrupt_at, self.request = payload, corrupt_at, b""

    def set_timeout(self, seconds: float | None) -> None:
        pass

    def send(self, msg: memoryview) -> None:
        self.request = bytes(msg)

    def recv_into(self, buf: memoryview) -> int:
        reply = bytearray(self.payload)
        reply[: len(self.request)] = self.request
        if self.corrupt_at is not None:
            reply[self.corrupt_at] ^= 1
        buf[:] = reply
        return len(reply)


@pytest.mark.parametrize("verify", [False, True])
def test_reqrep_sha256_catches_a_corrupt_body(verify: bool) -> None:
    ctx = common.Context(size=100, count=10, duration=None, warmup=0, seed=5, verify=verify, reliable=True)
    good = reqrep.run("client", 0, _FakeReplier(ctx.payload, None), ctx)
    assert good["corrupt"] == 0 and good["n"] == 10
    ctx = common.Context(size=100, count=10, duration=None, warmup=0, seed=5, verify=verify, reliable=True)
    bad = reqrep.run("client", 0, _FakeReplier(ctx.payload, 60), ctx)
    assert bad["corrupt"] == (10 if verify else 1)


def test_fanin_detects_reordering_per_producer() -> None:
    ctx = common.Context(size=32, count=3, duration=None, warmup=0, seed=1, verify=False, reliable=True, clients=2)
    msgs = []
    for producer, number in ((0, 0), (1, 0), (0, 2)):  # producer 0 skips its message 1
        m = bytearray(ctx.payload)
        common.HEADER.pack_into(m, 0, (producer << fanin.TAG_SHIFT) | number, 0)
        msgs.append(bytes(m))

    class Feed:
        def recv_into(self, buf: memoryview) -> int:
            buf[:] = msgs.pop(0)
            return len(buf)

    with pytest.raises(common.IntegrityError, match="producer 0: got message 2, expected 1"):
        fanin.run("server", 0, Feed(), ctx)


def test_fairness_figures() -> None:
    assert fanin.fairness([5, 5, 5])["fair_jain"] == pytest.approx(1.0)
    skewed = fanin.fairness([9, 0, 0])
    assert skewed["fair_jain"] == pytest.approx(1 / 3) and skewed["share_min_pct"] == 0.0
    assert skewed["share_max_pct"] == 100.0
    assert fanin.fairness([])["fair_jain"] is None


def test_fanin_without_a_contended_window_explains_its_empty_fairness() -> None:
    ctx = common.Context(size=64, count=2, duration=None, warmup=0, seed=1, verify=False, reliable=True, clients=2)
    probe = {"cpu_user_s": 0.0, "cpu_sys_s": 0.0}
    consumer = {"received": 4, "per_producer": [2, 2], "window": None, "reordered": 0, "corrupt": 0,
                "first_ns": 0, "last_ns": 1000, "latency": "", "probe": probe}
    producers = {f"client{i}": {"sent": 2, "probe": probe} for i in range(2)}
    figures = fanin.metrics({"server": consumer, **producers}, ctx)
    assert figures["fair_jain"] is None and figures["fair_window_msgs"] == 0
    assert set(figures["missing"]) == {"fair_jain", "share_min_pct", "share_max_pct"}
    assert "raise --count" in figures["missing"]["fair_jain"]
    consumer["window"] = [5, 5]
    assert "missing" not in fanin.metrics({"server": consumer, **producers}, ctx)


def test_multistream_reads_every_connection_until_all_close() -> None:
    pairs = [socket.socketpair() for _ in range(3)]
    channel = MultiStreamChannel([a for a, _ in pairs])

    def produce(index: int, sock: socket.socket) -> None:
        with sock:
            for n in range(200):
                sock.sendall(bytes([index, n % 256]) * 500)  # 1000-byte messages, split by the kernel at will

    threads = [threading.Thread(target=produce, args=(i, b)) for i, (_, b) in enumerate(pairs)]
    for t in threads:
        t.start()
    buf = memoryview(bytearray(1000))
    seen = [0, 0, 0]
    with channel:
        channel.set_timeout(10)
        with pytest.raises(EOFError):
            while True:
                assert channel.recv_into(buf) == 1000
                index = buf[0]
                assert bytes(buf) == bytes([index, seen[index] % 256]) * 500  # whole and in order per producer
                seen[index] += 1
    for t in threads:
        t.join(10)
    assert seen == [200, 200, 200]
