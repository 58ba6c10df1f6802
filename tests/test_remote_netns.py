"""Runs across two network namespaces joined by a veth pair (tests/netns.py; addresses from 198.18.0.0/15; skipped
with the reason where namespaces cannot be made): the whole run inside namespace A with ``--remote "ip netns exec
B"`` or through a real sshd in B. Measured cells, n/a cells, B's interface counters, a tbf known answer, one-line
failures, interrupts and deaths mid-cell, and nothing left in either namespace. Process tier."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import netns
import pytest
from conftest import ROOT

pytestmark = pytest.mark.process


@pytest.fixture
def ns() -> Iterator[netns.Pair]:
    yield from netns.pair_for_test()


def _run(pair: netns.Pair, *args: str, remote: str | None = None, address: str | None = None,
         tmp: str, timeout: float = 240) -> subprocess.CompletedProcess:
    argv = pair.ipclab_argv("run", "-q", "--remote", remote or pair.remote(), "--remote-address",
                            address or pair.addr_b, *args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, "TMPDIR": tmp},
                          check=False)


def _nothing_left(pair: netns.Pair, tmp: str) -> None:
    for _ in range(50):  # bounded: a worker told to exit takes a moment
        if not pair.pids():
            break
        time.sleep(0.1)
    assert pair.pids() == [], "a process survived in a namespace"
    assert [n for n in os.listdir(tmp) if n.startswith("ipclab-")] == [], "a run directory survived"


@pytest.fixture
def tmp() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="ipt-remote-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_tcp_udp_zmq_across_namespaces(ns: netns.Pair, tmp: str) -> None:
    before = ns.counters(ns.b, ns.dev_b)["rx_bytes"]
    done = _run(ns, "-t", "tcp,udp,zmq-tcp,pipe", "-p", "pingpong,stream", "-s", "4K", "-n", "1000",
                "-f", "json", "-o", "-", tmp=tmp)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    cells = {(c["pattern"], c["transport"]): c for c in result["cells"]}
    for name in ("tcp", "udp", "zmq-tcp"):
        for pattern in ("pingpong", "stream"):
            cell = cells[(pattern, name)]
            assert cell["status"] == "ok", cell["reason"]
            assert cell["placement"].startswith(f"server on {ns.addr_b} (") and ", client here (" in cell["placement"]
        stream = cells[("stream", name)]
        assert stream["summary"]["mb_s"] > 0 and "owl_p50_us" not in stream["summary"]
        assert "two clocks" in stream["trials"][0]["metrics"]["missing"]["owl_p50_us"]
    assert cells[("stream", "pipe")]["status"] == "n/a"
    assert "one kernel" in cells[("stream", "pipe")]["reason"]
    received = sum(cells[("stream", n)]["summary"]["received"] * 4096 for n in ("tcp", "udp", "zmq-tcp"))
    crossed = ns.counters(ns.b, ns.dev_b)["rx_bytes"] - before
    assert crossed >= received  # the measured bytes went over B's veth, not a loopback
    remote = result["metadata"]["remote"]
    assert remote["link"]["remote_address"] == ns.addr_b and remote["link"]["local_address"] == ns.addr_a
    assert remote["link"]["remote_interface"] == ns.dev_b and remote["link"]["remote_mtu"] == 1500
    assert remote["sysinfo"]["ipclab_version"] == result["metadata"]["ipclab_version"]
    _nothing_left(ns, tmp)


def test_reverse_runs_the_clients_there(ns: netns.Pair, tmp: str) -> None:
    before = ns.counters(ns.b, ns.dev_b)["tx_bytes"]
    done = _run(ns, "--reverse", "-t", "tcp,udp,zmq-tcp", "-p", "stream,pingpong", "-s", "4K", "-n", "500",
                "-f", "json", "-o", "-", tmp=tmp)
    assert done.returncode == 0, done.stderr
    cells = json.loads(done.stdout)["cells"]
    assert all(c["status"] == "ok" for c in cells), [c["reason"] for c in cells]
    assert all(c["placement"].startswith(f"client on {ns.addr_b} (") and ", server here (" in c["placement"]
               for c in cells)
    assert ns.counters(ns.b, ns.dev_b)["tx_bytes"] - before >= 3 * 500 * 4096  # B sent the streams
    _nothing_left(ns, tmp)


def test_a_tcp_stream_through_a_100mbit_link_reports_12_5_mb_s(ns: netns.Pair, tmp: str) -> None:
    shaped = ns.run_in(ns.a, "tc", "qdisc", "add", "dev", ns.dev_a, "root", "tbf", "rate", "100mbit", "burst",
                       "32kbit", "latency", "400ms")
    if shaped.returncode != 0:
        pytest.skip(f"tc tbf unavailable: {shaped.stderr.strip()}")
    done = _run(ns, "-t", "tcp", "-p", "stream", "-s", "64K", "-n", "400", "-f", "json", "-o", "-", tmp=tmp)
    assert done.returncode == 0, done.stderr
    mb_s = json.loads(done.stdout)["cells"][0]["summary"]["mb_s"]
    # 100 Mbit/s = 12.5 MB/s on the wire; the payload gets 1448 of every 1514 bytes (95.6 %, about 11.95 MB/s).
    assert abs(mb_s - 12.5) <= 1.25, mb_s
    _nothing_left(ns, tmp)


def test_failures_before_measuring_are_one_line(ns: netns.Pair, tmp: str) -> None:
    fake = os.path.join(tmp, "other")
    shutil.copytree(os.path.join(ROOT, "ipclab"), os.path.join(fake, "ipclab"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = os.path.join(fake, "ipclab", "__init__.py")
    with open(init, encoding="utf-8") as f:
        text = f.read()
    with open(init, "w", encoding="utf-8") as f:
        f.write(text.replace("__version__ = ", "__version__ = '0.0.0-other' or "))
    host = ns.addr_b.rsplit(".", 1)[0]
    cases = [
        ({"remote": f"ip netns exec {ns.b}-missing"}, "Cannot open network namespace"),
        ({"args": ("--remote-python", "/nonexistent/python3")}, "/nonexistent/python3"),
        ({"remote": f"ip netns exec {ns.b} env PYTHONPATH={fake}"}, "the other host runs ipclab 0.0.0-other"),
        ({"address": f"{host}.77"}, f"--remote-address {host}.77: not an address of the other host"),
        ({"address": "198.19.255.254"}, "no route from this host"),
    ]
    for case, expected in cases:
        done = _run(ns, "-t", "tcp", "-p", "pingpong", "-s", "64", "-n", "100", "-o", os.path.join(tmp, "r.json"),
                    *case.get("args", ()), remote=case.get("remote"), address=case.get("address"), tmp=tmp)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("ipclab: error: "), done.stderr
        assert expected in lines[0], lines[0]
        assert not os.path.exists(os.path.join(tmp, "r.json"))  # nothing measured, nothing saved
        _nothing_left(ns, tmp)


def _start_mid_cell(ns: netns.Pair, tmp: str) -> tuple[subprocess.Popen, list[str]]:
    """A long stream cell, once its worker in B runs; returns the runner and the worker pids in B."""
    argv = ns.ipclab_argv("run", "-q", "--remote", ns.remote(), "--remote-address", ns.addr_b, "-t", "tcp,udp",
                          "-p", "stream", "-s", "64", "--duration", "30", "-o", os.path.join(tmp, "r.json"))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": tmp}, start_new_session=True)
    workers: list[str] = []
    for _ in range(200):
        workers = [str(p) for p in ns.pids(ns.b) if _is_worker(p)]
        if workers:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # into the measured loop
    return proc, workers


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"ipclab.worker" in f.read()
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_mid_cell_ends_the_workers_on_both_hosts(ns: netns.Pair, tmp: str, signum: int) -> None:
    proc, workers = _start_mid_cell(ns, tmp)
    try:
        assert workers, "no worker started in namespace B"
        os.killpg(proc.pid, signum)  # as a terminal's Ctrl-C: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum
    assert err.strip().splitlines() == [f"ipclab: interrupted by {signal.Signals(signum).name}; results measured "
                                        f"so far saved to {os.path.join(tmp, 'r.json')}"]
    _nothing_left(ns, tmp)


def test_a_remote_worker_killed_mid_cell_fails_the_cell(ns: netns.Pair, tmp: str) -> None:
    proc, workers = _start_mid_cell(ns, tmp)
    try:
        assert workers, "no worker started in namespace B"
        os.kill(int(workers[0]), signal.SIGKILL)
        for _ in range(200):  # bounded: until the tcp cell is saved (failed), then the udp cell need not run
            if _saved_cells(os.path.join(tmp, "r.json")):
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # the udp cell would run its 30 s; its start is enough
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    cell = _saved_cells(os.path.join(tmp, "r.json"))[0]
    assert cell["status"] == "failed" and cell["reason"].startswith(f"consumer on {ns.addr_b} killed by SIGKILL")
    _nothing_left(ns, tmp)


def _saved_cells(path: str) -> list:
    try:
        with open(path, encoding="utf-8") as f:
            return list(json.load(f)["cells"])
    except (OSError, ValueError):
        return []


@pytest.fixture
def sshd(ns: netns.Pair, tmp: str) -> Iterator[tuple[str, int]]:
    """A real sshd (Debian's openssh-server) in namespace B, on B's address only, with keys made here; yields the
    --remote command (this tree's ipclab and interpreter there) and the daemon's pid."""
    daemon, keygen = shutil.which("sshd") or "/usr/sbin/sshd", shutil.which("ssh-keygen")
    if not os.path.exists(daemon) or keygen is None or shutil.which("ssh") is None:
        pytest.skip("openssh-server / openssh-client not installed (apt-get install openssh-server)")
    keys = os.path.join(tmp, "keys")
    os.mkdir(keys, 0o700)
    for name in ("host", "user"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(keys, name)], check=True,
                       timeout=30)
    shutil.copy(os.path.join(keys, "user.pub"), os.path.join(keys, "authorized_keys"))
    config = os.path.join(keys, "sshd_config")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"ListenAddress {ns.addr_b}\nPort 2222\nHostKey {keys}/host\n"
                f"AuthorizedKeysFile {keys}/authorized_keys\nPermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "UsePAM no\nStrictModes no\nPidFile none\n")
    made_run_dir = not os.path.isdir("/run/sshd")  # sshd's privilege separation directory
    if made_run_dir:
        os.makedirs("/run/sshd", 0o755)
    proc = subprocess.Popen(["ip", "netns", "exec", ns.b, daemon, "-D", "-e", "-f", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):  # bounded: until it listens
            probe = ns.run_in(ns.a, sys.executable, "-c", f"import socket; socket.create_connection(('{ns.addr_b}', "
                              "2222), 1).close()")
            if probe.returncode == 0 or proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is not None:
            pytest.fail(f"sshd did not start: {proc.stderr.read().decode()[-300:] if proc.stderr else ''}")
        command = (f"ssh -p 2222 -i {keys}/user -o BatchMode=yes -o StrictHostKeyChecking=no "
                   f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@{ns.addr_b} env PYTHONPATH={ROOT}")
        yield command, proc.pid
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        if made_run_dir:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def test_tcp_and_udp_through_a_real_sshd(ns: netns.Pair, tmp: str, sshd: tuple[str, int]) -> None:
    command, daemon = sshd
    argv = ns.ipclab_argv("run", "-q", "--remote", command, "--remote-python", sys.executable, "-t", "tcp,udp,pipe",
                          "-p", "pingpong,stream", "-s", "1K", "-n", "500", "-f", "json", "-o", "-")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env={**os.environ, "TMPDIR": tmp},
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["config"]["remote_address"] == ns.addr_b  # the host of 'ssh ... root@ADDR'
    status = {(c["pattern"], c["transport"]): c["status"] for c in result["cells"]}
    assert status == {("pingpong", "tcp"): "ok", ("pingpong", "udp"): "ok", ("pingpong", "pipe"): "n/a",
                      ("stream", "tcp"): "ok", ("stream", "udp"): "ok", ("stream", "pipe"): "n/a"}
    for _ in range(50):  # the sessions' processes end once ssh has gone (bounded)
        left = [p for p in ns.pids(ns.b) if p != daemon]
        if not left:
            break
        time.sleep(0.1)
    assert left == [], "a remote worker survived its ssh session"



def test_ssh_failures_are_one_line_and_ctrl_c_ends_the_session(ns: netns.Pair, tmp: str,
                                                               sshd: tuple[str, int]) -> None:
    command, daemon = sshd
    # "No ipclab there": an interpreter that has none installed (this one may have it in site-packages, as after
    # `pip install .`, so PYTHONPATH alone cannot hide it): the system's python3, which pip did not touch.
    bare = next((p for p in ("/usr/bin/python3", "/bin/python3") if os.path.exists(p) and subprocess.run(
        [p, "-c", "import ipclab"], capture_output=True, env={"PATH": os.environ.get("PATH", "")}).returncode), None)
    cases = [(command.replace("-p 2222", "-p 2223"), sys.executable, "Connection refused"),
             (command.replace(f"env PYTHONPATH={ROOT}", "env PYTHONPATH=/nonexistent false"), sys.executable,
              "exit status 1")]
    if bare is not None:
        cases.append((command.replace(f"PYTHONPATH={ROOT}", "PYTHONPATH=/nonexistent"), bare, "No module named"))
    for remote, python, expected in cases:
        done = _run(ns, "--remote-python", python, "-t", "tcp", "-p", "pingpong", "-n", "100", "-o",
                    os.path.join(tmp, "r.json"), remote=remote, tmp=tmp)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and expected in lines[0], done.stderr
    argv = ns.ipclab_argv("run", "-q", "--remote", command, "--remote-python", sys.executable, "-t", "tcp", "-p",
                          "stream", "-s", "64", "--duration", "30", "-o", os.path.join(tmp, "r.json"))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": tmp}, start_new_session=True)
    try:
        started = False
        for _ in range(200):  # bounded: until the consumer runs in B, under sshd
            started = any(_is_worker(p) for p in ns.pids(ns.b))
            if started:
                break
            time.sleep(0.05)
        assert started, "no worker started in namespace B"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and err.count("\n") == 1, err
    for _ in range(50):  # the session's processes end once ssh has gone (bounded)
        left = [p for p in ns.pids(ns.b) if p != daemon]
        if not left:
            break
        time.sleep(0.1)
    assert left == [], "a remote worker survived Ctrl-C"
