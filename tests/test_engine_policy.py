"""Per-cell policy from declarations: counts, warm-up, placement over traffic shapes. Fast tier: pure functions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ipclab import runner
from ipclab.config import KiB, MiB
from ipclab.declarations import TrafficShape
from ipclab.engine import policy
from ipclab.patterns import PATTERNS, get_pattern

DUPLEX = TrafficShape(duplex=True, in_flight=1)
ONE_WAY = TrafficShape(duplex=False, in_flight=None)
MANY = TrafficShape(duplex=False, many_writers=True, in_flight=None)
KEYS = ["server", "client"]


@dataclass
class FakeTransport:
    name: str = "fake"
    reliable: bool = True
    spins: bool = False


@pytest.mark.parametrize("size, expected", [(0, 5000), (1, 5000), (32 * KiB, 2048), (MiB, 200), (64 * MiB, 200)])
def test_round_trip_counts(size: int, expected: int) -> None:
    assert policy.auto_count("round_trip", size) == expected


@pytest.mark.parametrize("size, expected", [(64, 100000), (64 * KiB, 1024), (MiB, 200)])
def test_one_way_counts(size: int, expected: int) -> None:
    assert policy.auto_count("stream", size) == expected


@pytest.mark.parametrize("name", list(PATTERNS))
def test_facade_counts_read_the_patterns_declaration(name: str) -> None:
    spec = get_pattern(name).SPEC
    for size in (0, 64, 64 * KiB, MiB):
        assert runner.auto_count(name, size) == policy.auto_count(spec.count_class, size)
        assert runner.auto_count(spec, size) == runner.auto_count(name, size)


@pytest.mark.parametrize("count, warmup", [(0, 0), (50, 5), (1000, 100), (100000, 100)])
def test_warmup_is_a_tenth_capped_at_100(count: int, warmup: int) -> None:
    assert policy.auto_warmup(count) == warmup


@pytest.mark.parametrize("shape", [DUPLEX, ONE_WAY, MANY])
def test_auto_puts_a_blocking_transport_on_one_cpu_whatever_the_shape(shape: TrafficShape) -> None:
    placed, where, warnings = policy.choose_placement("auto", FakeTransport(), shape, KEYS, cpus=[0, 1, 2])
    assert placed == {"server": [2], "client": [2]} and where == "same CPU (2)" and warnings == []


def test_auto_gives_a_spinning_transport_one_cpu_per_side() -> None:
    keys = ["server", "client0", "client1"]
    placed, where, warnings = policy.choose_placement("auto", FakeTransport(spins=True), DUPLEX, keys, cpus=[3, 5])
    assert placed == {"server": [3], "client0": [5], "client1": [5]}
    assert where == "cross CPUs (server 3, client 5)" and warnings == []


def test_auto_separates_an_unbounded_writer_without_back_pressure() -> None:
    lossy = FakeTransport(reliable=False)
    _, where, _ = policy.choose_placement("auto", lossy, ONE_WAY, KEYS, cpus=[0, 1])
    assert where.startswith("cross CPUs")
    _, where, _ = policy.choose_placement("auto", lossy, DUPLEX, KEYS, cpus=[0, 1])
    assert where == "same CPU (1)"  # one message in flight: the writer waits for its reader anyway


def test_cross_on_one_cpu_warns_and_shares_it() -> None:
    placed, where, warnings = policy.choose_placement("cross", FakeTransport(), DUPLEX, KEYS, cpus=[4])
    assert placed == {"server": [4], "client": [4]} and where == "same CPU (4)"
    assert warnings == [{"code": "placement", "message": "only 1 CPU available: cross-CPU placement impossible, "
                                                         "both workers share it"}]


def test_two_pollers_on_one_cpu_are_warned_about() -> None:
    _, _, warnings = policy.choose_placement("same", FakeTransport(name="shm-x", spins=True), DUPLEX, KEYS,
                                             cpus=[0, 1])
    assert [w["code"] for w in warnings] == ["placement"]
    assert warnings[0]["message"].startswith("shm-x busy-polls") and "--pin cross" in warnings[0]["message"]


def test_none_and_no_affinity_leave_workers_unpinned() -> None:
    for pin, cpus in (("none", [0, 1]), ("auto", [])):
        placed, where, _ = policy.choose_placement(pin, FakeTransport(), DUPLEX, KEYS, cpus=cpus)
        assert placed == {"server": None, "client": None} and where == "unpinned"


@pytest.mark.parametrize("pin, where", [("0,1", "cross CPUs (server 0, client 1)"), ("1,1", "same CPU (1)"),
                                        ("1", "same CPU (1)")])
def test_explicit_cpus(pin: str, where: str) -> None:
    placed, got, _ = policy.choose_placement(pin, FakeTransport(), DUPLEX, KEYS, cpus=[0, 1])
    assert got == where and placed["server"] == [int(pin.split(",")[0])]


@pytest.mark.parametrize("name", list(PATTERNS))
def test_facade_placement_reads_the_shape(name: str) -> None:
    shape = get_pattern(name).SPEC.shape
    lossy = FakeTransport(reliable=False)
    expected = policy.choose_placement("auto", lossy, shape, KEYS)
    assert runner.choose_placement("auto", lossy, name, KEYS) == expected
    assert expected[1].startswith("cross") == (shape.unbounded and len(policy.usable_cpus()) >= 2)


def test_worker_keys() -> None:
    assert policy.worker_keys([("server", 0), ("client", 0)]) == ["server", "client"]
    assert policy.worker_keys([("server", 0), ("client", 0), ("client", 1)]) == ["server", "client0", "client1"]


def test_warning_objects() -> None:
    assert policy.warning("spread", "x") == {"code": "spread", "message": "x"}
