"""Supervision of a trial's workers, driven by scripted handles: every way a worker fails becomes one line.

Fast tier: the "workers" are the test itself, writing to the other end of each control channel.
"""

from __future__ import annotations

import signal
import time

import pytest

from ipclab import control
from ipclab.engine.launch import WorkerSpec
from ipclab.engine.supervise import Supervisor, Timing
from ipclab.errors import WorkerError

FAST = Timing(setup=1.0, exit_grace=0.01, peer_grace=0.01)


class Scripted:
    """A WorkerHandle whose worker is the test: ``say`` writes what the worker would send."""

    def __init__(self, key: str, label: str, code: int | None = None, tail: str = "") -> None:
        self.spec = WorkerSpec(key, "server" if key == "server" else "client", 0, label)
        self.channel, self.worker = control.pipe_pair()
        self.code, self.tail = code, tail
        self.killed = self.closed = False

    @property
    def pid(self) -> int | None:
        return None

    def say(self, message: dict) -> None:
        self.worker.send(message)

    def hang_up(self) -> None:
        self.worker.close()

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None) -> int | None:
        return self.code

    def kill(self) -> None:
        self.killed, self.code = True, -signal.SIGKILL

    def stderr_tail(self) -> str:
        return self.tail

    def close(self) -> None:
        self.channel.close()
        self.closed = True


@pytest.fixture
def pair():
    server, client = Scripted("server", "consumer"), Scripted("client", "producer")
    yield server, client
    for w in (server, client):
        w.close()
        w.worker.close()


def test_collect_returns_each_workers_message(pair) -> None:
    server, client = pair
    server.say({"type": "RESULT", "raw": {"n": 1}})
    client.say({"type": "STARTED"})  # not what is awaited: ignored
    client.say({"type": "RESULT", "raw": {"n": 2}})
    started = time.monotonic()
    got = Supervisor(None, FAST).collect([server, client], "RESULT", 5.0, "finish")  # type: ignore[arg-type]
    assert {k: m["raw"] for k, m in got.items()} == {"server": {"n": 1}, "client": {"n": 2}}
    assert time.monotonic() - started < 2.5  # the RESULT buffered behind STARTED is not left waiting


def test_an_error_is_the_workers_one_line_with_its_traceback(pair) -> None:
    server, client = pair
    server.say({"type": "ERROR", "message": "RuntimeError: no", "traceback": "Traceback (most recent call last)"})
    with pytest.raises(WorkerError) as info:
        Supervisor(None, FAST).collect([server, client], "READY", 1.0, "start")  # type: ignore[arg-type]
    assert str(info.value) == "consumer failed: RuntimeError: no"
    assert info.value.traceback == "Traceback (most recent call last)"


def test_a_peer_killed_by_a_signal_is_named_as_the_cause(pair) -> None:
    server, client = pair
    client.code, client.tail = -signal.SIGKILL, "last words"
    server.say({"type": "ERROR", "message": "EOFError: peer closed the channel"})
    with pytest.raises(WorkerError, match=r"^producer killed by SIGKILL: last words \(then consumer failed: "
                                          r"EOFError: peer closed the channel\)$"):
        Supervisor(None, FAST).collect([server, client], "RESULT", 1.0, "finish")  # type: ignore[arg-type]


@pytest.mark.parametrize("code, tail, reason", [
    (-signal.SIGKILL, "MemoryError", "consumer killed by SIGKILL: MemoryError"),
    (3, "", "consumer exited with status 3"),
    (None, "", "consumer closed its control channel but is still running"),
])
def test_a_death_says_how_it_died(pair, code: int | None, tail: str, reason: str) -> None:
    server, client = pair
    server.code, server.tail = code, tail
    server.hang_up()
    with pytest.raises(WorkerError) as info:
        Supervisor(None, FAST).collect([server, client], "READY", 1.0, "start")  # type: ignore[arg-type]
    assert str(info.value) == reason


def test_a_malformed_message_fails_the_trial_not_the_sweep(pair) -> None:
    server, client = pair
    control.write_all(server.worker.write_end, b"\x00\x00\x00\x02[]")
    with pytest.raises(WorkerError, match="consumer sent an unusable control message: malformed"):
        Supervisor(None, FAST).collect([server, client], "READY", 1.0, "start")  # type: ignore[arg-type]


def test_a_timeout_names_who_did_not_answer_and_the_budget(pair) -> None:
    server, client = pair
    client.say({"type": "RESULT", "raw": {}})
    with pytest.raises(WorkerError) as info:
        Supervisor(None, FAST).collect([server, client], "RESULT", 0.05, "finish")  # type: ignore[arg-type]
    assert str(info.value) == ("consumer did not finish within 0.05 s (timed out; raise --timeout if the cell is "
                               "just slow)")


def test_the_clock_is_injectable(pair) -> None:
    """A clock that jumps a minute per reading: a 50 s budget is spent without waiting 50 s."""
    ticks = iter(range(0, 10**6, 60))
    timing = Timing(setup=1.0, exit_grace=0.0, peer_grace=0.0, clock=lambda: float(next(ticks)))
    started = time.monotonic()
    with pytest.raises(WorkerError, match="consumer and producer did not start its loop within 50 s"):
        Supervisor(None, timing).collect(list(pair), "STARTED", 50.0, "start its loop")  # type: ignore[arg-type]
    assert time.monotonic() - started < 5


def test_stop_sends_exit_kills_the_stubborn_and_closes_every_channel(pair) -> None:
    server, client = pair
    client.code = 0  # exits on EXIT; the server never does
    Supervisor(None, FAST).stop([server, client])  # type: ignore[arg-type]
    assert server.killed and not client.killed
    assert server.closed and client.closed
    assert server.worker.recv(timeout=1) == {"type": "EXIT"} and client.worker.recv(timeout=1) == {"type": "EXIT"}


def test_a_worker_gone_before_reading_is_a_death_not_a_crash(pair) -> None:
    server, _ = pair
    server.code = 1
    server.worker.close()
    with pytest.raises(WorkerError, match="^consumer exited with status 1$"):
        Supervisor(None, FAST)._send(server, {"type": "START"})  # type: ignore[arg-type]


def test_a_setup_timeout_says_stuck_not_slow_and_names_the_bound(pair) -> None:
    server, client = pair
    client.say({"type": "READY"})
    with pytest.raises(WorkerError) as info:
        Supervisor(None, FAST).collect([server, client], "READY", 0.05, "start")  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("consumer did not start within 0.05 s (timed out in set-up: stuck opening the "
                              "transport, not slow")
    assert "raise --timeout" not in message and "the smaller of --timeout and 1 s" in message


class Recording(Scripted):
    """A worker that never exits by itself (blocked on its dead peer's channel): records how long it was given."""

    def __init__(self, key: str, label: str) -> None:
        super().__init__(key, label)
        self.waited: list[float | None] = []

    def wait(self, timeout: float | None) -> int | None:
        self.waited.append(timeout)
        return self.code


class OneShot:
    """A launcher handing out prepared handles; the transport is a stub with nothing to set up."""

    def __init__(self, handles: list[Scripted]) -> None:
        self.handles = list(handles)

    def start(self, spec: WorkerSpec) -> Scripted:
        return self.handles.pop(0)


class NoTransport:
    def setup(self) -> dict:
        return {}

    def fds_for(self, role: str, index: int) -> tuple:
        return ()

    def close_parent_fds(self) -> None:
        pass

    def teardown(self) -> None:
        pass


def test_a_failed_trials_survivors_get_the_short_grace_a_finished_trials_the_full_one() -> None:
    timing = Timing(setup=1.0, exit_grace=2.0, peer_grace=0.01, failed_grace=0.25)
    server, client = Recording("server", "consumer"), Recording("client", "producer")
    server.say({"type": "ERROR", "message": "OSError: peer gone"})  # the trial fails at READY
    sup = Supervisor(OneShot([server, client]), timing)  # type: ignore[arg-type]
    specs = [server.spec, client.spec]
    with pytest.raises(WorkerError):
        sup.run_trial(NoTransport(), specs, {}, {}, 5.0)
    assert client.killed and max(t for t in client.waited if t is not None) <= 0.25  # not the 2 s exit grace
    done_server, done_client = Recording("server", "consumer"), Recording("client", "producer")
    for w, kinds in ((done_server, ("READY", "STARTED", "RESULT")), (done_client, ("READY", "RESULT"))):
        for kind in kinds:
            w.say({"type": kind, "raw": {}})
    Supervisor(OneShot([done_server, done_client]), timing).run_trial(  # type: ignore[arg-type]
        NoTransport(), [done_server.spec, done_client.spec], {}, {}, 5.0)
    assert max(t for t in done_client.waited if t is not None) > 1.5  # a finished trial's workers get exit_grace
    for w in (server, client, done_server, done_client):
        w.worker.close()
