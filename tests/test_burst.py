"""The burst pattern and the shared round-trip loop: threads over socket pairs (fast tier), then end to end."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
from conftest import run_cli

from ipclab.patterns import burst
from ipclab.patterns.common import Context
from ipclab.patterns.loops import LOST, round_trips


class Endpoint:
    """A Channel over one end of a message-keeping socket pair; ``drop`` = send numbers silently lost."""

    def __init__(self, sock: socket.socket, drop: frozenset[int] = frozenset()) -> None:
        self.sock, self.drop, self.sent = sock, drop, 0

    def send(self, msg: memoryview) -> None:
        self.sent += 1
        if self.sent not in self.drop:
            self.sock.send(msg)

    def recv_into(self, buf: memoryview) -> int:
        n = self.sock.recv_into(buf)
        if not n and len(buf):
            raise EOFError
        return n

    def set_timeout(self, seconds: float | None) -> None:
        self.sock.settimeout(seconds)


def ctx(reliable: bool, k: int, count: int = 20, warmup: int = 2) -> Context:
    return Context(size=64, count=count, duration=None, warmup=warmup, seed=3, verify=True, reliable=reliable,
                   options={"burst": k})


def run_pair(kind: int, reliable: bool, k: int, drop: frozenset[int] = frozenset()) -> dict[str, dict[str, Any]]:
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    raw: dict[str, dict[str, Any]] = {}
    server = threading.Thread(target=lambda: raw.update(server=burst.run("server", 0, Endpoint(a), ctx(reliable, k))))
    server.start()
    try:
        raw["client"] = burst.run("client", 0, Endpoint(b, drop), ctx(reliable, k))
    finally:
        b.close()  # EOF ends a server still waiting
        server.join(10)
        a.close()
    return raw


def test_burst_over_a_reliable_pair_counts_bursts_and_bytes() -> None:
    raw = run_pair(socket.SOCK_SEQPACKET, True, 3)
    assert raw["server"]["acked"] == 22 and raw["client"]["n"] == 20 and raw["client"]["corrupt"] == 0
    figures = burst.metrics(raw, ctx(True, 3))
    assert figures["bursts"] == 20 and figures["burst_length"] == 3 and figures["lost"] == 0
    mean_ns = 3 * 64 * 1e3 / figures["mb_s"]
    assert figures["msg_s"] == pytest.approx(3e9 / mean_ns)
    assert 0 < figures["burst_min_us"] <= figures["burst_p50_us"] <= figures["burst_p99_us"]


def test_a_lost_message_loses_its_burst_and_nothing_else() -> None:
    # The client's 18th send is message 2 of burst 5 (warm-up bursts 0-1 included): that burst gets no ack.
    raw = run_pair(socket.SOCK_DGRAM, False, 3, drop=frozenset({3 * 5 + 3}))
    figures = burst.metrics(raw, ctx(False, 3))
    assert (figures["bursts"], figures["lost"], figures["incomplete"]) == (19, 1, 1)
    assert figures["loss_pct"] == pytest.approx(5.0) and figures["corrupt"] == 0


def test_burst_needs_a_header_only_on_lossy_transports() -> None:
    class Lossy:
        reliable = False

    class Reliable:
        reliable = True

    assert "16-byte header" in (burst.not_applicable(Lossy, 8) or "")
    assert burst.not_applicable(Reliable, 1) is None and burst.not_applicable(Lossy, 16) is None


def test_round_trip_loop_counts_lost_attempts_and_warms_up_apart() -> None:
    seen: list[int] = []

    def exchange(seq: int) -> int:
        seen.append(seq)
        return LOST if seq % 4 == 0 else 1000 + seq

    samples, n, lost = round_trips(ctx(True, 1, count=10, warmup=3), exchange)
    assert seen == list(range(13))  # 3 warm-up, then 10 measured attempts, lost ones included
    assert (n, lost) == (7, 3) and list(samples[:n]) == [1000 + s for s in range(3, 13) if s % 4]


def test_round_trip_loop_runs_a_duration_and_grows_its_samples() -> None:
    c = Context(size=8, count=None, duration=0.02, warmup=0, seed=1, verify=False, reliable=True)
    samples, n, lost = round_trips(c, lambda seq: 5, cap=2)
    assert n > 2 and lost == 0 and len(samples) >= n  # grown from 2 by doubling


# -- end to end -------------------------------------------------------------------------------------------
@pytest.mark.process
def test_cli_burst_over_pipe_tcp_udp(tmp_path) -> None:
    out = tmp_path / "burst.json"
    proc = run_cli("run", "-p", "burst", "-t", "pipe,tcp,udp", "-s", "64,4K", "-n", "60", "-q", "-o", str(out),
                   timeout=120)
    assert proc.returncode == 0, proc.stderr
    for title in ("burst: burst of K messages + ack, p50 (µs)", "burst: burst of K messages + ack, p99",
                  "burst: data bytes per second (acks not counted) (MB/s)", "burst: CPU time per data message"):
        assert title in proc.stdout
    cells = json.loads(out.read_text())["cells"]
    assert len(cells) == 6
    for cell in cells:
        where = f"{cell['transport']} {cell['size_bytes']}"
        assert cell["status"] == "ok", f"{where}: {cell['reason']}"
        m = cell["trials"][0]["metrics"]
        assert m["burst_length"] == 16 and m["corrupt"] == 0, where
        assert m["bursts"] + m["lost"] == 60, where
        if cell["transport"] != "udp":
            assert m["bursts"] == 60 and m["lost"] == 0 and m["incomplete"] == 0, where
        assert cell["summary"]["burst_p50_us"] > 0 and cell["summary"]["mb_s"] > 0, where
        assert m["mb_s"] == pytest.approx(m["msg_s"] * cell["size_bytes"] / 1e6), where


def _has_burst_flag() -> bool:
    from ipclab.cli import build_parser
    from ipclab.errors import ConfigError

    try:
        build_parser().parse_args(["run", "--burst", "4"])
    except ConfigError:
        return False
    return True


@pytest.mark.process
@pytest.mark.skipif(not _has_burst_flag(), reason="the option table does not build --burst from SPEC.options yet")
def test_cli_burst_length_reaches_the_workers(tmp_path) -> None:
    out = tmp_path / "burst4.json"
    run_cli("run", "-p", "burst", "--burst", "4", "-t", "unix", "-s", "256", "-n", "30", "-q", "-o", str(out),
            check=True)
    (cell,) = json.loads(out.read_text())["cells"]
    assert cell["trials"][0]["metrics"]["burst_length"] == 4 and cell["trials"][0]["metrics"]["bursts"] == 30
