"""The real sweep, policy, supervision, patterns and statistics, with workers as threads (the Inline launcher) over
the in-process loopback transport. Fast tier: no processes; each run takes milliseconds.

Misbehaving transports are loopback subclasses defined here (the worker threads import them by module:Class).
"""

from __future__ import annotations

import json
import os
import stat
import threading
from typing import Any

import pytest
from faulty_transports import RefusesServer, Wrapped, WrapsOneEnd

from ipclab import results, runner
from ipclab.config import KiB, RunConfig
from ipclab.declarations import PatternSpec, TrafficShape
from ipclab.engine import policy
from ipclab.engine.inline import Inline
from ipclab.engine.supervise import Timing
from ipclab.patterns import PATTERNS, get_pattern
from ipclab.transports import get_transport
from ipclab.transports.base import Channel
from ipclab.transports.loopback import LoopbackTransport, _hubs

FAST = Timing(setup=5.0, exit_grace=0.05, peer_grace=0.01)


class _Stop(Wrapped):
    """Answers 10 messages, then reads and drops everything until the loopback is torn down (a thread cannot be
    killed, so it must not hang for good)."""

    def recv_into(self, buf: memoryview) -> int:
        self.n += 1
        while self.n > 10:
            self.inner.recv_into(buf)  # EOFError once torn down: the thread ends
        return self.inner.recv_into(buf)


class _Flip(Wrapped):
    def send(self, msg: memoryview) -> None:
        self.n += 1
        if self.n % 5 == 1 and len(msg):  # messages 0, 5, 10, ...
            bad = bytearray(msg)
            bad[-1] ^= 1
            msg = memoryview(bad)
        self.inner.send(msg)


class Raising(RefusesServer, LoopbackTransport):
    name = "loopback-raise"
    refusal = "refuses to open (deliberate)"


class Hanging(WrapsOneEnd, LoopbackTransport):
    name = "loopback-hang"
    fault = _Stop


class SlowStart(LoopbackTransport):
    name = "loopback-slow"

    @classmethod
    def connect(cls, address: dict[str, Any], role: str, index: int = 0) -> Channel:
        hub = _hubs.get(address["loopback"])
        while role == "server" and hub is not None and not hub.torn:  # until the supervisor gives up
            threading.Event().wait(0.005)
        return super().connect(address, role, index)


class Flipping(WrapsOneEnd, LoopbackTransport):
    name = "loopback-flip"
    faulty_role, fault = "client", _Flip


class Small(LoopbackTransport):
    name = "loopback-small"
    max_message = 100


class Absent(LoopbackTransport):
    name = "loopback-absent"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return "not on this machine (deliberate)"


class SingleWriter(LoopbackTransport):
    name = "loopback-single"
    multi_writer = False


class Lossy(LoopbackTransport):
    name = "loopback-lossy"
    reliable = False
    drop_every = 7


TEST_TRANSPORTS = {c.name: c for c in (Raising, Hanging, SlowStart, Flipping, Small, Absent, SingleWriter, Lossy)}


def resolve(name: str) -> Any:
    return TEST_TRANSPORTS.get(name) or get_transport(name)


def sweep(transports: tuple[str, ...] = ("loopback",), patterns: tuple[str, ...] = ("pingpong",),
          sizes: tuple[int, ...] = (64,), *, timing: Timing = FAST, progress: Any = None, on_cell: Any = None,
          **config: Any) -> tuple[dict[str, Any], runner.Runner, Inline]:
    config.setdefault("count", 30)
    config.setdefault("warmup", 3)
    launcher = Inline()
    r = runner.Runner(RunConfig(transports=transports, patterns=patterns, sizes=sizes, **config), metadata={},
                      launcher=launcher, timing=timing, transports=resolve, progress=progress, on_cell=on_cell)
    try:
        return r.run(), r, launcher
    finally:
        assert launcher.alive() == []  # every worker thread ended with the sweep


# -- the sweep -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PATTERNS))
def test_every_pattern_runs_inline(name: str) -> None:
    spec = get_pattern(name).SPEC
    result, _, _ = sweep(patterns=(name,), trials=2, clients=2)
    (cell,) = result["cells"]
    assert cell["status"] == "ok", cell["reason"]
    assert [t["trial"] for t in cell["trials"]] == [1, 2]
    assert spec.headline in cell["summary"] and spec.headline in cell["spread"]
    keys = policy.worker_keys(get_pattern(name).roles({"clients": 2}))
    assert all(set(t["raw"]) == set(keys) for t in cell["trials"])
    assert not any("samples" in r for t in cell["trials"] for r in t["raw"].values())  # blobs are summarised


def test_cells_run_pattern_by_transport_by_size() -> None:
    events: list[tuple] = []

    def progress(event: str, **info: Any) -> None:
        events.append((event, info.get("label"), info.get("trial")))

    result, _, _ = sweep(("loopback", "loopback-small"), ("pingpong", "reqrep"), (8, 64), trials=2,
                         progress=progress)
    order = [(c["pattern"], c["transport"], c["size_bytes"]) for c in result["cells"]]
    assert order == [(p, t, s) for p in ("pingpong", "reqrep") for t in ("loopback", "loopback-small")
                     for s in (8, 64)]
    assert events[0] == ("start", None, None)
    trials = [(label, trial) for event, label, trial in events if event == "trial"]
    assert trials[:2] == [("pingpong loopback 8 B", 1), ("pingpong loopback 8 B", 2)]
    assert len(trials) == 8 * 2


def test_automatic_count_and_warmup_come_from_the_count_class() -> None:
    result, _, _ = sweep(patterns=("pingpong",), sizes=(64 * KiB,), count=None, warmup=None)
    (cell,) = result["cells"]
    assert cell["count"] == policy.auto_count("round_trip", 64 * KiB) == 1024
    assert cell["warmup"] == 100 and cell["trials"][0]["metrics"]["round_trips"] == 1024


def test_a_duration_run_has_no_count_and_the_full_warmup() -> None:
    result, _, _ = sweep(count=None, warmup=None, duration=0.02)
    (cell,) = result["cells"]
    assert cell["count"] is None and cell["duration_s"] == 0.02 and cell["warmup"] == 100
    assert cell["status"] == "ok" and cell["trials"][0]["metrics"]["round_trips"] > 0


# -- n/a cells ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transport, pattern, size, options, reason", [
    ("loopback-small", "pingpong", 4096, {}, "4 KiB exceeds the loopback-small message limit of 100 bytes"),
    ("loopback-absent", "pingpong", 64, {}, "unavailable: not on this machine (deliberate)"),
    ("loopback-single", "fanin", 64, {}, "loopback-single connects one writer to one reader; this workload needs "
                                         "several writers (a multi_writer transport)"),
    ("loopback", "reqrep", 0, {}, "an empty reply has no bytes to download; reqrep needs a size of at least 1 B"),
    ("loopback", "pingpong", 0, {"count": None, "duration": 0.1},
     "a duration run needs an end marker, which an empty message cannot carry; use --count"),
])
def test_na_cells_say_why_and_run_nothing(transport: str, pattern: str, size: int, options: dict,
                                          reason: str) -> None:
    skipped: list[dict] = []
    result, _, launcher = sweep((transport,), (pattern,), (size,), trials=3,
                                progress=lambda e, **i: skipped.append(i) if e == "skip" else None, **options)
    (cell,) = result["cells"]
    assert (cell["status"], cell["reason"], cell["trials"], cell["summary"]) == ("n/a", reason, [], {})
    assert [(s["reason"], s["trials"]) for s in skipped] == [(reason, 3)]
    assert skipped[0]["label"].startswith(f"{pattern} {transport} ")
    assert launcher.workers == []  # nothing was started


# -- placement ---------------------------------------------------------------------------------------------------
def test_placement_is_recorded_per_worker() -> None:
    result, _, _ = sweep(patterns=("fanin",), clients=2, pin="none")
    (cell,) = result["cells"]
    assert cell["placement"] == "unpinned" and cell["cpus"] == {"server": None, "client0": None, "client1": None}


def test_an_unbounded_writer_without_back_pressure_is_placed_apart() -> None:
    result, _, _ = sweep(("loopback-lossy", "loopback"), ("stream",), pin="auto")
    lossy, reliable = result["cells"]
    cpus = policy.usable_cpus()
    assert reliable["placement"] == f"same CPU ({cpus[-1]})"
    if len(cpus) >= 2:
        assert lossy["placement"] == f"cross CPUs (server {cpus[0]}, client {cpus[1]})"


# -- supervision -------------------------------------------------------------------------------------------------
def test_a_worker_that_raises_fails_its_cell_with_its_one_line() -> None:
    failed: list[dict] = []
    result, _, _ = sweep(("loopback-raise", "loopback"), ("pingpong",), trials=2,
                         progress=lambda e, **i: failed.append(i) if e == "failed" else None)
    bad, good = result["cells"]
    assert bad["status"] == "failed"
    assert bad["reason"] == "echo server failed: RuntimeError: refuses to open (deliberate)"
    assert bad["traceback"].startswith("Traceback") and "deliberate" in bad["traceback"]
    assert failed == [{"label": "pingpong loopback-raise 64 B", "reason": bad["reason"], "remaining": 1}]
    assert good["status"] == "ok"  # the sweep goes on


def test_a_worker_that_never_answers_is_timed_out_with_the_budget() -> None:
    result, _, _ = sweep(("loopback-hang", "loopback"), ("pingpong",), timeout=0.2, trials=2)
    bad, good = result["cells"]
    assert bad["status"] == "failed" and bad["trials"] == []
    assert bad["reason"] == ("echo server and client did not finish within 0.2 s (timed out; raise --timeout if "
                             "the cell is just slow)")
    assert good["status"] == "ok"


def test_a_worker_that_never_starts_is_timed_out_with_the_setup_budget() -> None:
    timing = Timing(setup=0.1, exit_grace=0.05, peer_grace=0.01)
    result, _, _ = sweep(("loopback-slow",), ("stream",), timing=timing)
    (cell,) = result["cells"]
    assert cell["status"] == "failed" and cell["reason"].startswith("consumer did not start within 0.1 s")


def test_corrupt_messages_are_counted_and_warned(monkeypatch) -> None:
    result, _, _ = sweep(("loopback-flip", "loopback"), ("stream",), sizes=(100,), count=50, warmup=0, verify=True)
    flipped, clean = result["cells"]
    assert flipped["trials"][0]["metrics"]["corrupt"] == 10
    assert flipped["warnings"] == [{"code": "corrupt", "message": "trial 1: 10 corrupt message(s)"}]
    assert clean["warnings"] == [] and clean["trials"][0]["metrics"]["corrupt"] == 0


def test_warning_objects_validate_in_the_result_format() -> None:
    result, _, _ = sweep(("loopback-flip",), ("stream",), sizes=(100,), count=50, warmup=0, verify=True)
    assert result["cells"][0]["warnings"] == [{"code": "corrupt", "message": "trial 1: 10 corrupt message(s)"}]
    results.validate(result)


def test_a_lossy_transport_counts_what_it_lost() -> None:
    result, _, _ = sweep(("loopback-lossy",), ("stream",), count=60, warmup=3)
    figures = result["cells"][0]["trials"][0]["metrics"]
    assert result["cells"][0]["status"] == "ok"
    assert figures["lost"] > 0 and figures["received"] + figures["lost"] == 60


# -- a pattern of the test's own: what the worker sees, and the spread check ----------------------------------
class Echoed:
    """A pattern whose workers report their Context and whose headline is scripted per trial."""

    SPEC = PatternSpec(name="echoed", summary="test", shape=TrafficShape(duplex=True), headline="score",
                       count_class="round_trip", labels={"server": "scorer", "client": "asker"}, metrics=(),
                       tables=("score",))
    LABELS = SPEC.labels
    scores: list[float] = []

    @staticmethod
    def roles(options: dict[str, Any]) -> list[tuple[str, int]]:
        return [("server", 0), ("client", 0)]

    @staticmethod
    def run(role: str, index: int, channel: Channel, ctx: Any) -> dict[str, Any]:
        return {"seen": [ctx.size, ctx.count, ctx.warmup, ctx.seed, ctx.verify, ctx.reliable, ctx.clients]}

    @classmethod
    def metrics(cls, raw: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return {"score": cls.scores.pop(0), "seen_equal": raw["server"]["seen"] == raw["client"]["seen"]}


@pytest.fixture
def echoed(monkeypatch):
    import ipclab.patterns

    real = ipclab.patterns.get_pattern
    monkeypatch.setattr(ipclab.patterns, "get_pattern", lambda name: Echoed if name == "echoed" else real(name))
    return Echoed


def test_workers_get_the_cells_config(echoed) -> None:
    echoed.scores = [1.0]
    result, _, _ = sweep(patterns=("echoed",), sizes=(48,), count=7, warmup=2, seed=9, verify=True, clients=1)
    (cell,) = result["cells"]
    assert cell["trials"][0]["raw"]["server"]["seen"] == [48, 7, 2, 9, True, True, 1]
    assert cell["trials"][0]["metrics"]["seen_equal"] is True


def test_trials_that_disagree_are_warned_about_by_their_headline(echoed) -> None:
    echoed.scores = [100.0, 150.0, 110.0]
    result, _, _ = sweep(patterns=("echoed",), trials=3)
    (cell,) = result["cells"]
    assert cell["summary"]["score"] == 110.0
    assert cell["warnings"] == [{"code": "spread", "message": "score differs by 45% across trials: noisy machine; "
                                                               "add --trials or pin CPUs"}]


def test_steady_trials_raise_no_warning(echoed) -> None:
    echoed.scores = [100.0, 101.0]
    result, _, _ = sweep(patterns=("echoed",), trials=2)
    assert result["cells"][0]["warnings"] == []


# -- interrupts, on_cell, the result, the run directory --------------------------------------------------------
def test_an_interrupt_mid_cell_keeps_the_finished_trials() -> None:
    def progress(event: str, **info: Any) -> None:
        if event == "trial" and info["trial"] == 3:
            raise KeyboardInterrupt

    launcher = Inline()
    r = runner.Runner(RunConfig(transports=("loopback",), patterns=("pingpong", "reqrep"), sizes=(64,), count=20,
                                warmup=2, trials=4), metadata={}, launcher=launcher, timing=FAST, progress=progress)
    with pytest.raises(KeyboardInterrupt):
        r.run()
    (cell,) = r.result["cells"]
    assert r.result["interrupted"] is True and r.result["finished"]
    assert [t["trial"] for t in cell["trials"]] == [1, 2] and cell["summary"]["round_trips"] == 20
    assert cell["warnings"][-1] == {"code": "interrupted", "message": "interrupted after 2 of 4 trials"}
    assert r.workdir is None and launcher.alive() == []


def test_an_interrupt_before_any_trial_finished_keeps_no_cell() -> None:
    def progress(event: str, **info: Any) -> None:
        if event == "trial":
            raise KeyboardInterrupt

    launcher = Inline()
    r = runner.Runner(RunConfig(transports=("loopback",), patterns=("pingpong",), sizes=(64,), count=20),
                      metadata={}, launcher=launcher, progress=progress)
    with pytest.raises(KeyboardInterrupt):
        r.run()
    assert r.result["cells"] == [] and r.result["interrupted"] is True


def test_an_interrupt_while_the_run_directory_is_made_leaves_no_directory(monkeypatch: Any) -> None:
    """SIGINT while the private directory comes into being waits (signals blocked), then lands as soon as they
    are unblocked, before any cell: the directory it made must still be removed (soak run #77 left one)."""
    import signal

    from ipclab.engine import rundir

    made: list[str] = []
    record = rundir.write_run_record

    def record_then_interrupt(path: str) -> None:
        record(path)
        made.append(path)
        os.kill(os.getpid(), signal.SIGINT)  # blocked here: delivered when create() unblocks it

    monkeypatch.setattr(rundir, "write_run_record", record_then_interrupt)
    r = runner.Runner(RunConfig(transports=("loopback",), patterns=("pingpong",), sizes=(64,), count=20),
                      metadata={}, launcher=Inline())
    with pytest.raises(KeyboardInterrupt):
        r.run()
    assert len(made) == 1 and not os.path.exists(made[0])
    assert r.workdir is None and r.result["cells"] == []


def test_on_cell_sees_every_cell_as_it_ends() -> None:
    seen: list[list[str]] = []
    sweep(patterns=("pingpong", "stream"), sizes=(8, 64),
          on_cell=lambda res: seen.append([f"{c['pattern']}/{c['size_bytes']}" for c in res["cells"]]))
    assert seen == [["pingpong/8"], ["pingpong/8", "pingpong/64"], ["pingpong/8", "pingpong/64", "stream/8"],
                    ["pingpong/8", "pingpong/64", "stream/8", "stream/64"]]


def test_the_result_is_a_valid_json_document() -> None:
    result, _, _ = sweep(("loopback", "loopback-small"), ("pingpong", "fanin"), (8, 4096), clients=2)
    results.validate(result)
    again = json.loads(results.dumps(result))
    assert again["format"] == "ipclab-result" and again["interrupted"] is False and again["finished"]
    assert again["config"]["transports"] == ["loopback", "loopback-small"]
    assert {c["status"] for c in again["cells"]} == {"ok", "n/a"}
    for cell in again["cells"]:
        assert set(cell) >= {"pattern", "transport", "size_bytes", "status", "reason", "count", "duration_s",
                             "warmup", "placement", "cpus", "trials", "summary", "spread", "warnings"}


def test_the_run_directory_is_private_while_running_and_gone_after() -> None:
    seen: dict[str, Any] = {}
    holder: dict[str, runner.Runner] = {}

    def progress(event: str, **info: Any) -> None:
        if event == "trial":
            path = holder["r"].workdir
            assert path is not None
            seen["path"], seen["mode"] = path, stat.S_IMODE(os.stat(path).st_mode)
            with open(os.path.join(path, "run.json"), encoding="utf-8") as f:
                seen["record"] = json.load(f)

    r = runner.Runner(RunConfig(transports=("loopback",), patterns=("pingpong",), sizes=(64,), count=10),
                      metadata={}, launcher=Inline(), progress=progress)
    holder["r"] = r
    r.run()
    assert seen["mode"] == 0o700 and seen["record"]["pid"] == os.getpid()
    assert not os.path.exists(seen["path"]) and r.workdir is None


def test_the_facade_is_the_engine() -> None:
    from ipclab.engine import sweep as engine_sweep

    assert runner.Runner is engine_sweep.Runner and runner.summarize_trials is engine_sweep.summarize_trials
    result = runner.run(RunConfig(transports=("loopback",), patterns=("pingpong",), sizes=(64,), count=10),
                        metadata={}, launcher=Inline())
    assert result["cells"][0]["status"] == "ok"
