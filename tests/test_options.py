"""The one option table (fast tier, no processes): flags, TOML keys, validation and RunConfig from one place,
and a pattern's own options joining it from its SPEC."""

from __future__ import annotations

import dataclasses

import pytest

from ipclab import options
from ipclab.cli import build_parser, main
from ipclab.cli.run import build_config
from ipclab.config import RunConfig
from ipclab.declarations import PatternOption, PatternSpec, TrafficShape
from ipclab.errors import ConfigError
from ipclab.experiment import NOTES, schema


def write(tmp_path, text: str) -> str:
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def from_cli(*argv: str) -> RunConfig:
    return build_config(build_parser().parse_args(["run", *argv]))


def from_toml(tmp_path, text: str) -> RunConfig:
    path = write(tmp_path, text)
    return dataclasses.replace(from_cli("--experiment", path), experiment=None, extra={})


def one_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process: it must refuse with exit 2 and exactly one stderr line, printing nothing else."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("ipclab: error: ")
    return err.strip()


def test_every_option_has_a_flag_a_toml_key_and_help() -> None:
    parser_help = build_parser()._subparsers._group_actions[0].choices["run"].format_help()  # type: ignore[union-attr]
    keys = schema()
    for o in options.table():
        assert o.flags and o.flags[0].startswith("--"), o
        assert o.name in keys and keys[o.name] == (o.toml_types, o.toml_text)
        assert o.help and o.flag in parser_help
    assert set(keys) == {o.name for o in options.table()} | set(NOTES)


def test_the_table_is_the_runconfig() -> None:
    """Every RunConfig field a user sets is an option; the patterns' options land in RunConfig.options."""
    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"options", "experiment", "extra"}
    core = {o.name for o in options.table() if not o.pattern}
    assert core == fields
    assert {o.name for o in options.table() if o.pattern} >= {"clients"}


@pytest.mark.parametrize("flags, toml", [
    (["-t", "pipe,tcp,pipe"], 'transports = ["pipe", "tcp"]'),
    (["-t", "pipe"], 'transports = "pipe"'),
    (["-p", "stream,pingpong"], 'patterns = ["stream", "pingpong"]'),
    (["-s", "64,4K,1M"], 'sizes = [64, "4K", "1M"]'),
    (["-s", "4096"], "sizes = 4096"),
    (["-n", "250"], "count = 250"),
    (["-d", "0.5"], "duration = 0.5"),
    (["-d", "2"], "duration = 2"),
    (["--warmup", "0"], "warmup = 0"),
    (["-k", "3"], "trials = 3"),
    (["--seed", "7"], "seed = 7"),
    (["--pin", "same"], 'pin = "same"'),
    (["--pin", "cross"], 'pin = "cross"'),
    (["--timeout", "30"], "timeout = 30"),
    (["--timeout", "2.5"], "timeout = 2.5"),
    (["--verify"], "verify = true"),
    (["--clients", "3"], "clients = 3"),
])
def test_a_flag_and_a_toml_key_give_the_same_config(tmp_path, flags, toml) -> None:
    assert from_cli(*flags) == from_toml(tmp_path, toml + "\n")


def test_output_from_flag_and_key(tmp_path) -> None:
    out = str(tmp_path / "r.json")
    assert from_cli("-o", out) == from_toml(tmp_path, f'output = "{out}"\n')
    assert from_cli("-o", out).output == out


def test_config_is_json_and_round_trips() -> None:
    config = from_cli("-t", "pipe", "-s", "0,64", "-k", "2", "--clients", "4")
    data = config.to_dict()
    assert data["clients"] == 4 and "options" not in data  # pattern options are top-level keys, as in TOML
    assert RunConfig.from_dict(data) == config
    assert config.options["clients"] == 4 and config.clients == 4
    assert RunConfig().clients == 1 and RunConfig().option("clients") == 1  # not set: the declared default
    with pytest.raises(AttributeError, match="cleints"):
        RunConfig().option("cleints")


def test_runconfig_refuses_an_unknown_keyword() -> None:
    with pytest.raises(TypeError, match="cout"):
        RunConfig(cout=5)


# (flag argv, TOML line, words every error must contain: the value and the limit)
BAD = [
    (["-n", "0"], "count = 0", ["0", "out of range", "1..10000000"]),
    (["-n", "20000000"], "count = 20000000", ["20000000", "1..10000000"]),
    (["-k", "101"], "trials = 101", ["101", "1..100"]),
    (["--warmup", "-1"], "warmup = -1", ["-1", "0..1000000"]),
    (["--seed", "-2"], "seed = -2", ["-2", "0..9223372036854775807"]),
    (["-d", "0"], "duration = 0", ["0", "above 0", "at most 3600"]),
    (["--timeout", "90000"], "timeout = 90000", ["90000", "at most 86400"]),
    (["-s", "65M"], 'sizes = ["65M"]', ["'65M'", "64 MiB"]),
    (["-s", "-5"], "sizes = [-5]", ["'-5'", "negative", "0..64 MiB"]),
    (["-t", "tcpp"], 'transports = ["tcpp"]', ["'tcpp'", "did you mean 'tcp'", "known:"]),
    (["-p", "pingpon"], 'patterns = ["pingpon"]', ["'pingpon'", "did you mean 'pingpong'"]),
    (["--pin", "bogus"], 'pin = "bogus"', ["'bogus'", "auto, none, same, cross"]),
    (["--clients", "65"], "clients = 65", ["65", "1..64"]),
]
FLAG_OF = {"count": "--count", "trials": "--trials", "warmup": "--warmup", "seed": "--seed",
           "duration": "--duration", "timeout": "--timeout", "sizes": "--size", "transports": "--transport",
           "patterns": "--pattern", "pin": "--pin", "clients": "--clients"}


@pytest.mark.parametrize("argv, toml, words", BAD, ids=[b[1] for b in BAD])
def test_bad_value_names_flag_or_key_value_and_limit(capsys, tmp_path, argv, toml, words) -> None:
    key = toml.split(" =")[0]
    line = one_error(capsys, ["run", *argv])
    assert f"ipclab: error: {FLAG_OF[key]}: " in line
    for word in words:
        assert word in line, line
    path = write(tmp_path, f'description = "x"\n{toml}\n')
    line = one_error(capsys, ["run", "-e", path])
    assert f"ipclab: error: {path}:2: {key}: " in line
    for word in words:
        assert word in line, line


def test_count_and_duration_exclude_each_other(capsys, tmp_path) -> None:
    assert "--count and --duration both given" in one_error(capsys, ["run", "-n", "5", "-d", "1"])
    path = write(tmp_path, "count = 5\n")
    assert from_cli("-e", path, "-d", "1").count is None  # the flag replaces the file's count
    with pytest.raises(ConfigError, match="unknown run option 'cout'"):
        options.build({"cout": 5})


# -- a pattern's own option joins the table from its SPEC ----------------------------------------------------
def _parse_linger(value, flag):
    from ipclab.config import whole

    return whole(value, flag, 1, 1000, "the linger count")


FAKE = PatternSpec(name="fake", summary="a pattern declared only by this test", shape=TrafficShape(duplex=True),
                   headline="rtt_p50_us", count_class="round_trip", labels={}, metrics=(), tables=(),
                   options=(PatternOption("linger", "rounds to linger (default: 8)", 8, _parse_linger,
                                          "K"),))


@pytest.fixture
def fake_pattern(monkeypatch):
    real = options._specs
    monkeypatch.setattr(options, "_specs", lambda: [*real(), FAKE])
    options._declared.cache_clear()
    yield FAKE
    monkeypatch.undo()
    options._declared.cache_clear()


def test_pattern_option_is_a_flag_a_key_and_reaches_runconfig(fake_pattern, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    assert "--linger K" in capsys.readouterr().out
    assert schema()["linger"] == ((int,), "a whole number")  # the TOML type is that of the default
    config = from_cli("--linger", "16")
    assert config.options["linger"] == 16 and config.linger == 16 and config.to_dict()["linger"] == 16
    assert from_toml(tmp_path, "linger = 16\n") == config
    assert from_cli().options["linger"] == 8  # not given: the declared default, sent to the workers
    assert RunConfig(linger=2).options == {"linger": 2}


def test_pattern_option_errors_name_flag_and_key(fake_pattern, tmp_path, capsys) -> None:
    line = one_error(capsys, ["run", "--linger", "0"])
    assert "--linger: 0 is out of range; the linger count must be 1..1000" in line
    path = write(tmp_path, "linger = 5000\n")
    assert f"{path}:1: linger: 5000 is out of range" in one_error(capsys, ["run", "-e", path])
    path = write(tmp_path, 'linger = "5"\n')
    assert "linger = '5' has the wrong type; it must be a whole number" in one_error(capsys, ["run", "-e", path])


def test_pattern_option_may_not_shadow_a_core_option(monkeypatch) -> None:
    bad = dataclasses.replace(FAKE, options=(PatternOption("count", "x", 1, _parse_linger),))
    monkeypatch.setattr(options, "_specs", lambda: [bad])
    options._declared.cache_clear()
    try:
        with pytest.raises(ValueError, match="'count'.*core run option"):
            options.table()
    finally:
        monkeypatch.undo()
        options._declared.cache_clear()
