"""``ipclab sysinfo``: the machine metadata recorded in every result, in human units or as JSON.

The text names each fact by its JSON key (a group's members indented under it; ``_bytes`` dropped from the
name, the unit is in the value): sizes in B/KiB/MiB/GiB with the exact byte count beside a rounded one, load
averages to 2 decimals, "unknown" where the machine does not say, and whitespace runs (the tabs of
``tcp_rmem``) as single spaces. ``--json`` prints the same facts for machines.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_command

KEY_WIDTH = 24
# Sizes in bytes whose key does not say so (kernel settings keep their sysctl names).
BYTE_KEYS = frozenset({"net_core_rmem_default", "net_core_rmem_max", "net_core_wmem_default", "net_core_wmem_max",
                       "msgsize_max", "msgmax", "msgmnb"})
TRIPLES = frozenset({"tcp_rmem", "tcp_wmem"})  # "min default max" in bytes


def add_parser(subparsers: Any) -> None:
    info = add_command(
        subparsers, "sysinfo", cmd_sysinfo, help="the machine metadata recorded in every result",
        description="Print what ipclab records about this machine in every result file: Python, kernel, CPU "
        "model and usable CPUs, virtualization, clock source, CPU frequency governor, pipe and socket buffer "
        "sizes, message queue limits, memory and load. Compare it with a result's metadata before comparing "
        "figures from two machines.")
    info.add_argument("--json", action="store_true",
                      help="print the facts as JSON, for machines (default: text in human units)")


def human_bytes(n: int) -> str:
    """"212992 B (208 KiB)"; "23.54 GiB" for memory-sized figures; "512 B" below 1 KiB."""
    units = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
    for unit, scale in units:
        if abs(n) >= scale:
            amount = n / scale
            text = f"{amount:.0f}" if amount == int(amount) else f"{amount:.2f}"
            return f"{text} {unit}" if scale == 2**30 else f"{n} B ({text} {unit})"
    return f"{n} B"


def human(key: str, value: Any) -> str:
    """One fact's value as text."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if (key.endswith("_bytes") or key in BYTE_KEYS) and isinstance(value, int):
        return human_bytes(value)
    if key in TRIPLES:
        return " ".join(str(value).split()) + " B (min default max)"
    if key == "load_average" and isinstance(value, list):
        return " ".join(f"{float(v):.2f}" for v in value) + " (1, 5, 15 min)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return " ".join(str(value).split())


def label(key: str) -> str:
    return key[: -len("_bytes")] if key.endswith("_bytes") else key


def render(info: dict[str, Any], width: int) -> str:
    """``info`` as "key  value" lines (groups indented), each at most ``width`` columns."""
    from ..report.layout import wrap

    lines = []
    for key, value in info.items():
        if isinstance(value, dict):
            lines.append(key)
            for sub, inner in value.items():
                lines.append(wrap(f"  {label(sub):{KEY_WIDTH - 2}} {human(sub, inner)}", width, KEY_WIDTH + 1))
        else:
            lines.append(wrap(f"{label(key):{KEY_WIDTH}} {human(key, value)}", width, KEY_WIDTH + 1))
    return "\n".join(lines) + "\n"


def cmd_sysinfo(args: argparse.Namespace) -> int:
    from ..probes import sysinfo
    from ..report.layout import terminal_width
    from ..untrusted import terminal_text

    info = sysinfo()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(terminal_text(render(info, terminal_width())), end="")
    return 0
