"""Workers on another host: ``ipclab run --remote COMMAND`` (ssh, ip netns exec, docker exec -i, ...).

COMMAND is an argv prefix that starts a program on the other host; ipclab appends ``PYTHON -m ipclab.worker
--stdio`` (the :class:`~ipclab.engine.launch.Remote` launcher) and speaks its control protocol over that
program's stdin/stdout. The server side (the consumer, the echo server) runs there and the client side here;
``--reverse`` swaps them.

Before anything is measured, :meth:`Session.open` runs ``COMMAND PYTHON -m ipclab.engine.remote hello ADDR``
once: the other host's sysinfo, its ipclab and Python versions and the interface that holds ADDR (with its
MTU). A launcher that cannot start, a missing ipclab, an ADDR the other host does not have or a different ipclab
version is one line (the launcher's own last stderr line) before the first cell.

Endpoints across hosts: today's transports create their sockets in the parent and pass them by fd, which
cannot reach another host. A transport that does not need a shared kernel (``shared_kernel = False``) offers
two more calls instead:

- ``setup_remote(remote_roles, here, there)`` (parent): create this host's endpoints only, bound to ``here``
  (the source address of the route to ``there``, never a wildcard), and return the address for every worker;
- ``bind_remote(address, role, index)`` (a worker on the other host, on CONFIG with ``"bind": true``): create
  its own endpoint bound to ``there`` and return ``(own, shared)``: fields for itself (its fds) and fields for
  everybody (the kernel-chosen port). It answers BOUND with ``shared``.

:class:`RemoteSupervisor` sends CONFIG to the other host's workers first, merges their BOUND fields into the
address and only then configures the local ones. Nothing of a remote worker lives on disk there: its sockets
end with its process, and stdin EOF (the runner gone, ssh killed) ends the process.

Shared-kernel transports are n/a across hosts, and so is one-way latency (two clocks; never guessed).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError, IpclabError
from ..patterns.loops import HISTOGRAMS
from .launch import Launcher, Remote, WorkerHandle, WorkerSpec, worker_env
from .supervise import Supervisor, Timing

SSH_VALUE_OPTIONS = "BbcDEeFIiJLlmOopQRSWw"  # ssh's options that take a value (ssh(1))
ONE_WAY = "owl_"  # the figures of one-way latency (metric family "owl"): two hosts have two clocks


class RemoteError(IpclabError):
    """The other host cannot be used (launcher, python, ipclab version, address): one line, before measuring."""


def ssh_host(command: str) -> str | None:
    """The host of an ``ssh [options] [user@]host`` (or ``ssh://user@host:port``) command, else None."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv or os.path.basename(argv[0]) != "ssh":
        return None
    words = iter(argv[1:])
    for word in words:
        if word == "--":
            word = next(words, "")
        elif word.startswith("-") and len(word) > 1:
            for at, letter in enumerate(word[1:], 1):
                if letter in SSH_VALUE_OPTIONS:
                    if at == len(word) - 1:
                        next(words, None)  # "-p 2222": the value is the next word
                    break  # "-p2222": the rest of the word is the value
            continue
        host = word.rsplit("@", 1)[-1]
        if word.startswith("ssh://"):  # ssh://[user@]host[:port]
            host = word[len("ssh://"):].split("/")[0].rsplit("@", 1)[-1]
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return host.strip("[]") or None
    return None


def route_source(address: str) -> str:
    """This host's address on the route to ``address`` (a UDP socket aimed at it sends nothing; it picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((address, 9))
        return str(probe.getsockname()[0])


@dataclass(frozen=True)
class Plan:
    """Where each side runs: the command, the interpreter there, both addresses, which roles run there."""

    argv: tuple[str, ...]
    python: str
    there: str  # the other host's address (its endpoints bind it; we dial it)
    here: str = ""  # ours on the route to it (our endpoints bind it); set by Session.open
    reverse: bool = False

    def is_remote(self, role: str) -> bool:
        return (role == "server") != self.reverse

    def runs_there(self, key: str) -> bool:
        """Does the worker of this result key ("server", "client", "client3") run on the other host?"""
        return self.is_remote("server" if key.startswith("server") else "client")

    @property
    def remote_roles(self) -> frozenset[str]:
        return frozenset({"client"} if self.reverse else {"server"})


class Session:
    """One sweep's use of another host: the check before measuring, and what each cell needs from it."""

    def __init__(self, command: str, python: str, address: str, reverse: bool = False) -> None:
        self.plan = Plan(tuple(shlex.split(command)), python, address, reverse=reverse)
        self.command = command
        self.remote_cpus: list[int] | None = None

    @classmethod
    def from_config(cls, config: Any) -> Session | None:
        if not getattr(config, "remote", None):
            return None
        return cls(config.remote, config.remote_python, config.remote_address, config.reverse)

    # -- before the first cell ------------------------------------------------------------------------------------
    def open(self, timeout: float) -> dict[str, Any]:
        """Check the other host and the route to it; return the metadata for the result (RemoteError if unusable)."""
        from .. import __version__
        from ..probes import link_info

        there = self._resolve(self.plan.there)
        try:
            here = route_source(there)
        except OSError as exc:
            raise RemoteError(f"--remote-address {there}: no route from this host ({exc.strerror})") from None
        hello = self.hello(there, timeout)
        info, link = hello.get("sysinfo", {}), hello.get("link", {})
        theirs = info.get("ipclab_version")
        if theirs != __version__:
            raise RemoteError(f"--remote: the other host runs ipclab {theirs}, this host {__version__}; install the "
                              "same version on both before measuring")
        if not link.get("interface"):
            raise RemoteError(f"--remote-address {there}: not an address of the other host (it has "
                              f"{', '.join(link.get('addresses', [])) or 'none'}); its endpoints bind this address")
        self.plan = replace(self.plan, there=there, here=here)
        self.remote_cpus = info.get("cpu_affinity")
        mine = link_info(here)
        return {"command": self.command, "python": self.plan.python, "reverse": self.plan.reverse,
                "remote_roles": sorted(self.plan.remote_roles), "sysinfo": info,
                "link": {"local_address": here, "local_interface": mine.get("interface"),
                         "local_mtu": mine.get("mtu"), "remote_address": there,
                         "remote_interface": link.get("interface"), "remote_mtu": link.get("mtu")}}

    @staticmethod
    def _resolve(host: str) -> str:
        try:
            return str(socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
        except (OSError, IndexError) as exc:
            raise ConfigError(f"--remote-address: cannot resolve {host!r} here ({exc}); give its IPv4 "
                              "address") from None

    def hello(self, there: str, timeout: float) -> dict[str, Any]:
        """``COMMAND PYTHON -m ipclab.engine.remote hello ADDR``: its JSON answer, or one line why not."""
        argv = [*self.plan.argv, self.plan.python, "-m", "ipclab.engine.remote", "hello", there]
        try:  # a session of its own: on a timeout the whole group goes (a shell's children too), not just its head
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd="/", env=worker_env(), start_new_session=True)
        except OSError as exc:
            raise RemoteError(f"--remote: cannot start {self.plan.argv[0]!r} here: {exc.strerror}") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            tail = _last(err)
            raise RemoteError(f"--remote: {self.command!r} did not answer within {timeout:g} s"
                              + (f": {tail}" if tail else "")) from None
        except BaseException:  # Ctrl-C while waiting: nothing may stay behind
            _kill_group(proc)
            proc.communicate()
            raise
        done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if done.returncode != 0:
            tail = _last(done.stderr) or f"exit status {done.returncode}"
            raise RemoteError(f"--remote: {self.command!r} could not start ipclab there: {tail}")
        try:
            answer = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RemoteError(f"--remote: {self.command!r} answered something that is not ipclab's hello: "
                              f"{_last(done.stdout)!r}") from None
        if not isinstance(answer, dict):
            raise RemoteError(f"--remote: {self.command!r} answered {answer!r}, not ipclab's hello")
        return answer

    # -- per cell -------------------------------------------------------------------------------------------------
    def launcher(self, local: Launcher) -> Split:
        return Split(Remote(self.plan.argv, self.plan.python), local, self.plan)

    def not_applicable(self, cls: Any) -> str | None:
        if cls.shared_kernel:
            return f"{cls.name} needs both ends on one kernel; across hosts it is n/a"
        if not hasattr(cls, "setup_remote"):
            return f"{cls.name} has no set-up across hosts yet (setup_remote/bind_remote)"
        return None

    def wrap(self, transport: Any) -> SplitTransport:
        return SplitTransport(transport, self.plan)

    def placement(self, here: dict[str, list[int] | None],
                  there: dict[str, list[int] | None] | None) -> tuple[str, dict[str, list[int] | None]]:
        """--pin applies on each host separately: this host's workers take their CPUs from ``here``, the other
        host's from ``there`` (the same policy over that host's CPUs; None: not known, unpinned), never a CPU that
        host does not have. Returns the description for table headers (each side with its host and CPUs) and the
        CPUs per worker."""
        placed = dict(here)
        for key in [k for k in placed if self.plan.runs_there(k)]:
            value = (there or {}).get(key)
            placed[key] = value if value is not None and set(value) <= set(self.remote_cpus or ()) else None
        side, other = ("client", "server") if self.plan.reverse else ("server", "client")
        return (f"{side} on {self.plan.there} ({_cpus(placed, side)}), "
                f"{other} here ({_cpus(placed, other)})"), placed

    def figures(self, figures: dict[str, Any]) -> dict[str, Any]:
        """One-way latency needs one clock: across hosts it is n/a with the reason."""
        out = dict(figures)
        missing = dict(out.get("missing") or {})
        for key in [k for k in out if k.startswith(ONE_WAY)]:
            out.pop(key)
            missing[key] = "one-way latency needs one clock; two hosts have two clocks (n/a across hosts)"
        histograms = out.get(HISTOGRAMS)
        if isinstance(histograms, dict):  # nor may the pooled summary bring it back from the distribution
            out[HISTOGRAMS] = {p: h for p, h in histograms.items() if not f"{p}_".startswith(ONE_WAY)}
        if missing:
            out["missing"] = missing
        return out


def describe(metadata: dict[str, Any]) -> str | None:
    """The line that heads the tables of a run across hosts: both hosts and the link, or None on one host."""
    remote = metadata.get("remote")
    if not isinstance(remote, dict):
        return None
    link, there = remote.get("link", {}), remote.get("sysinfo", {})

    def host(info: dict[str, Any], address: Any, interface: Any, mtu: Any) -> str:
        return (f"{info.get('hostname') or '?'} {address} ({interface}, MTU {mtu}; {info.get('os')} "
                f"{info.get('kernel')}, {info.get('cpu_model')}, Python {info.get('python_version')})")

    here = host(metadata, link.get("local_address"), link.get("local_interface"), link.get("local_mtu"))
    away = host(there, link.get("remote_address"), link.get("remote_interface"), link.get("remote_mtu"))
    roles = "clients" if remote.get("reverse") else "servers"
    return f"Hosts: here {here}; there ({roles}, via {remote.get('command')!r}) {away}"


class Split:
    """A launcher that starts the plan's remote roles through :class:`Remote` and the others locally."""

    name = "remote"

    def __init__(self, remote: Remote, local: Launcher, plan: Plan) -> None:
        self.remote, self.local, self.plan = remote, local, plan

    def start(self, spec: WorkerSpec) -> WorkerHandle:
        if self.plan.is_remote(spec.role):
            return self.remote.start(replace(spec, label=f"{spec.label} on {self.plan.there}", fds=()))
        return self.local.start(spec)

    def close(self) -> None:
        try:
            self.local.close()
        finally:
            self.remote.close()


class SplitTransport:
    """The transport of a cell across hosts, as the supervisor sees it: ``setup()`` makes this host's side only."""

    def __init__(self, transport: Any, plan: Plan) -> None:
        self.transport, self.plan = transport, plan

    def setup(self) -> dict[str, Any]:
        return dict(self.transport.setup_remote(self.plan.remote_roles, self.plan.here, self.plan.there))

    def fds_for(self, role: str, index: int = 0) -> tuple[int, ...]:
        return () if self.plan.is_remote(role) else tuple(self.transport.fds_for(role, index))

    def close_parent_fds(self) -> None:
        self.transport.close_parent_fds()

    def teardown(self) -> None:
        self.transport.teardown()


class RemoteSupervisor(Supervisor):
    """CONFIG to the other host's workers first (they bind and answer BOUND), then to this host's."""

    def __init__(self, launcher: Launcher, session: Session, timing: Timing | None = None) -> None:
        super().__init__(launcher, timing)
        self.session = session

    def configure(self, workers: list[WorkerHandle], base: dict[str, Any],
                  placement: dict[str, list[int] | None], setup: float) -> None:
        plan = self.session.plan
        remote = [w for w in workers if plan.is_remote(w.spec.role)]
        for w in remote:
            self._send(w, {**base, "role": w.spec.role, "index": w.spec.index, "bind": True,
                           "cpus": placement.get(w.spec.key)})
        address = dict(base["address"])
        for message in self.collect(remote, "BOUND", setup, "open its endpoint").values():
            address.update(message.get("address") or {})
        local = [w for w in workers if not plan.is_remote(w.spec.role)]
        super().configure(local, {**base, "address": address}, placement, setup)


def _cpus(placed: dict[str, list[int] | None], role: str) -> str:
    """The CPUs the workers of one role run on: "CPU 1", "CPUs 0,1" or "unpinned"."""
    cpus = sorted({c for key, value in placed.items() if key.startswith(role) for c in value or ()})
    if not cpus:
        return "unpinned"
    return f"CPU {cpus[0]}" if len(cpus) == 1 else f"CPUs {','.join(map(str, cpus))}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _last(data: bytes | None) -> str:
    lines = [ln.strip() for ln in (data or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def main(argv: list[str] | None = None) -> int:
    """``python -m ipclab.engine.remote hello ADDR``: this host's sysinfo and the interface holding ADDR, as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "hello":
        print("usage: python -m ipclab.engine.remote hello ADDRESS", file=sys.stderr)
        return 2
    from ..probes import link_info, sysinfo

    print(json.dumps({"sysinfo": sysinfo(), "link": link_info(args[1])}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
