"""The pattern registry and what reads it, without processes: discovery, every declaration checked (parametrised
over the registry, so a new pattern is tested without editing a list), the report catalogue built from the
declarations, and a new pattern's metrics and tables appearing with no other edit."""

from __future__ import annotations

import sys
import textwrap

import pytest

from ipclab import patterns
from ipclab.declarations import Metric, PatternSpec, TrafficShape
from ipclab.errors import ConfigError
from ipclab.report import metrics as catalogue

NAMES = list(patterns.PATTERNS)

EXTRA = '''
"""A pattern that exists only in a test."""
from ipclab.declarations import Metric, PatternSpec, TrafficShape

SPEC = PatternSpec(
    name="zz_extra", summary="a test pattern", shape=TrafficShape(duplex=True), headline="zz_p50_us",
    count_class="round_trip", labels={"server": "s", "client": "c"},
    metrics=(Metric("zz_p50_us", "zz round trip, p50", "µs", False, "round trip", 50.0),),
    tables=("zz_p50_us", "cpu_us_msg"), sample_key="zz_n", quantiles_key="zz_quantiles_ns", distribution="zz",
)
'''
HELPER = '"""A helper module of the package: no SPEC, so not a pattern."""\nVALUE = 1\n'


@pytest.fixture
def extra_pattern(tmp_path):
    """A pattern module (and a helper without SPEC) in a second directory of the package's __path__."""
    (tmp_path / "zz_extra.py").write_text(textwrap.dedent(EXTRA), encoding="utf-8")
    (tmp_path / "zz_helper.py").write_text(HELPER, encoding="utf-8")
    patterns.__path__.append(str(tmp_path))
    try:
        patterns.refresh()
        catalogue.rebuild()
        yield "zz_extra"
    finally:
        patterns.__path__.remove(str(tmp_path))
        for name in ("ipclab.patterns.zz_extra", "ipclab.patterns.zz_helper"):
            sys.modules.pop(name, None)
        patterns.refresh()
        catalogue.rebuild()


def test_registry_keeps_the_historical_order_and_finds_burst() -> None:
    assert NAMES[:5] == ["pingpong", "stream", "reqrep", "fanin", "connect"]
    assert "burst" in NAMES
    assert [s.name for s in patterns.specs()] == NAMES
    assert {"common", "base", "loops"}.isdisjoint(NAMES)


def test_a_new_module_is_a_pattern_with_its_metrics_and_tables(extra_pattern: str) -> None:
    assert list(patterns.PATTERNS)[-1] == extra_pattern  # no ORDER: after the built-in ones
    assert "zz_helper" not in patterns.PATTERNS
    assert patterns.get_spec(extra_pattern).headline == "zz_p50_us"
    assert catalogue.METRICS["zz_p50_us"].title == "zz round trip, p50"
    assert catalogue.PERCENTILES["zz_p50_us"] == 50.0
    assert catalogue.default_metrics(extra_pattern) == ("zz_p50_us", "cpu_us_msg")
    assert catalogue.belongs(extra_pattern, "zz_p50_us") and not catalogue.belongs("pingpong", "zz_p50_us")


def test_the_test_pattern_is_gone_afterwards() -> None:
    assert "zz_extra" not in patterns.PATTERNS and "zz_p50_us" not in catalogue.METRICS


def test_catalogue_is_the_shared_figures_plus_every_declaration() -> None:
    spec = PatternSpec(name="a", summary="", shape=TrafficShape(duplex=False), headline="mb_s",
                       count_class="stream", labels={},
                       metrics=(Metric("a_p99_us", "a, p99", "µs", False, "message", 99.0),
                                Metric("mb_s", "redeclared", "MB/s", True)), tables=())
    try:
        catalogue.rebuild([spec])
        assert set(catalogue.METRICS) == {m.key for m in catalogue.SHARED} | {"a_p99_us"}
        assert catalogue.METRICS["mb_s"].title == "throughput at the consumer"  # shared words win
        owners, percentiles = dict(catalogue.OWNERS), dict(catalogue.PERCENTILES)
        assert owners == {"a_p99_us": frozenset({"a"})} and percentiles == {"a_p99_us": 99.0}
        assert catalogue.default_metrics("a") == catalogue.FALLBACK_TABLES
    finally:
        catalogue.rebuild()


@pytest.mark.parametrize("name", NAMES)
def test_every_declaration_is_complete_and_consistent(name: str) -> None:
    module = patterns.get_pattern(name)
    spec = module.SPEC
    assert spec.name == name and spec.summary and spec.count_class in ("round_trip", "bulk")
    assert callable(module.roles) and callable(module.run) and callable(module.metrics)
    assert module.roles({"clients": 2})[0] == ("server", 0) and set(spec.labels) >= {"server", "client"}
    for key in (spec.headline, *spec.tables, *spec.report_tables):
        assert key in catalogue.METRICS, f"{name}: {key} is in no catalogue"
        assert catalogue.belongs(name, key), f"{name}: {key} is declared by another pattern"
    assert spec.tables[0] == spec.headline
    if spec.quantiles_key:
        assert spec.distribution, f"{name}: a stored distribution needs a description for plots"
    assert spec.shape.many_writers == (len(module.roles({"clients": 3})) > 2)  # several writers iff several clients


@pytest.mark.parametrize("name", NAMES)
def test_options_parse_and_reject_with_the_flag_and_limit(name: str) -> None:
    for option in patterns.get_spec(name).options:
        flag = f"--{option.name.replace('_', '-')}"
        assert option.parse(str(option.default), flag) == option.default
        with pytest.raises(ConfigError, match=rf"^{flag}: 0 is out of range; .* must be 1\.\.\d+$"):
            option.parse("0", flag)
        with pytest.raises(ConfigError, match=rf"^{flag}: 'x' is not a whole number"):
            option.parse("x", flag)


def test_fanin_declares_clients_and_burst_its_length() -> None:
    (clients,) = patterns.get_spec("fanin").options
    assert (clients.name, clients.default, clients.help) == ("clients", 1, "producers for the fan-in pattern")
    assert clients.parse(64, "--clients") == 64
    with pytest.raises(ConfigError, match="--clients: 65 is out of range; the number of clients must be 1..64"):
        clients.parse(65, "--clients")
    (burst,) = patterns.get_spec("burst").options
    assert (burst.name, burst.default, burst.parse("4096", "--burst")) == ("burst", 16, 4096)


def test_context_carries_options_and_keeps_clients() -> None:
    from ipclab.patterns.common import Context

    base = {"size": 8, "count": 1, "duration": None, "warmup": 0, "seed": 1, "verify": False, "reliable": True}
    old = Context.from_config({**base, "clients": 3})
    assert old.clients == 3 and old.options == {"clients": 3}
    new = Context.from_config({**base, "options": {"clients": 2, "burst": 4}})
    assert new.clients == 2 and new.options["burst"] == 4
