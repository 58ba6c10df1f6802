"""Runs across hosts (``--remote``, ipclab.engine.remote), piece by piece: the ssh host, the options, n/a across
hosts, endpoints made on each side (in this process, on loopback), the table header; and, as processes, stdin EOF
ending a remote worker and a launcher that hangs. Runs between two network namespaces: test_remote_netns.py."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from conftest import ROOT, reap, stdin_eof_ends_it

from ipclab import runner
from ipclab.config import RunConfig
from ipclab.declarations import TrafficShape
from ipclab.engine.inline import Inline
from ipclab.engine.launch import Remote, WorkerSpec
from ipclab.engine.remote import RemoteError, Session, ssh_host
from ipclab.engine.supervise import Timing
from ipclab.errors import ConfigError
from ipclab.options import build
from ipclab.transports import get_transport
from ipclab.transports.base import CellSpec
from ipclab.transports.loopback import LoopbackTransport
from ipclab.transports.pipe import PipeTransport
from ipclab.transports.tcp import TcpTransport
from ipclab.transports.udp import UdpTransport

ONE_WAY = TrafficShape(duplex=False)
DUPLEX = TrafficShape(duplex=True)


# -- fast tier ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, host", [
    ("ssh lab2", "lab2"), ("ssh -p 2222 user@lab2", "lab2"), ("ssh -p2222 -4 lab2", "lab2"),
    ("ssh -i /k -o StrictHostKeyChecking=no root@198.18.0.2", "198.18.0.2"), ("ssh -tt lab2 nice", "lab2"),
    ("/usr/bin/ssh ssh://me@lab2:2222", "lab2"), ("ip netns exec peer", None), ("docker exec -i box", None),
    ("ssh", None), ("ssh -p", None),
])
def test_the_host_of_an_ssh_command(command: str, host: str | None) -> None:
    assert ssh_host(command) == host


def test_remote_options_are_checked_together() -> None:
    assert build({"remote": "ssh user@lab2"}).remote_address == "lab2"
    config = build({"remote": "ip netns exec b", "remote_address": "198.18.0.2", "reverse": True})
    assert (config.remote_python, config.reverse, config.remote_address) == ("python3", True, "198.18.0.2")
    with pytest.raises(ConfigError, match=r"^--remote-address: required with --remote 'ip netns exec b'"):
        build({"remote": "ip netns exec b"})
    with pytest.raises(ConfigError, match=r"^--reverse needs --remote"):
        build({"reverse": True})
    with pytest.raises(ConfigError, match=r"^--remote-address: '0.0.0.0' is not an address"):
        build({"remote": "ssh lab2", "remote_address": "0.0.0.0"})
    with pytest.raises(ConfigError, match=r"^--remote: cannot split"):
        build({"remote": "ssh 'lab2"})


def test_shared_kernel_transports_and_one_way_latency_are_na_across_hosts() -> None:
    session = Session("ip netns exec b", "python3", "198.18.0.2")
    assert "needs both ends on one kernel" in (session.not_applicable(PipeTransport) or "")
    assert session.not_applicable(TcpTransport) is None and session.not_applicable(UdpTransport) is None
    figures = session.figures({"mb_s": 1.0, "owl_p50_us": 3.0, "owl_quantiles_ns": [1, 2]})
    assert figures["mb_s"] == 1.0 and "owl_p50_us" not in figures
    assert "two clocks" in figures["missing"]["owl_p50_us"]
    where, cpus = session.placement({"server": [1], "client": [1]}, None)
    assert where == "server on 198.18.0.2 (unpinned), client here (CPU 1)"
    assert cpus == {"server": None, "client": [1]}  # the other host's CPUs are not known yet
    session.remote_cpus = [0, 1, 2, 3]
    where, cpus = session.placement({"server": [1], "client0": [1], "client1": [2]}, {"server": [3]})
    assert where == "server on 198.18.0.2 (CPU 3), client here (CPUs 1,2)" and cpus["server"] == [3]
    where, cpus = session.placement({"server": [1], "client": [1]}, {"server": [7]})
    assert cpus["server"] is None and where.startswith("server on 198.18.0.2 (unpinned)")  # not a CPU it has


def _bind_and_open(cls: type, shape: TrafficShape, remote_roles: frozenset[str], tmp: str) -> tuple:
    """setup_remote here and bind_remote 'there' (both on loopback, in this process), as the engine does."""
    transport = cls(tmp, CellSpec(shape=shape, size=64, clients=1))
    address = transport.setup_remote(remote_roles, "127.0.0.1", "127.0.0.1")
    role = next(iter(remote_roles))
    own, shared = cls.bind_remote(address, role, 0)
    theirs, ours = {**address, **own}, _inherited({**address, **shared})
    transport.close_parent_fds()  # as after a spawn: the local worker holds its own copies
    local = "client" if role == "server" else "server"
    return transport, (role, theirs), (local, ours)


def _inherited(address: dict) -> dict:
    """The address as a spawned worker sees it: its fds are copies of the parent's."""
    out = dict(address)
    for key in ("server_fd", "listen_fd"):
        if isinstance(out.get(key), int):
            out[key] = os.dup(out[key])
    if "client_fds" in out:
        out["client_fds"] = [os.dup(fd) if fd >= 0 else fd for fd in out["client_fds"]]
    return out


@pytest.mark.parametrize("cls", [TcpTransport, UdpTransport], ids=["tcp", "udp"])
@pytest.mark.parametrize("reverse", [False, True], ids=["server-there", "client-there"])
def test_endpoints_made_on_each_side_carry_messages(cls: type, reverse: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="ipclab-test-") as tmp:
        roles = frozenset({"client" if reverse else "server"})
        transport, (r_role, r_addr), (l_role, l_addr) = _bind_and_open(cls, DUPLEX, roles, tmp)
        try:
            opened: dict[str, object] = {}

            def open_server() -> None:  # the server of a connection transport waits in accept()
                role, addr = (r_role, r_addr) if r_role == "server" else (l_role, l_addr)
                opened["server"] = cls.connect(addr, role, 0)

            thread = threading.Thread(target=open_server)
            thread.start()
            client_addr = r_addr if r_role == "client" else l_addr
            client = cls.connect(client_addr, "client", 0)
            thread.join(10)
            server = opened["server"]
            client.send(memoryview(b"x" * 64))
            buf = memoryview(bytearray(64))
            assert server.recv_into(buf) == 64  # type: ignore[attr-defined]
            server.send(buf)  # type: ignore[attr-defined]
            assert client.recv_into(buf) == 64
            client.close()
            server.close()  # type: ignore[attr-defined]
        finally:
            transport.teardown()


# -- process tier ---------------------------------------------------------------------------------------------------
@pytest.mark.process
def test_stdin_eof_ends_a_remote_worker_waiting_for_its_peer() -> None:
    """A worker on the other host blocked in accept() (no client yet) ends when its stdin closes (ssh died)."""
    with tempfile.TemporaryDirectory(prefix="ipclab-test-") as tmp:
        prefix = ["env", f"PYTHONPATH={ROOT}"]
        handle = Remote(prefix, sys.executable).start(WorkerSpec("server", "server", 0, "echo server", (), tmp))
        try:
            address = {"host": "127.0.0.1", "port": 0, "clients": 1, "mode": "connected", "empty": False}
            handle.channel.send({"type": "CONFIG", "transport": "tcp", "pattern": "pingpong", "address": address,
                                 "size": 64, "count": 100, "duration": None, "warmup": 0, "seed": 1,
                                 "verify": False, "reliable": True, "clients": 1, "role": "server", "index": 0,
                                 "cpus": None, "bind": True})
            bound = handle.channel.recv(timeout=30)
            assert bound["type"] == "BOUND" and bound["address"]["port"] > 0
            stdin_eof_ends_it(handle)  # waiting in accept()
        finally:
            reap(handle)


@pytest.mark.process
def test_a_launcher_that_hangs_is_one_line_within_the_set_up_timeout() -> None:
    command = "sh -c 'echo ssh: connect to host lab2 port 22: Connection timed out >&2; sleep 30' sh"
    session = Session(command, "python3", "127.0.0.1")
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"did not answer within 1 s: ssh: connect to host lab2 port 22: "
                                          r"Connection timed out$"):
        session.open(1.0)
    assert time.monotonic() - started < 10  # the shell's sleep was killed with it, not waited for


def test_no_wildcard_is_ever_bound() -> None:
    """The bind paths take the address they are given (tcp, udp); a wildcard is refused up front (options)."""
    with tempfile.TemporaryDirectory(prefix="ipclab-test-") as tmp:
        transport = UdpTransport(tmp, CellSpec(shape=ONE_WAY, size=64, clients=1))
        try:
            address = transport.setup_remote(frozenset({"server"}), "127.0.0.1", "127.0.0.1")
            assert all(host == "127.0.0.1" for host, _ in address["client_addrs"])
        finally:
            transport.teardown()



def test_tables_are_headed_by_both_hosts_and_the_link() -> None:
    from ipclab.engine.remote import describe

    assert describe({"kernel": "6.1"}) is None  # one host: no header
    line = describe({"hostname": "lab1", "os": "Linux", "kernel": "6.1", "cpu_model": "X", "python_version": "3.11",
                     "remote": {"command": "ssh lab2", "reverse": False,
                                "sysinfo": {"hostname": "lab2", "os": "Linux", "kernel": "6.2", "cpu_model": "Y",
                                            "python_version": "3.12"},
                                "link": {"local_address": "198.18.0.1", "local_interface": "eth0", "local_mtu": 1500,
                                         "remote_address": "198.18.0.2", "remote_interface": "eth1",
                                         "remote_mtu": 9000}}})
    assert line == ("Hosts: here lab1 198.18.0.1 (eth0, MTU 1500; Linux 6.1, X, Python 3.11); there (servers, via "
                    "'ssh lab2') lab2 198.18.0.2 (eth1, MTU 9000; Linux 6.2, Y, Python 3.12)")


def test_report_heads_its_tables_with_both_hosts_too(tmp_path, capsys) -> None:
    import json

    from synthetic import make_result

    from ipclab.cli import main

    result = make_result()
    result["metadata"]["hostname"] = "lab1"
    result["metadata"]["remote"] = {"command": "ssh lab2", "reverse": False, "sysinfo": {"hostname": "lab2"},
                                    "link": {"local_address": "198.18.0.1", "remote_address": "198.18.0.2"}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result))
    for fmt in ("table", "markdown"):
        assert main(["report", str(path), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "Hosts: here lab1 198.18.0.1" in out and "there (servers, via 'ssh lab2') lab2 198.18.0.2" in out


def test_every_transport_that_reaches_other_hosts_can_be_set_up_across_hosts() -> None:
    from ipclab.transports import registered_classes

    crossing = [cls for cls in registered_classes() if not cls.shared_kernel]
    assert {cls.name for cls in crossing} >= {"tcp", "udp", "zmq-tcp"}
    for cls in crossing:  # shared_kernel = False promises both halves of the set-up across hosts
        assert callable(getattr(cls, "setup_remote", None)) and callable(getattr(cls, "bind_remote", None)), cls.name


class Crossing(LoopbackTransport):
    """The in-process loopback, declared as reaching other hosts: records the set-up across hosts it is put
    through (the Inline launcher's threads stand in for both hosts)."""

    name = "loopback-crossing"
    shared_kernel = False
    events: ClassVar[list[tuple[str, str, tuple[str, ...]]]] = []

    def setup_remote(self, remote_roles: frozenset[str], here: str, there: str) -> dict[str, Any]:
        return {**self.setup(), "there": there, "here": here}

    @classmethod
    def bind_remote(cls, address: dict[str, Any], role: str, index: int = 0) -> tuple[dict, dict]:
        cls.events.append(("bind", role, ()))
        return {"own": role}, {f"bound_{role}{index}": address["there"]}

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Any:
        cls.events.append(("connect", role, tuple(sorted(k for k in address if k.startswith(("own", "bound_"))))))
        return super().connect(address, role, index)


@pytest.mark.parametrize("reverse", [False, True], ids=["server-there", "client-there"])
def test_the_other_hosts_workers_bind_first_and_the_others_see_what_they_bound(monkeypatch, reverse: bool) -> None:
    Crossing.events.clear()
    config = RunConfig(transports=("loopback-crossing", "loopback"), patterns=("pingpong",), sizes=(64,), count=30,
                       warmup=3, remote="ip netns exec b", remote_address="198.18.0.2", reverse=reverse)
    r = runner.Runner(config, metadata={}, launcher=Inline(), timing=Timing(exit_grace=0.5, peer_grace=0.05),
                      transports=lambda name: Crossing if name == Crossing.name else get_transport(name))
    r.launcher.remote = Inline()  # type: ignore[attr-defined]  # the other host's workers: threads here too

    def opened(timeout: float) -> dict[str, Any]:
        r.remote.plan = replace(r.remote.plan, here="198.18.0.1")  # type: ignore[union-attr]
        return {"link": {}}

    monkeypatch.setattr(r.remote, "open", opened)
    result = r.run()
    crossing, shared = result["cells"]
    assert crossing["status"] == "ok", crossing["reason"]
    assert shared["status"] == "n/a" and "one kernel" in shared["reason"]
    there, here = ("client", "server") if reverse else ("server", "client")
    assert Crossing.events == [("bind", there, ()), ("connect", there, ("own",)),
                               ("connect", here, (f"bound_{there}0",))] or Crossing.events == [
        ("bind", there, ()), ("connect", here, (f"bound_{there}0",)), ("connect", there, ("own",))]
    assert crossing["placement"].startswith(f"{there} on 198.18.0.2 (unpinned), {here} here (")
