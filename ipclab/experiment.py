"""Experiment files: a TOML document naming a sweep, for assignments and reproducible comparisons.

The shipped ones are in ipclab/experiments/ (``ipclab experiments`` lists them); ``ipclab experiments new FILE``
writes a commented template naming every key, its default and its meaning.

The keys are the run options' TOML keys (ipclab.options: a pattern's own options too) plus the notes
``description``, ``question`` and ``metrics``. Unknown keys and wrong types are errors naming the key and its
line. CLI flags override the file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any

from .config import closest
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_EXPERIMENT_BYTES = 1024 * 1024
# Keys that are not run options: notes recorded in the result (config.extra): what the experiment is, the question
# it asks (printed above the tables) and the metrics it expects to be read (the tables run prints).
NOTES: dict[str, tuple[tuple[type, ...], str]] = {
    "description": ((str,), "a string"),
    "question": ((str,), "a string"),
    "metrics": ((list, str), "a list of metric keys such as \"rtt_p50_us\""),
}


def schema() -> dict[str, tuple[tuple[type, ...], str]]:
    """Every key an experiment file accepts -> (TOML types, how the type is described): from the option table."""
    from .options import toml_keys

    return {**NOTES, **{key: (o.toml_types, o.toml_text) for key, o in toml_keys().items()}}


def _line_of(text: str, key: str) -> int | None:
    """The line where ``key`` is set: ``key = ...`` (bare or quoted) or a ``[key]`` table header."""
    k = re.escape(key)
    # [ \t]*, not \s*: \s would swallow blank lines before the key and report the wrong line.
    pattern = rf"^[ \t]*(?:(?:{k}|\"{k}\"|'{k}')[ \t]*=|\[\[?[ \t]*(?:{k}|\"{k}\"|'{k}')[ \t]*\])"
    match = re.search(pattern, text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def load(path: str) -> dict[str, Any]:
    """Parse and type-check an experiment file; returns the keys it sets (values still to be validated)."""
    from .untrusted import read_regular

    raw = read_regular(path, MAX_EXPERIMENT_BYTES, "--experiment")  # a FIFO or a device is refused, not read
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--experiment: {path!r} is not UTF-8 text (a binary file?); give a TOML file") from None
    if "\x00" in text:
        raise ConfigError(f"--experiment: {path!r} contains NUL bytes (a binary file?); give a TOML file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--experiment: {path!r} is not valid TOML: {exc}") from None
    out: dict[str, Any] = {}
    keys = schema()
    for key, value in data.items():
        line = _line_of(text, key)
        where = f"{path}:{line}" if line else path
        if key not in keys:
            known = ", ".join(keys)
            raise ConfigError(f"{where}: unknown key {key!r}{closest(key, list(keys))}; known keys: {known}")
        types, desc = keys[key]
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types)
        if ok and isinstance(value, list) and not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                     for v in value):
            ok = False
        if not ok:
            shown = "a table" if isinstance(value, dict) else repr(value)
            raise ConfigError(f"{where}: {key} = {shown} has the wrong type; it must be {desc}")
        if isinstance(value, list) and not value:
            raise ConfigError(f"{where}: {key} = [] is empty; it must be {desc} with at least one item")
        out[key] = value
    return out


def key_labels(path: str, keys: Iterable[str]) -> dict[str, str]:
    """How errors name values that came from the file: key -> 'FILE:LINE: key'."""
    from .untrusted import read_regular

    try:
        text = read_regular(path, MAX_EXPERIMENT_BYTES, "--experiment").decode("utf-8")
    except (ConfigError, UnicodeDecodeError):  # load() has said what is wrong with the file, if anything
        text = ""
    labels = {}
    for key in keys:
        line = _line_of(text, key)
        labels[key] = f"{path}:{line}: {key}" if line else f"{path}: {key}"
    return labels
