"""Experiment files: every shipped one parses and validates; errors name the key and the line; flags win."""

from __future__ import annotations

import glob
import json
import os

import pytest
from conftest import ROOT

from ipclab.cli import build_parser
from ipclab.cli.run import build_config
from ipclab.errors import ConfigError
from ipclab.experiment import load, schema

SHIPPED = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.toml")))


def config_for(path: str, *flags: str):
    return build_config(build_parser().parse_args(["run", "--experiment", str(path), *flags]))


def write(tmp_path, text: str, name: str = "exp.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_at_least_five_experiments_ship():
    assert len(SHIPPED) >= 5


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_shipped_experiment_parses_and_validates(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # output = "results/..." is checked against the working directory
    (tmp_path / "results").mkdir()
    raw = load(path)
    assert raw.get("question") and raw.get("metrics"), "each experiment says what it asks and what to read"
    assert raw.get("description") and set(raw) <= set(schema())
    config = config_for(path)
    assert config.transports and config.patterns and config.sizes
    assert config.experiment == path and config.extra["description"] == raw["description"]
    assert config.output == raw["output"] and config.output.startswith("results/")


@pytest.mark.parametrize("text,where,words", [
    ('description = "x"\ntransports = ["pipe"]\n\nsizez = [64]\n', ":4:", ["unknown key 'sizez'", "'sizes'"]),
    ('transports = ["pipe"]\ncount = "many"\n', ":2:", ["count", "wrong type", "whole number"]),
    ('trials = 2\nverify = "yes"\n', ":2:", ["verify", "true or false"]),
    ('transports = ["pipe"]\n[pin]\nx = 1\n', ":2:", ["pin", "wrong type"]),
    ('transports = []\n', ":1:", ["transports", "empty"]),
    ('sizes = [64, 1.5]\n', ":1:", ["sizes", "wrong type"]),
    ('transports = ["pipe"]\n  sizes = ["4Q"]\n', ":2:", ["sizes", "'4Q'"]),
    ('transports = ["pipe", "pipez"]\n', ":1:", ["transports", "unknown transport 'pipez'"]),
    ('trials = 0\n', ":1:", ["trials", "1..100"]),
    ('count = 10\nduration = 2.0\n', ":1:", ["count", "duration", "use one of them"]),
    ('transports = ["pipe"\n', "", ["not valid TOML"]),
])
def test_errors_name_key_and_line(tmp_path, text, where, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config_for(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"{path}{where}" in message or (not where and "exp.toml" in message)
    for word in words:
        assert word in message


def test_binary_and_missing_files_are_one_line_errors(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"count = 1\x00\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8|NUL"):
        load(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "nope.toml"))


def test_cli_flags_override_the_file(tmp_path):
    path = write(tmp_path, 'transports = ["pipe", "unix"]\nsizes = [64, "4K"]\ncount = 500\ntrials = 3\n'
                           'pin = "same"\n')
    config = config_for(path)
    assert config.transports == ("pipe", "unix") and config.sizes == (64, 4096) and config.count == 500
    config = config_for(path, "--size", "1K", "--trials", "2", "--duration", "0.5", "--pin", "none")
    assert config.sizes == (1024,) and config.trials == 2 and config.pin == "none"
    assert config.duration == 0.5 and config.count is None  # --duration replaces the file's count
    assert config.transports == ("pipe", "unix")  # not overridden: kept from the file


@pytest.mark.process
def test_experiment_run_end_to_end(cli, tmp_path):
    out = tmp_path / "exp.json"
    path = write(tmp_path, 'description = "tiny"\ntransports = "pipe"\npatterns = ["pingpong"]\nsizes = [64]\n'
                           f'count = 200\nwarmup = 10\noutput = "{out}"\n')
    proc = cli("run", "--experiment", path, "-q", check=True)
    assert "round trip" in proc.stdout
    result = json.loads(out.read_text())
    assert result["config"]["experiment"] == path and result["config"]["extra"] == {"description": "tiny"}
    (cell,) = result["cells"]
    assert cell["status"] == "ok" and cell["count"] == 200 and cell["placement"]
    assert cell["trials"][0]["metrics"]["round_trips"] == 200
