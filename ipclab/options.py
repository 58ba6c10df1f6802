"""The one table of run options: CLI flags, experiment TOML keys, validation and the RunConfig, from one place.

Each :class:`Option` says once: its name (the RunConfig field, which is also its TOML key), its CLI flag(s),
the TOML types it accepts, its help, and the parse function that turns a CLI string or a TOML value into the
value sent to the workers (raising a one-line ConfigError that names the flag or key, the value and the
limit). From the table come ``ipclab run``'s flags (:func:`add_arguments`), the keys an experiment file accepts
(:func:`toml_keys`) and the validated config (:func:`build`, :func:`resolve`).

A pattern's own options are declared in its module (``SPEC.options``, :class:`PatternOption`) and join the
table generically: flag ``--<name>``, TOML key ``<name>``, TOML type that of the default, value in
``RunConfig.options``. Adding one touches only the pattern's module.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import config as cfg
from .declarations import PatternOption, PatternSpec
from .errors import ConfigError

Parse = Callable[[Any, str], Any]


@dataclass(frozen=True)
class Option:
    """One run option. ``name`` is the RunConfig field (or pattern option) and the experiment TOML key."""

    name: str
    flags: tuple[str, ...]  # CLI flags; the first is the one errors name
    help: str
    parse: Parse  # (value, label) -> validated value; label is the flag or "FILE:LINE: key"
    toml_types: tuple[type, ...]  # what a TOML value may be
    toml_text: str  # how the TOML type is described in a wrong-type error
    metavar: str | None = None
    switch: bool = False  # a flag without a value (--verify); in TOML a boolean
    excludes: tuple[str, str] | None = None  # (other option, why): giving both is an error
    pattern: bool = False  # declared by a pattern's SPEC.options: the value goes to RunConfig.options

    @property
    def flag(self) -> str:
        return self.flags[0]


# -- parse functions of the core options ---------------------------------------------------------------------
def _names(value: Any, label: str, kind: str, known: list[str]) -> tuple[str, ...]:
    """A list of registered names (a comma-separated string or a TOML list), deduplicated, in order."""
    items = cfg.split_list(value, label) if isinstance(value, str) else list(value)
    for item in items:
        if item not in known:
            raise ConfigError(f"{label}: unknown {kind} {item!r}{cfg.closest(str(item), known)}; "
                              f"known: {', '.join(known)}")
    return tuple(dict.fromkeys(items))


def _transports(value: Any, label: str) -> tuple[str, ...]:
    from .transports import TRANSPORTS

    if value == "":
        raise ConfigError(f"{label}: empty; name transports, e.g. tcp,udp,pipe, or 'all'")
    items = cfg.split_list(value, label) if isinstance(value, str) else list(value)
    return tuple(TRANSPORTS) if items == ["all"] else _names(items, label, "transport", list(TRANSPORTS))


def _patterns(value: Any, label: str) -> tuple[str, ...]:
    from .patterns import PATTERNS

    return _names(value, label, "pattern", list(PATTERNS))


def _sizes(value: Any, label: str) -> tuple[int, ...]:
    if isinstance(value, str):
        items = cfg.split_list(value, label)
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise ConfigError(f"{label}: empty list; give sizes such as 64,4K,64K")
    else:
        items = [value]
    parsed = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ConfigError(f"{label}: {item!r} is not a size; write bytes or 4K/1M")
        parsed.append(cfg.parse_size(str(item), label))
    return tuple(dict.fromkeys(parsed))


def _whole(low: int, high: int, what: str) -> Parse:
    return lambda value, label: cfg.whole(value, label, low, high, what)


def _seconds(high: float, what: str) -> Parse:
    return lambda value, label: cfg.number(value, label, 0.0, high, what)


def _remote_command(value: Any, label: str) -> str:
    import shlex

    try:
        argv = shlex.split(str(value))
    except ValueError as exc:
        raise ConfigError(f"{label}: cannot split {value!r} into words ({exc}); quote it as a shell would") from None
    if not argv:
        raise ConfigError(f"{label}: empty; give a command prefix such as \"ssh lab2\"")
    return str(value)


def _remote_python(value: Any, label: str) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ConfigError(f"{label}: {value!r} is not one program name or path (e.g. python3, /usr/bin/python3)")
    return text


def _address(value: Any, label: str) -> str:
    text = str(value).strip()
    if not text or text in ("0.0.0.0", "::") or any(c.isspace() for c in text):
        raise ConfigError(f"{label}: {value!r} is not an address to bind and dial; give the other host's own "
                          "address (a wildcard would listen on every network)")
    return text


_WHOLE = ((int,), "a whole number")
_SECONDS = ((int, float), "a number of seconds")
_LIST = "a list of {} names or a string"

CORE: tuple[Option, ...] = (
    Option("transports", ("--transport", "-t"), "comma-separated transports, or 'all' (default: every available "
           "one; see 'ipclab list')", _transports, (list, str), _LIST.format("transport"), "LIST"),
    Option("patterns", ("--pattern", "-p"), "{patterns} (default: {default})", _patterns, (list, str),
           _LIST.format("pattern"), "LIST"),
    Option("sizes", ("--size", "-s"), "message sizes: bytes or K/M suffixes (KiB/MiB), 0 = empty message "
           "(default: 64,4K,64K)", _sizes, (list, str, int), 'a list of sizes (64, "4K") or a string', "LIST"),
    Option("rates", ("--rate",), "open loop: messages per second, a comma list with k/M suffixes and 'max' "
           "(closed loop, the default), e.g. 1000,10k,max; each rate is its own cell. Requests leave on the "
           "schedule t0 + i/R and latency is taken from the intended send time. Without --count/--duration an "
           "open-loop cell sends about one second of requests (rate x 1 s, 200..100000)", cfg.parse_rates,
           (list, str, int, float), 'a list of rates (1000, "10k", "max") or a string', "LIST"),
    Option("count", ("--count", "-n"), "messages (round trips) per trial (default: per size, ~64 MiB of traffic: "
           "200..5000 round trips, 200..100000 stream messages)", _whole(1, cfg.MAX_COUNT, "the message count"),
           *_WHOLE, "N", excludes=("duration", "a trial ends after a count or a duration")),
    Option("duration", ("--duration", "-d"), "run each trial for this long instead of a count",
           _seconds(cfg.MAX_DURATION, "the duration in seconds"), *_SECONDS, "SECONDS"),
    Option("warmup", ("--warmup",), "messages discarded before measuring (default: count/10, <=100)",
           _whole(0, cfg.MAX_WARMUP, "the warm-up count"), *_WHOLE, "N"),
    Option("trials", ("--trials", "-k"), "trials per cell, each in fresh processes (default: 1)",
           _whole(1, cfg.MAX_TRIALS, "the number of trials"), *_WHOLE, "K"),
    Option("seed", ("--seed",), "payload seed (default: 1)", _whole(0, cfg.MAX_SEED, "the seed"), *_WHOLE, "N"),
    Option("pin", ("--pin",), "CPU placement: auto, none, same, cross, or CPUs 'S,C' (default: auto = both workers "
           "on one CPU; one CPU each for busy-pollers and UDP streams)", cfg.parse_pin, (str,),
           'auto, none, same, cross or "0,1"', "MODE"),
    Option("timeout", ("--timeout",), "per-trial limit before workers are killed (default: 60)",
           _seconds(cfg.MAX_TIMEOUT, "the timeout in seconds"), *_SECONDS, "SECONDS"),
    Option("verify", ("--verify",), "check every byte of every message", lambda value, label: bool(value),
           (bool,), "true or false", switch=True),
    Option("remote", ("--remote",), "run the server side on another host through this command prefix, e.g. "
           "\"ssh lab2\" or \"ip netns exec peer\" (ipclab appends PYTHON -m ipclab.worker --stdio)",
           _remote_command, (str,), "a command line", "COMMAND"),
    Option("remote_python", ("--remote-python",), "the interpreter --remote runs on the other host (default: "
           "python3)", _remote_python, (str,), "a program name or path", "PATH"),
    Option("remote_address", ("--remote-address",), "the other host's address: its endpoints bind it and this "
           "host dials it (default: the host of an 'ssh [user@]host' --remote command)", _address, (str,),
           "an IP address or host name", "ADDR"),
    Option("reverse", ("--reverse",), "with --remote: the client side runs on the other host, the server side "
           "here", lambda value, label: bool(value), (bool,), "true or false", switch=True),
    Option("output", ("--output", "-o"), "result JSON path (default: results/ipclab-DATE.json)",
           cfg.check_output_path, (str,), "a file path", "PATH"),
)
_CORE_NAMES = frozenset(o.name for o in CORE)
_TYPE_TEXT = {bool: ((bool,), "true or false"), int: _WHOLE, float: ((int, float), "a number"),
              str: ((str,), "a string")}


def from_pattern(declared: PatternOption) -> Option:
    """A pattern's own option as a row of the table: --name, TOML key name, TOML type that of its default."""
    types, text = _TYPE_TEXT.get(type(declared.default), ((int, float, str, bool), "a value"))
    return Option(declared.name, ("--" + declared.name.replace("_", "-"),), declared.help, declared.parse, types,
                  text, declared.metavar, pattern=True)


def _specs() -> list[PatternSpec]:
    """Every registered pattern's declaration (the one place that asks the pattern registry)."""
    from .patterns import PATTERNS, get_pattern

    return [get_pattern(name).SPEC for name in PATTERNS]


@functools.lru_cache(maxsize=1)
def _declared() -> dict[str, PatternOption]:
    """Every pattern's own options by name (the first declaration of a shared name wins)."""
    found: dict[str, PatternOption] = {}
    for spec in _specs():
        for declared in spec.options:
            if declared.name in _CORE_NAMES:
                raise ValueError(f"pattern {spec.name} declares option {declared.name!r}, which is a core run "
                                 "option")
            found.setdefault(declared.name, declared)
    return found


def pattern_option(name: str) -> PatternOption | None:
    """The declaration of a pattern option called ``name``, if a pattern declares one."""
    return _declared().get(name)


def table() -> tuple[Option, ...]:
    """Every run option, in --help order: the core ones with the patterns' own before --verify."""
    at = [o.name for o in CORE].index("verify")
    return CORE[:at] + tuple(from_pattern(d) for d in _declared().values()) + CORE[at:]


def toml_keys() -> dict[str, Option]:
    """The keys an experiment file may set (besides ``description``), with their options."""
    return {o.name: o for o in table()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every run option to ``ipclab run``'s parser; not given = None, so a TOML value can fill it."""
    from .patterns import PATTERNS

    # The pattern names come from the registry: a new pattern shows up in --help without an edit here.
    names = {"patterns": ", ".join(PATTERNS), "default": ",".join(cfg.default_patterns())}
    for o in table():
        text = o.help.format(**names) if o.name == "patterns" else o.help
        if o.switch:
            parser.add_argument(*o.flags, dest=o.name, action="store_true", default=None, help=text)
        else:
            parser.add_argument(*o.flags, dest=o.name, metavar=o.metavar, help=text)


def build(values: Mapping[str, Any], labels: Mapping[str, str] | None = None, *, experiment: str | None = None,
          extra: Mapping[str, Any] | None = None) -> cfg.RunConfig:
    """Validate the given options (absent = default) into a RunConfig; the first bad value raises ConfigError.

    ``labels`` names an option in errors where it did not come from its flag (``FILE:LINE: sizes``).
    """
    labels = labels or {}
    options = table()
    known = {o.name for o in options}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise ConfigError(f"unknown run option {unknown[0]!r}{cfg.closest(unknown[0], sorted(known))}")
    kwargs: dict[str, Any] = {"experiment": experiment, "extra": dict(extra or {})}
    pattern_values: dict[str, Any] = {}
    for o in options:
        label = labels.get(o.name, o.flag)
        if o.excludes and o.name in values and o.excludes[0] in values:
            other = labels.get(o.excludes[0], next(x.flag for x in options if x.name == o.excludes[0]))
            raise ConfigError(f"{label} and {other} both given; {o.excludes[1]}, use one of them")
        if o.pattern:
            declared = _declared()[o.name]
            pattern_values[o.name] = declared.parse(values[o.name], label) if o.name in values else declared.default
        elif o.name in values:
            kwargs[o.name] = o.parse(values[o.name], label)
    _check_remote(kwargs, labels)
    _check_rates(kwargs, labels)
    if "transports" not in kwargs:
        from .transports import available_names

        kwargs["transports"] = tuple(available_names())
    return cfg.RunConfig(**kwargs, options=pattern_values)


def _check_rates(kwargs: dict[str, Any], labels: Mapping[str, str]) -> None:
    """--rate needs a selected pattern with something to pace (``PatternSpec.paced``). In a mixed selection a
    pattern without requests runs its closed-loop cell only (ipclab.engine.sweep), so this errs only when no
    selected pattern can be paced: the user asked for a schedule nothing would follow."""
    if all(rate is None for rate in kwargs.get("rates", (None,))):
        return
    count = kwargs.get("count")
    if count is not None and count > cfg.MAX_PACED:
        raise ConfigError(f"{labels.get('count', '--count')}: {count} is out of range with --rate; an open-loop "
                          f"trial holds at most {cfg.MAX_PACED} requests (memory bound); use a smaller count")
    specs = {spec.name: spec for spec in _specs()}
    chosen = kwargs.get("patterns") or cfg.default_patterns()
    if any(specs[name].paced for name in chosen):
        return
    paced = ", ".join(name for name, spec in specs.items() if spec.paced)
    which = ", ".join(chosen)
    raise ConfigError(f"{labels.get('rates', '--rate')}: {which} {'has' if len(chosen) == 1 else 'have'} no "
                      f"requests or messages to put on a schedule; --rate applies to {paced} (or give max)")


def _check_remote(kwargs: dict[str, Any], labels: Mapping[str, str]) -> None:
    """--remote-python, --remote-address and --reverse need --remote; --remote needs an address to bind and dial."""
    if not kwargs.get("remote"):
        for name, flag in (("remote_address", "--remote-address"), ("remote_python", "--remote-python"),
                           ("reverse", "--reverse")):
            if kwargs.get(name):
                raise ConfigError(f"{labels.get(name, flag)} needs --remote COMMAND (the other host to run on)")
        return
    if not kwargs.get("remote_address"):
        from .engine.remote import ssh_host

        host = ssh_host(kwargs["remote"])
        if host is None:
            raise ConfigError(f"--remote-address: required with --remote {kwargs['remote']!r} (only an 'ssh "
                              "[user@]host' command names the other host); give the address the other host's "
                              "endpoints bind, e.g. --remote-address 198.18.0.2")
        kwargs["remote_address"] = host


def resolve(cli: Mapping[str, Any], file: Mapping[str, Any] | None = None, file_labels: Mapping[str, str] | None = None,
            *, experiment: str | None = None, extra: Mapping[str, Any] | None = None) -> cfg.RunConfig:
    """CLI values (None = not given) over experiment-file values, then :func:`build`.

    A flag overrides its key; a flag also drops the file's value of an option it excludes (--count on the CLI
    replaces the file's duration). Errors name the flag, or FILE:LINE and the key for a value from the file.
    """
    given = {k: v for k, v in cli.items() if v is not None}
    values = dict(file or {})
    labels = dict(file_labels or {})
    for o in table():
        if o.excludes and (o.name in given or o.excludes[0] in given):
            partner = o.excludes[0] if o.name in given else o.name
            if partner not in given:
                values.pop(partner, None)
    values.update(given)
    for name in given:
        labels.pop(name, None)
    return build(values, labels, experiment=experiment, extra=extra)
