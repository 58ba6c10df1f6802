"""Peers are authenticated before the timed window; traffic from outside the run is refused, never counted, and
reported in the cell (``foreign``). End to end through ``python -m ipclab``, with the stranger played by the
plug-in transports of tests/intruders.py (loaded through IPCLAB_EXTRA_TRANSPORTS)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ROOT
from intruders import CRAFTED, INTRUDERS

TESTS = os.path.dirname(os.path.abspath(__file__))
ENV = {"PYTHONPATH": os.pathsep.join([ROOT, TESTS]),
       "IPCLAB_EXTRA_TRANSPORTS": "intruded-tcp=intruders:IntrudedTcp,intruded-udp=intruders:IntrudedUdp"}


def _cells(cli, tmp_path, *args: str) -> list[dict]:
    out = tmp_path / "r.json"
    proc = cli("run", *args, "--trials", "2", "-q", "-o", str(out), "--timeout", "20", env=ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())["cells"]


@pytest.mark.process
def test_a_stranger_polling_the_tcp_port_is_refused_and_reported(cli, tmp_path) -> None:
    cells = _cells(cli, tmp_path, "-t", "intruded-tcp", "-p", "pingpong,stream", "-s", "64", "--count", "300",
                   "--warmup", "10")
    for cell in cells:
        assert cell["status"] == "ok", cell["reason"]
        for trial in cell["trials"]:
            figures = trial["metrics"]
            assert figures["foreign"] >= INTRUDERS  # those that came before the client, and any poll after
            assert figures.get("round_trips", figures.get("received")) == 300  # none of theirs counted
        assert any(w["code"] == "foreign" for w in cell["warnings"])


@pytest.mark.process
def test_crafted_datagrams_to_the_udp_fanin_server_are_not_counted_and_are_reported(cli, tmp_path) -> None:
    cells = _cells(cli, tmp_path, "-t", "intruded-udp", "-p", "fanin", "--clients", "2", "-s", "64",
                   "--count", "2000", "--warmup", "10")
    (cell,) = cells
    assert cell["status"] == "ok", cell["reason"]
    for trial in cell["trials"]:
        figures = trial["metrics"]
        assert figures["foreign"] == CRAFTED  # every crafted datagram was seen, refused and reported
        assert figures["received"] <= figures["sent"] == 4000  # none of them counted as a message
        assert figures["reordered"] == 0  # nor did they push producer 0's sequence ahead
