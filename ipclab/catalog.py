"""The shipped experiments: found by name, listed, shown, and a commented template for new ones.

The shipped files are package data in ``ipclab/experiments/`` (the repository's ``experiments/`` is a symlink
to that directory), so ``ipclab run -e latency-vs-size`` works the same from a clone and from an installed
wheel, in any working directory. A path always wins over a name: ``-e ./same-core.toml`` reads that file even
when a shipped experiment has the same name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from .config import closest
from .errors import ConfigError

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "experiments")
SUFFIX = ".toml"


@dataclass(frozen=True)
class Experiment:
    """An experiment file located and parsed: ``label`` is the shipped name, or the path as given."""

    label: str
    path: str
    keys: dict[str, Any]
    shipped: bool


def shipped_names() -> list[str]:
    """The names of the shipped experiments, sorted (file names without .toml)."""
    try:
        files = os.listdir(SHIPPED_DIR)
    except OSError:  # a broken install: no experiments rather than a traceback; the packaging test catches it
        return []
    return sorted(f[: -len(SUFFIX)] for f in files if f.endswith(SUFFIX) and not f.startswith("."))


def list_shipped() -> list[Experiment]:
    """Every shipped experiment, parsed (a broken shipped file is a bug and raises)."""
    from .experiment import load

    return [Experiment(name, path, load(path), True) for name in shipped_names()
            for path in [os.path.join(SHIPPED_DIR, name + SUFFIX)]]


def _unknown(value: str, flag: str) -> ConfigError:
    names = shipped_names()
    stem = os.path.basename(value)
    stem = stem[: -len(SUFFIX)] if stem.endswith(SUFFIX) else stem
    if os.sep in value:  # a path: say so, and point to the shipped one of that name (experiments/NAME.toml
        # from a folder that has no experiments/, as in a clone)
        hint = (f"a shipped experiment has that name: use {flag} {stem}" if stem in names else
                "give an existing TOML file, or the name of a shipped experiment (see 'ipclab experiments')")
        return ConfigError(f"{flag}: cannot read {value!r}: No such file or directory; {hint}")
    return ConfigError(f"{flag}: no file and no shipped experiment named {value!r}{closest(stem, names)}; "
                       f"shipped: {', '.join(names) or 'none'} (see 'ipclab experiments'), or give a TOML file")


def find(value: str, flag: str = "--experiment") -> tuple[str, str, bool]:
    """Resolve NAME|FILE to (label, path, shipped). An existing path wins; else a shipped name (with or
    without .toml); else a one-line error listing the shipped names and the closest one."""
    from .config import check_text_path

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{flag}: empty; give a shipped experiment name (see 'ipclab experiments') or a file")
    check_text_path(value, flag)  # the path is recorded in the JSON result
    if os.path.exists(value):
        return value, value, False
    name = value[: -len(SUFFIX)] if value.endswith(SUFFIX) else value
    if os.sep not in name and name in shipped_names():
        return name, os.path.join(SHIPPED_DIR, name + SUFFIX), True
    raise _unknown(value, flag)


def open_experiment(value: str, flag: str = "--experiment") -> Experiment:
    """find() and parse: keys are type-checked, values still to be validated (config.validate)."""
    from .experiment import load

    label, path, shipped = find(value, flag)
    return Experiment(label, path, load(path), shipped)


def show(value: str) -> str:
    """The text of a shipped experiment (or of a file), to read or to copy and change."""
    from .experiment import MAX_EXPERIMENT_BYTES
    from .untrusted import read_regular, terminal_text

    _, path, _ = find(value, "experiments show")
    try:  # a FIFO or a device is refused, not read; the text goes to a terminal: no escape sequences
        return terminal_text(read_regular(path, MAX_EXPERIMENT_BYTES, "experiments show").decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"experiments show: cannot read {path!r}: {exc}") from None


def known_metrics() -> list[str]:
    """Metric keys an experiment may name in ``metrics``: the report catalogue plus every pattern's own."""
    from .patterns import PATTERNS, get_pattern
    from .report.metrics import METRICS

    keys = dict.fromkeys(METRICS)
    for name in PATTERNS:
        for metric in get_pattern(name).SPEC.metrics:  # each pattern declares its own figures
            keys[metric.key] = None
    return list(keys)


def check_metrics(value: Any, where: str) -> list[str]:
    """An experiment's ``metrics``: a list of known metric keys (a string may be comma-separated)."""
    from .config import split_list

    items = split_list(value, where) if isinstance(value, str) else [str(v) for v in value]
    known = known_metrics()
    for item in items:
        if item not in known:
            raise ConfigError(f"{where}: unknown metric {item!r}{closest(item, known)}; known: {', '.join(known)}")
    return list(dict.fromkeys(items))


def make_output_dir(keys: dict[str, Any]) -> None:
    """An experiment's relative ``output`` directory (results/) is created like the default one, so a shipped
    experiment runs from an empty folder; anything else is left to validation, which names the problem."""
    output = keys.get("output")
    if not isinstance(output, str) or os.path.isabs(output):
        return
    parent = os.path.dirname(output)
    if parent and not os.path.exists(parent) and os.sep not in parent.strip(os.sep):
        try:
            os.mkdir(parent)
        except OSError:
            pass


TEMPLATE = '''\
# An ipclab experiment: one sweep, written down so that it can be handed out, rerun and checked.
#   ipclab run -e {path}                        run it (flags given on the command line override the file)
#   ipclab check RESULT.json -e {path}          does a result really follow it?
# Every key is optional: a key left out (or commented out) takes the default named in its comment.

# One line, shown by `ipclab experiments` and recorded in the result.
description = "What this experiment measures, in one line"

# The question a student should answer from the tables; `ipclab run -e` prints it above them.
question = "How does the round trip of a pipe, a Unix socket and TCP grow with the message size?"

# The metrics to read: `ipclab run -e` prints these tables (default: each pattern's usual tables).
# Keys as in `ipclab report --metric`, e.g. rtt_p50_us, rtt_p99_us, mb_s, msg_s, cpu_us_msg, loss_pct.
metrics = ["rtt_p50_us", "rtt_p99_us", "cpu_us_msg"]

# Transports to compare, from `ipclab list`; "all" for every one (default: every one available here).
transports = ["pipe", "unix", "tcp"]

# Workloads: {patterns} (default: {default_patterns}).
patterns = [{first_pattern}]

# Message sizes in bytes, or with K/M suffixes (KiB/MiB); 0 is an empty message (default: [64, "4K", "64K"]).
sizes = [64, "4K", "64K"]

# Open loop: messages per second, each rate its own cell; "max" is the closed loop (default: ["max"]). Requests
# leave on a fixed schedule and latency counts from the intended send time (pingpong, reqrep, stream).
# rates = [1000, "10k", "max"]

# Messages (round trips) per trial (default: chosen per size, about 64 MiB of traffic, 200..5000 round trips,
# 200..100000 stream messages). A p99 needs at least 1000 per trial.
count = 2000

# Seconds per trial instead of a count (give count or duration, not both; default: a count).
# duration = 2.0

# Messages discarded before measuring (default: count/10, at most 100).
warmup = 100

# Trials per cell, each in fresh processes (default: 1). `ipclab compare` needs at least 4 per side before it
# can call a difference significant; 5 leaves room for one overlapping trial.
trials = 5

# Seed of the payload bytes, the same on every transport (default: 1).
seed = 1

# CPU placement: auto, none, same, cross, or two CPUs "server,client" such as "0,1" (default: "auto": both
# workers on one CPU; one CPU each for busy-pollers and UDP streams).
pin = "auto"

# Seconds a trial may take beyond its expected time before its workers are killed (default: 60).
timeout = 60

# Compare every byte of every message (default: false: sequence and count of every message, sampled bytes).
verify = false

# The server side on another host (see README "Two computers"): a command prefix that starts a program there,
# the interpreter it runs, the address its endpoints bind, and --reverse (clients there). Usually given as flags.
# remote = "ssh lab2"
# remote_python = "python3"
# remote_address = "198.18.0.2"
# reverse = false

{pattern_options}# Where the result JSON goes (default: results/ipclab-DATE.json); a relative results/ is created.
output = {output}
'''


def template(path: str) -> str:
    """The commented template, naming ``path`` in its usage lines and its output file."""
    stem = os.path.basename(path)
    stem = stem[: -len(SUFFIX)] if stem.endswith(SUFFIX) else stem
    # json.dumps: a TOML basic string (quotes and backslashes in the name escaped, non-ASCII as \uXXXX).
    from .config import default_patterns
    from .patterns import specs

    names = [s.name for s in specs()]
    # A pattern's own options come from its declaration (ipclab.options adds them as keys the same way).
    options = "".join(f"# {o.help[0].upper()}{o.help[1:]} ({s.name} only; default: {o.default}).\n"
                      f"{o.name} = {json.dumps(o.default)}\n\n" for s in specs() for o in s.options)
    return TEMPLATE.format(path=path, output=json.dumps(f"results/{stem or 'my-experiment'}.json"),
                           patterns=", ".join(names), default_patterns=json.dumps(list(default_patterns())),
                           first_pattern=json.dumps(names[0]), pattern_options=options)


def new_template(path: str, force: bool = False) -> str:
    """Write the template to ``path``; an existing file is refused without ``force``. Returns the path."""
    from .config import check_text_path

    check_text_path(path, "FILE")
    if os.path.isdir(path):
        raise ConfigError(f"experiments new: {path!r} is a directory; give a file name such as {path.rstrip('/')}"
                          "/my-experiment.toml")
    if os.path.lexists(path) and not force:
        raise ConfigError(f"experiments new: {path!r} already exists; choose another name or add --force to "
                          "overwrite it")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"experiments new: directory {parent!r} does not exist; create it or choose another path")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(template(path))
    except OSError as exc:
        raise ConfigError(f"experiments new: cannot write {path!r} ({exc.strerror}); choose a path you can write "
                          "to") from None
    return path
