"""Workloads, each written once against Channel. Registry: name -> module, imported lazily.

A pattern module defines:
    ROLES(config) -> list of (role, index) workers to spawn ("server" first)
    LABELS: dict role -> human name ("consumer", "producer") used in messages
    run(role, index, channel, ctx) -> dict   (in the worker; raw figures, JSON-able)
    metrics(raw: dict[str, dict], ctx) -> dict  (in the parent; per-trial figures from the raw results)
and optionally
    not_applicable(transport_cls, size, clients) -> str | None   (pattern-level n/a, asked by the runner)
"""

from __future__ import annotations

import importlib
from types import ModuleType

PATTERNS: dict[str, str] = {
    "pingpong": "ipclab.patterns.pingpong",
    "stream": "ipclab.patterns.stream",
    "reqrep": "ipclab.patterns.reqrep",
    "fanin": "ipclab.patterns.fanin",
    "connect": "ipclab.patterns.connect",
}


def get_pattern(name: str) -> ModuleType:
    return importlib.import_module(PATTERNS[name])
