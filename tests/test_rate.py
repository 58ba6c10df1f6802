"""--rate (open loop), fast tier: parsing and bad input, the sweep's cells, default counts, the result model, and
the schedule figures computed from known raw records (no processes)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from ipclab import pacing
from ipclab.cli import build_parser, main
from ipclab.cli.run import build_config
from ipclab.config import MAX_RATE, RunConfig, format_rate, parse_rates
from ipclab.engine import sweep
from ipclab.engine.policy import paced_count
from ipclab.errors import ConfigError
from ipclab.model import Cell
from ipclab.patterns import get_pattern, openloop
from ipclab.patterns.common import encode_samples, new_samples
from ipclab.patterns.loops import HISTOGRAMS


def one_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("ipclab: error: ")
    return err.strip()


def test_rates_parse_numbers_suffixes_and_max_in_order() -> None:
    assert parse_rates("1000,10k,50000,max") == (1000.0, 10000.0, 50000.0, None)
    assert parse_rates("max") == (None,)
    assert parse_rates("1M") == (1e6,)
    assert parse_rates([500, "2.5k", "MAX"]) == (500.0, 2500.0, None)
    assert parse_rates("1000,1k") == (1000.0,)  # duplicates dropped, first place kept
    assert RunConfig().rates == (None,)


@pytest.mark.parametrize("value, named", [("0", "'0'"), ("-5", "'-5'"), ("nan", "'nan'"), ("inf", "'inf'"),
                                          ("2M", "'2M'"), ("fast", "'fast'"), ("10,,20", "empty item")])
def test_a_bad_rate_is_one_line_exit_2(capsys, value: str, named: str) -> None:
    err = one_error(capsys, ["run", "-p", "pingpong", "--rate", value, "-t", "pipe"])
    assert "--rate" in err and named in err
    if named != "empty item":
        assert f"{MAX_RATE:,.0f}" in err and "max" in err  # the limit and the fix


def test_rate_on_patterns_without_requests_is_refused(capsys) -> None:
    err = one_error(capsys, ["run", "-p", "burst", "--rate", "1000", "-t", "pipe"])
    assert "--rate" in err and "burst" in err and "pingpong" in err
    err = one_error(capsys, ["run", "-p", "burst,connect", "--rate", "1k,max", "-t", "pipe"])
    assert "burst, connect have no requests" in err
    # max alone is the closed loop everyone has
    assert build_config(build_parser().parse_args(["run", "-p", "burst", "--rate", "max", "-t", "pipe"])).rates == (
        None,)


def test_rate_from_toml_and_back(tmp_path) -> None:
    path = tmp_path / "e.toml"
    path.write_text('patterns = ["pingpong"]\ntransports = ["pipe"]\nrates = [1000, "10k", "max"]\n')
    cfg = build_config(build_parser().parse_args(["run", "--experiment", str(path)]))
    assert cfg.rates == (1000.0, 10000.0, None)
    back = RunConfig.from_dict(cfg.to_dict())
    assert back.rates == cfg.rates
    path.write_text('patterns = ["pingpong"]\nrates = [0]\n')
    with pytest.raises(ConfigError, match="rates"):
        build_config(build_parser().parse_args(["run", "--experiment", str(path)]))


def test_cells_run_pattern_transport_size_rate_and_unpaced_patterns_once() -> None:
    cfg = RunConfig(transports=("pipe", "tcp"), patterns=("pingpong", "burst"), sizes=(64,),
                    rates=(1000.0, None))
    runner = sweep.Runner(cfg)
    try:
        assert runner.cells() == [("pingpong", "pipe", 64, 1000.0), ("pingpong", "pipe", 64, None),
                                  ("pingpong", "tcp", 64, 1000.0), ("pingpong", "tcp", 64, None),
                                  ("burst", "pipe", 64, None), ("burst", "tcp", 64, None)]
    finally:
        runner.launcher.close()


def test_what_each_pattern_paces_is_declared() -> None:
    assert get_pattern("pingpong").SPEC.paced == "round trip"
    assert get_pattern("reqrep").SPEC.paced == "request"
    assert get_pattern("stream").SPEC.paced == "message"
    assert get_pattern("burst").SPEC.paced is None


def test_default_count_is_about_a_second_of_requests() -> None:
    assert paced_count(1000) == 1000 and paced_count(50_000) == 50_000
    assert paced_count(10) == 200 and paced_count(1e6) == 100_000
    assert "one second" in " ".join(o.help for o in __import__("ipclab.options").options.table() if o.name == "rates")


def test_open_loop_needs_the_header() -> None:
    assert openloop.not_applicable(8, 1000.0) is not None and "16" in openloop.not_applicable(8, 1000.0)
    assert openloop.not_applicable(16, 1000.0) is None and openloop.not_applicable(8, None) is None
    assert openloop.not_applicable(8, 1000.0, answers=False) is None  # a paced stream of small messages runs
    slow = openloop.not_applicable(64, 0.5, reliable=False)
    assert slow is not None and "0.5/s" in slow and "at least 1/s" in slow
    assert openloop.not_applicable(64, 0.5, reliable=True) is None


def test_cells_carry_rate_only_when_open_loop() -> None:
    base = {"pattern": "pingpong", "transport": "pipe", "size_bytes": 64, "status": "ok"}
    closed = Cell.from_dict(dict(base)).to_dict()
    assert "rate" not in closed
    opened = Cell.from_dict({**base, "rate": 1000.0})
    assert opened.rate == 1000.0 and opened.to_dict()["rate"] == 1000.0
    assert "rate" not in dataclasses.replace(Cell.from_dict(dict(base)), _keys=())._json()
    with pytest.raises(ConfigError):
        Cell.from_dict({**base, "rate": -1})


def test_format_rate() -> None:
    assert [format_rate(r) for r in (None, 1000.0, 12500.0, 300.0)] == ["max", "1k/s", "12500/s", "300/s"]


def test_achieved_rate_counts_intervals_from_the_intended_start() -> None:
    # 1001 requests 1 ms apart, the last one on time: exactly 1000/s; the last 10 % late: 10 % lower
    assert pacing.achieved_rate(1001, 0, 1_000_000_000) == pytest.approx(1000.0)
    assert pacing.achieved_rate(1001, 0, 1_100_000_000) == pytest.approx(1000 / 1.1)
    assert pacing.achieved_rate(1, 0, 5) is None


def test_schedule_is_integer_ns_from_t0() -> None:
    s = pacing.Schedule(3.0)
    s.start(1000, lead_ns=0)
    assert [s.due(i) for i in range(4)] == [1000, 1000 + 333_333_333, 1000 + 666_666_666, 1_000_001_000]


def _samples(values: list[int]) -> str:
    arr = new_samples(len(values))
    for i, v in enumerate(values):
        arr[i] = v
    return encode_samples(arr, len(values))


def test_figures_of_a_known_paced_trial() -> None:
    """Four pings 1 ms apart at 1000/s; the server stalled 3 ms on the first: from the intended time the
    answers took 3.01, 2.01, 1.01 and 0.01 ms; from the actual send 3.01 ms once and 10 us after."""
    client = {"samples": _samples([3_010_000, 2_010_000, 1_010_000, 10_000]),
              "service": _samples([3_010_000, 2_010_000, 1_010_000, 10_000]),
              "lag": _samples([0, 0, 0, 0]), "n": 4, "sent": 4, "lost": 0, "stale": 0, "corrupt": 0,
              "schedule": openloop.schedule_raw(1000.0, 4, 0, 3_000_000, 4, 256, False),
              "probe": {}}
    raw = {"client": client, "server": {"probe": {}}}
    figures, n = openloop.answer_figures(client, "rtt")
    assert n == 4 and figures["rtt_max_us"] == pytest.approx(3010) and figures["rtt_min_us"] == pytest.approx(10)
    assert set(figures[HISTOGRAMS]) == {"rtt", "service"}
    sched = openloop.schedule_figures(raw)
    assert sched["offered_msg_s"] == 1000.0 and sched["achieved_msg_s"] == pytest.approx(1000.0)
    assert sched["in_flight_max"] == 4 and sched["lag_max_us"] == 0
    assert set(sched[HISTOGRAMS]) == {"lag"}


def test_saturated_warning_says_offered_and_achieved() -> None:
    cell = {"transport": "pipe", "summary": {"achieved_msg_s": 600.0, "lag_p99_us": 1500.0}, "warnings": []}
    sweep._check_saturated(cell, 1000.0)
    (w,) = cell["warnings"]
    assert w["code"] == "saturated" and "1,000" in w["message"] and "600" in w["message"]
    fine = {"transport": "pipe", "summary": {"achieved_msg_s": 960.0}, "warnings": []}
    sweep._check_saturated(fine, 1000.0)
    assert fine["warnings"] == []


def test_in_flight_cap_bounds_the_answers_in_the_channel() -> None:
    from ipclab.transports.base import Channel

    class Plain(Channel):  # no declared depth: Channel.in_flight_limit() is None
        send = recv_into = close = None  # type: ignore[assignment]  # never called here

    class Queue(Plain):
        def in_flight_limit(self) -> int:
            return 10

    assert openloop.in_flight_cap(Plain(), 64) == 128  # 32 KiB / 64 B = 512, at most 128
    assert openloop.in_flight_cap(Plain(), 4096) == 8
    assert openloop.in_flight_cap(Plain(), 1 << 20) == 1
    assert openloop.in_flight_cap(Queue(), 64) == 10
    assert math.isfinite(pacing.SPIN_NS)


def test_spin_is_at_most_a_quarter_of_the_period() -> None:
    assert pacing.spin_ns(1e6) == pacing.SPIN_NS == 50_000  # 1,000/s
    assert pacing.spin_ns(1e5) == 25_000  # 10,000/s
    assert pacing.spin_ns(1e3) == 250  # 1,000,000/s


def test_an_open_loop_count_beyond_the_memory_bound_is_refused(capsys) -> None:
    from ipclab.config import MAX_PACED

    err = one_error(capsys, ["run", "-p", "pingpong", "--rate", "1000", "-n", str(MAX_PACED + 1), "-t", "pipe"])
    assert "--count" in err and str(MAX_PACED) in err
    assert one_error(capsys, ["run", "-p", "pingpong", "--rate", "0", "-t", "pipe"])


def _inline(**config):
    from ipclab import runner
    from ipclab.engine.inline import Inline
    from ipclab.engine.supervise import Timing

    launcher = Inline()
    r = runner.Runner(RunConfig(transports=("loopback",), sizes=(64,), **config), metadata={}, launcher=launcher,
                      timing=Timing(setup=5.0))
    try:
        return r.run()["cells"]
    finally:
        assert launcher.alive() == []


def test_a_channel_that_cannot_wait_makes_the_open_loop_cell_na_and_keeps_the_closed_one() -> None:
    """The in-process loopback channel has no readiness wait: the client says so, releases the server with the
    end marker, and the cell is n/a with the reason; its count is the default of about a second of requests."""
    opened, closed = _inline(patterns=("pingpong",), rates=(1000.0, None), warmup=2)
    assert opened["status"] == "n/a" and "wait_readable" in opened["reason"] and "--rate max" in opened["reason"]
    assert opened["rate"] == 1000.0 and opened["count"] == paced_count(1000.0) == 1000
    assert closed["status"] == "ok" and "rate" not in closed


def test_a_paced_stream_needs_no_readiness() -> None:
    (cell,) = _inline(patterns=("stream",), rates=(20000.0,), count=200, warmup=2)
    assert cell["status"] == "ok", cell["reason"]
    m = cell["trials"][0]["metrics"]
    assert m["received"] == 200 and m["offered_msg_s"] == 20000.0 and "lag_p50_us" in m
    assert set(cell["trials"][0]["histograms"]) == {"owl", "lag"}
    assert m["msg_s"] <= 20000.0 * 1.05  # the schedule, not the mechanism, sets the pace


def test_unsent_counts_the_requests_a_duration_run_had_due() -> None:
    # 1 s at 1000/s from t0 = 0: requests 0..999 are due before the end
    assert openloop.unsent(1_000_000_000, 0, 1e6, 1000) == 0
    assert openloop.unsent(1_000_000_000, 0, 1e6, 400) == 600
    assert openloop.unsent(None, 0, 1e6, 5) == 0  # a count run sends them all, however late


def test_an_open_loop_cell_asks_the_transport_for_requests_in_flight() -> None:
    """A closed loop declares one message in flight (shm then uses a one-slot channel, where a second message
    waits); an open-loop client keeps up to IN_FLIGHT_MAX outstanding, and the transport is told so."""
    from ipclab.patterns import get_spec, openloop

    closed = get_spec("pingpong").shape
    assert closed.in_flight == 1
    carried = openloop.carried_shape(closed)
    assert carried.in_flight == openloop.IN_FLIGHT_MAX and carried.duplex == closed.duplex
    stream = get_spec("stream").shape
    assert openloop.carried_shape(stream) == stream  # an unbounded writer stays unbounded
