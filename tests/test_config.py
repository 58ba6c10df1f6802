"""Parsing and validation of run configuration (pure, in-process)."""

from __future__ import annotations

import pytest

from ipclab.config import MAX_SIZE, RunConfig, format_size, parse_size, validate
from ipclab.errors import ConfigError
from ipclab.transports import available_names


@pytest.mark.parametrize("text,value", [("0", 0), ("64", 64), ("4K", 4096), ("4k", 4096), ("4KiB", 4096),
                                        ("1M", 1 << 20), ("1MB", 1 << 20), (" 17 ", 17), ("64M", 64 << 20)])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "-1", "12Q", "K", "1.5K", "4 K B", "100G", "65M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_size(text)
    assert "--size" in str(err.value)


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 64, 4096, 4099, 1 << 20)] == ["0 B", "64 B", "4 KiB", "4099 B", "1 MiB"]
    assert format_size(MAX_SIZE) == "64 MiB"


def test_defaults_are_every_available_transport() -> None:
    config = validate()
    assert config.transports == tuple(available_names())
    assert config.patterns == ("pingpong", "stream") and config.sizes == (64, 4096, 65536)


def test_validate_dedupes_and_round_trips() -> None:
    config = validate(transports="tcp,pipe,tcp", sizes="64,64,4K", count="10", trials="2", pin="same")
    assert config.transports == ("tcp", "pipe") and config.sizes == (64, 4096)
    assert RunConfig.from_dict(config.to_dict()) == config


def test_unknown_transport_suggests_closest() -> None:
    with pytest.raises(ConfigError) as err:
        validate(transports="tcpp")
    assert "'tcpp'" in str(err.value) and "did you mean 'tcp'" in str(err.value) and "pipe" in str(err.value)


def test_count_and_duration_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="use one of them"):
        validate(count=10, duration=1)
