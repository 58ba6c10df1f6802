"""benchmarks/underload.py without running anything: sockperf ul output parsed (a canned run), the ipclab cell
found by rate in a synthetic result, the ratio table. Fast tier."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import ROOT
from synthetic_load import load_result

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import underload  # noqa: E402

# `sockperf ul --tcp -m 64 -t 1 --mps 1000 --full-rtt` (sockperf 3.7), colour codes and all.
CANNED = b"".join([
    b'sockperf: \x1b[2;35m== version #3.7-no.git == \x1b[0m\n',
    b'sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)\n',
    b'\n',
    b'[ 0] IP = 127.0.0.1       PORT = 55725 # TCP\n',
    b'sockperf: Warmup stage (sending a few dummy messages)...\n',
    b'sockperf: Starting test...\n',
    b'sockperf: Test end (interrupted by timer)\n',
    b'sockperf: Test end (interrupted by signal 2)\n',
    b'sockperf: Test ended\n',
    b'sockperf: [Total Run] RunTime=1.002 sec; Warm up time=400 msec; SentMessages=997; ReceivedMessages=9\n',
    b'sockperf: ========= Printing statistics for Server No: 0\n',
    b'sockperf: [Valid Duration] RunTime=0.297 sec; SentMessages=301; ReceivedMessages=4\n',
    b'sockperf: \x1b[2;35m====> avg-rtt=361.474 (std-dev=646.565)\x1b[0m\n',
    b'sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0\n',
    b'sockperf: Summary: Round trip is 361.474 usec\n',
    b'sockperf: \x1b[2;35mTotal 4 observations\x1b[0m; each percentile contains 0.04 observations\n',
    b'sockperf: ---> <MAX> observation = 1331.186\n',
    b'sockperf: ---> percentile 99.999 = 1331.186\n',
    b'sockperf: ---> percentile 99.990 = 1331.186\n',
    b'sockperf: ---> percentile 99.900 = 1331.186\n',
    b'sockperf: ---> percentile 99.000 = 1331.186\n',
    b'sockperf: ---> percentile 90.000 = 1331.186\n',
    b'sockperf: ---> percentile 75.000 =   53.459\n',
    b'sockperf: ---> percentile 50.000 =   31.917\n',
    b'sockperf: ---> percentile 25.000 =   29.333\n',
    b'sockperf: ---> <MIN> observation =   29.333\n',
])


def test_sockperf_ul_output_is_parsed():
    figures = underload.parse_sockperf(CANNED)
    assert figures["rtt_p50_us"] == pytest.approx(31.917)
    assert figures["rtt_p99_us"] == pytest.approx(1331.186)
    assert figures["samples"] == 4
    assert figures["achieved_msg_s"] == pytest.approx(301 / 0.297)


def test_sockperf_output_without_percentiles_is_an_error():
    with pytest.raises(underload.BenchError, match="no percentiles"):
        underload.parse_sockperf(b"sockperf: ERROR: connect() failed\n")


def test_ipclab_cell_is_found_by_rate():
    result = load_result({"tcp": 30.0, "udp": 25.0}, saturate_above=None)
    cell = next(c for c in result["cells"] if c["transport"] == "udp" and c.get("rate") == 10000.0)
    figures = underload.ipclab_figures(result, "udp", 10000)
    assert figures["rtt_p50_us"] == cell["summary"]["rtt_p50_us"]
    assert figures["lag_p99_us"] == cell["summary"]["lag_p99_us"]
    assert figures["achieved_msg_s"] == cell["summary"]["achieved_msg_s"]
    with pytest.raises(underload.BenchError, match="no open-loop tcp cell at 20000/s"):
        underload.ipclab_figures(result, "tcp", 20000)


def test_ratio_table_flags_a_p50_ratio_over_the_target():
    ref = {"rtt_p50_us": 20.0, "rtt_p99_us": 40.0, "achieved_msg_s": 1000.0}
    good = {"rtt_p50_us": 24.0, "rtt_p99_us": 60.0, "service_p50_us": 22.0, "lag_p50_us": 2.0,
            "lag_p99_us": 9.0, "achieved_msg_s": 999.0}
    bad = dict(good, rtt_p50_us=30.0)
    text = underload.table([("tcp", 1000.0, good, ref), ("udp", 1000.0, bad, ref)])
    lines = text.splitlines()
    assert "p50 ratio" in lines[0]
    assert "1.20 ok" in lines[2] and "1.50" in lines[2] and "2.0 / 9.0" in lines[2]
    assert "1.50 OVER" in lines[3]
    assert "target p50 ratio <= 1.3" in text


def test_bad_arguments_are_one_line_and_exit_2(capsys):
    assert underload.main(["--rates", "0,1000"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--rates" in err
