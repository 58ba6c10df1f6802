"""Two network namespaces joined by a veth pair, for the tests of runs across hosts (ipclab.engine.remote).

``netns_pair()`` creates namespaces A and B with unique names (a random suffix: other test runs may share the
machine), a veth pair between them and addresses from 198.18.0.0/15 (reserved for benchmark tests) only, and
removes everything on the way out, failure or not: processes still inside either namespace (ours: the
namespaces are) are killed, then the namespaces go, and their veth ends with them. ``unavailable()`` says why
namespaces cannot be made here (not root, no ip(8), no permission), for a skip with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMD_TIMEOUT = 20.0


@dataclass(frozen=True)
class Pair:
    a: str  # namespace names
    b: str
    dev_a: str  # veth ends
    dev_b: str
    addr_a: str  # 198.18.x.y
    addr_b: str

    def run_in(self, ns: str, *argv: str, timeout: float = CMD_TIMEOUT, **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout,
                              check=False, **kw)  # type: ignore[call-overload]

    def remote(self, *env: str) -> str:
        """A --remote command that runs ipclab from this tree in namespace B."""
        return " ".join(["ip", "netns", "exec", self.b, "env", f"PYTHONPATH={ROOT}", *env])

    def ipclab_argv(self, *args: str) -> list[str]:
        """``ipclab ARGS`` run in namespace A, from this tree."""
        return ["ip", "netns", "exec", self.a, "env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "ipclab", *args]

    def counters(self, ns: str, dev: str) -> dict[str, int]:
        out = _ip("-n", ns, "-j", "-s", "link", "show", "dev", dev).stdout
        stats = json.loads(out)[0]["stats64"]
        return {"rx_bytes": stats["rx"]["bytes"], "tx_bytes": stats["tx"]["bytes"]}

    def pids(self, *names: str) -> list[int]:
        """Processes inside these namespaces (default: either)."""
        found: list[int] = []
        for ns in names or (self.a, self.b):
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
            found += [int(p) for p in out.split()]
        return found


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=CMD_TIMEOUT, check=True)


def unavailable() -> str | None:
    """Why two namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "ip(8) (iproute2) is not installed"
    name = f"ipt-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return None


@contextlib.contextmanager
def netns_pair() -> Iterator[Pair]:
    suffix = secrets.token_hex(3)
    octet = int(suffix[:2], 16)  # 198.18.OCTET.1/.2: inside 198.18.0.0/15 whatever the suffix
    pair = Pair(f"ipt-a-{suffix}", f"ipt-b-{suffix}", f"ipa{suffix}", f"ipb{suffix}", f"198.18.{octet}.1",
                f"198.18.{octet}.2")
    made: list[str] = []
    try:
        for ns in (pair.a, pair.b):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", pair.dev_a, "netns", pair.a, "type", "veth", "peer", "name", pair.dev_b, "netns", pair.b)
        for ns, dev, addr in ((pair.a, pair.dev_a, pair.addr_a), (pair.b, pair.dev_b, pair.addr_b)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        yield pair
    finally:
        _kill_inside(pair)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _kill_inside(pair: Pair) -> None:
    """Kill what is left inside the namespaces (only ours can be there), then wait for it to go (bounded)."""
    for _ in range(50):
        pids = pair.pids()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def exists(ns: str) -> bool:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return any(line.split()[0] == ns for line in out.splitlines() if line.strip())


def pair_for_test() -> Iterator[Pair]:
    """The body of a test fixture: skip with the reason where namespaces are impossible, else yield a pair."""
    import pytest

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with netns_pair() as pair:
        yield pair
    assert not exists(pair.a) and not exists(pair.b), "a namespace of this test survived it"
