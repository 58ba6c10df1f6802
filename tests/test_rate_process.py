"""--rate end to end (process tier): the known-answer stall, saturation, a channel that cannot wait for readiness,
the figures every open-loop cell records, reqrep and the paced stream. Nothing leaks (conftest's no_leaks).

Timing asserts are order-of-magnitude facts only (this runs on a loaded 2-CPU machine): a 100 ms stall at
1,000 requests/s delays ~100 requests, so the open-loop p99 must show tens of ms; the closed loop, which sends
nothing while the server sleeps, charges the stall to one round trip per 1,000 and its p99 stays far below it.
"""

from __future__ import annotations

import json
import os

import pytest
from stall_transport import EVERY_S

pytestmark = pytest.mark.process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
ENV = {"PYTHONPATH": os.pathsep.join([ROOT, TESTS]),
       "IPCLAB_EXTRA_TRANSPORTS": "stall-every=stall_transport:StallEveryPipe,slow-echo=stall_transport:SlowEchoPipe,"
                                  "blind=stall_transport:BlindPipe,drop-ready=stall_transport:DropReadyPipe"}


def run(cli, tmp_path, *args: str) -> list[dict]:
    out = tmp_path / "r.json"
    proc = cli("run", *args, "-q", "-f", "csv", "-o", str(out), "--force", env=ENV)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())["cells"]


def test_open_loop_p99_shows_the_stall_the_closed_loop_hides(cli, tmp_path) -> None:
    opened, closed = run(cli, tmp_path, "-t", "stall-every", "-p", "pingpong", "-s", "64", "--rate", "1000,max",
                         "-n", "2000", "--warmup", "10")
    assert opened["rate"] == 1000.0 and "rate" not in closed
    o, c = opened["summary"], closed["summary"]
    stall_us = EVERY_S * 1e6
    # Two stalls of 100 ms in 2,000 requests 1 ms apart: ~100 requests each wait out what is left of a stall,
    # 100, 99, ... 1 ms: 200 answers (10 %) spread evenly over 0-100 ms, so the p99 (the 20th largest) is ~90 ms.
    # Measured: 90.5 ms. A loaded machine adds a few ms either way, never a factor.
    assert 0.5 * stall_us <= o["rtt_p99_us"] <= 1.5 * stall_us, o
    assert o["rtt_max_us"] >= 0.7 * stall_us
    # The closed loop's two stalled round trips are 0.1 % of its samples: its p99 is an ordinary round trip.
    assert c["rtt_max_us"] >= 0.7 * stall_us
    assert c["rtt_p99_us"] < 0.1 * stall_us, c
    # The sends kept to the schedule (the pipe took every request): from the actual send the queued requests
    # waited nearly as long; the two differ by the schedule lag alone
    assert o["service_p50_us"] <= o["rtt_p50_us"] and o["service_max_us"] <= o["rtt_max_us"]
    assert o["in_flight_max"] >= 20  # requests stayed in flight while the server slept
    assert o["offered_msg_s"] == 1000.0


def test_open_loop_cell_records_lag_achieved_and_histograms(cli, tmp_path) -> None:
    (cell,) = run(cli, tmp_path, "-t", "pipe", "-p", "pingpong", "-s", "64", "--rate", "2000", "-n", "1000",
                  "--trials", "2")
    assert cell["status"] == "ok" and cell["rate"] == 2000.0 and cell["count"] == 1000
    for trial in cell["trials"]:
        m = trial["metrics"]
        assert set(trial["histograms"]) == {"rtt", "service", "lag"}
        assert m["round_trips"] == 1000 and m["lost"] == 0
        assert 0 <= m["lag_p50_us"] < 10_000 and m["lag_max_us"] >= m["lag_p50_us"]
        assert 100 < m["achieved_msg_s"] <= 2000.0 * 1.001 and m["offered_msg_s"] == 2000.0
        assert m["in_flight_max"] >= 1
        assert m["rtt_min_us"] >= m["service_min_us"] * 0.5  # both are real round trips
    assert cell["pooled"]["rtt"]["samples"] == 2000 and cell["pooled"]["lag"]["samples"] == 2000
    assert "rtt_p99_us" in cell["summary"] and "lag_p99_us" in cell["summary"]


def test_a_server_that_cannot_keep_up_is_saturated(cli, tmp_path) -> None:
    """Every echo 5 ms late: at most 200 answers/s against 1,000 offered. The in-flight cap fills and sends wait."""
    (cell,) = run(cli, tmp_path, "-t", "slow-echo", "-p", "pingpong", "-s", "4K", "--rate", "1000", "-n", "300",
                  "--warmup", "2")
    s = cell["summary"]
    assert s["achieved_msg_s"] < 0.95 * 1000.0, s
    codes = [w["code"] for w in cell["warnings"]]
    assert "saturated" in codes
    (w,) = [w for w in cell["warnings"] if w["code"] == "saturated"]
    assert "offered 1,000/s" in w["message"] and "achieved" in w["message"]
    assert s["in_flight_max"] == 8  # 32 KiB of 4 KiB answers


def test_a_channel_without_readiness_is_na_with_the_reason(cli, tmp_path) -> None:
    opened, closed = run(cli, tmp_path, "-t", "blind", "-p", "pingpong", "-s", "64", "--rate", "1000,max",
                         "-n", "50")
    assert opened["status"] == "n/a" and "wait_readable" in opened["reason"] and "--rate max" in opened["reason"]
    assert closed["status"] == "ok"


def test_reqrep_and_small_sizes(cli, tmp_path) -> None:
    small, big = run(cli, tmp_path, "-t", "unix", "-p", "reqrep", "-s", "8,4K", "--rate", "1000", "-n", "200")
    assert small["status"] == "n/a" and "16-byte header" in small["reason"]
    assert big["status"] == "ok" and big["rate"] == 1000.0
    assert big["summary"]["requests"] == 200 and "ttlb_p99_us" in big["summary"]
    assert "service_p50_us" in big["summary"] and "achieved_msg_s" in big["summary"]


def test_paced_stream_times_from_the_intended_send(cli, tmp_path) -> None:
    (cell,) = run(cli, tmp_path, "-t", "pipe", "-p", "stream", "-s", "64", "--rate", "5000", "-n", "2000")
    s = cell["summary"]
    assert cell["rate"] == 5000.0 and s["received"] == 2000 and s["lost"] == 0
    assert s["owl_p50_us"] > 0 and "lag_p99_us" in s and "in_flight_max" not in s
    assert 1000 < s["achieved_msg_s"] <= 5000 * 1.001
    # a paced producer cannot be faster than its schedule: 2,000 messages take at least 0.4 s
    assert s["msg_s"] < 5000 * 1.05


def test_udp_open_loop_counts_loss_without_hanging(cli, tmp_path) -> None:
    (cell,) = run(cli, tmp_path, "-t", "udp", "-p", "pingpong", "-s", "64", "--rate", "2000", "-n", "500")
    s = cell["summary"]
    assert cell["status"] == "ok" and s["round_trips"] + s["lost"] == 500


def test_a_lossy_open_loop_loses_exactly_what_was_dropped_and_keeps_its_schedule(cli, tmp_path) -> None:
    """drop-ready: the client's channel drops every 10th send (unreliable by declaration). 500 requests, no
    warm-up: requests 9, 19, ... 499 never reach the server: exactly 50 lost, 450 answered; later requests are
    answered around a lost one, so the schedule holds (a loss must not stall the sender for REPLY_TIMEOUT)."""
    (cell,) = run(cli, tmp_path, "-t", "drop-ready", "-p", "pingpong", "-s", "64", "--rate", "2000", "-n", "500",
                  "--warmup", "0")
    s = cell["summary"]
    assert s["lost"] == 50 and s["round_trips"] == 450 and s["loss_pct"] == pytest.approx(10.0)
    assert s["stale"] == 0
    assert s["achieved_msg_s"] > 0.95 * 2000, s
    assert "saturated" not in [w["code"] for w in cell["warnings"]]
