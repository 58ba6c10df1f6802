"""Every registered transport, both patterns, several sizes (including ones that are not a multiple of any
internal chunk): every byte checked (--verify), counts exact on reliable transports, nothing left behind."""

from __future__ import annotations

import pytest

from ipclab.config import RunConfig
from ipclab.runner import Runner
from ipclab.transports import TRANSPORTS, get_transport

SIZES = (0, 1, 15, 16, 17, 1000, 4099, 65536 + 7)
ALL = list(TRANSPORTS)


def _sizes_for(name: str) -> list[int]:
    cls = get_transport(name)
    return [s for s in SIZES if cls.not_applicable("stream", s) is None]


def _run(name: str, pattern: str, sizes: list[int], count: int = 60) -> dict:
    config = RunConfig(transports=(name,), patterns=(pattern,), sizes=tuple(sizes), count=count, warmup=5,
                       verify=True, timeout=30)
    return Runner(config).run()


@pytest.mark.parametrize("pattern", ["pingpong", "stream"])
@pytest.mark.parametrize("name", ALL)
def test_every_byte_arrives(name: str, pattern: str) -> None:
    cls = get_transport(name)
    if cls.unavailable_reason():
        pytest.skip(f"{name} unavailable: {cls.unavailable_reason()}")
    sizes = _sizes_for(name)
    assert sizes, f"{name} accepts none of {SIZES}"
    result = _run(name, pattern, sizes)
    assert len(result["cells"]) == len(sizes)
    for cell in result["cells"]:
        where = f"{name} {pattern} {cell['size_bytes']} B"
        assert cell["status"] == "ok", f"{where}: {cell['reason']}"
        (trial,) = cell["trials"]
        m = trial["metrics"]
        assert m["corrupt"] == 0, where
        if pattern == "pingpong":
            if cls.reliable:
                assert m["round_trips"] == 60, where
                assert m["lost"] == 0, where
            else:
                assert m["round_trips"] + m["lost"] == 60, where
            assert m["rtt_p50_us"] > 0, where
        else:
            assert m["sent"] == 60, where
            if cls.reliable:
                assert m["received"] == 60 and m["lost"] == 0, where
                assert m["reordered"] == 0 and m["duplicated"] == 0, where
            else:
                assert m["received"] + m["lost"] == 60, where
            assert m["received"] < 2 or m["msg_s"] > 0, where


@pytest.mark.parametrize("name", ALL)
def test_declared_properties(name: str) -> None:
    cls = get_transport(name)
    props = cls.properties()
    assert props["name"] == name
    assert isinstance(props["reliable"], bool) and isinstance(props["boundaries"], bool)
    limit = props["max_message"]
    assert limit is None or (isinstance(limit, int) and limit >= 0)
    if limit is not None:
        reason = cls.not_applicable("stream", limit + 1)
        assert reason and str(limit) in reason.replace(" ", "").replace(",", "") or reason


@pytest.mark.parametrize("name", ALL)
def test_duration_mode(name: str) -> None:
    """A --duration trial ends by itself (end marker) and measures something."""
    cls = get_transport(name)
    if cls.unavailable_reason():
        pytest.skip(f"{name} unavailable")
    size = next((s for s in (64, 1) if cls.not_applicable("stream", s) is None), 0)
    config = RunConfig(transports=(name,), patterns=("pingpong", "stream"), sizes=(size,), duration=0.2,
                       warmup=5, timeout=30)
    result = Runner(config).run()
    if size == 0:  # only empty messages (signals): no end marker is possible, so a duration run is n/a
        assert all(c["status"] == "n/a" and "--count" in c["reason"] for c in result["cells"])
        return
    for cell in result["cells"]:
        assert cell["status"] == "ok", f"{name} {cell['pattern']}: {cell['reason']}"
        m = cell["trials"][0]["metrics"]
        assert (m.get("round_trips") or m.get("received")) > 0
