"""``ipclab serve echo|time|file``: the classic socket servers, for real clients (nc, socat, Python).

The flags live here; ipclab.servers.commands validates them, runs the server and owns its process life.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_command


def add_parser(subparsers: Any) -> None:
    from ..servers.commands import CLIENTS, DEFAULT_IDLE, DEFAULT_MAX_CLIENTS, SERVICES
    from ..servers.loop import DATAGRAM_MAX

    p = add_command(
        subparsers, "serve", cmd_serve, help="run a classic socket server (echo, time, file) for real clients",
        raw=True, epilog=CLIENTS,
        description="Run an echo, time or file server on loopback (or where --bind says), for any client: nc, "
        "socat, Python's socket module. Many clients are served at once.")
    p.add_argument("service", metavar="SERVICE", choices=SERVICES, help="echo | time | file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--tcp", action="store_true", help="TCP (the default)")
    where.add_argument("--udp", action="store_true", help="UDP: one reply datagram per datagram (echo, time)")
    where.add_argument("--unix", metavar="PATH", help="a Unix stream socket at PATH (mode 0600, removed at exit)")
    p.add_argument("--bind", metavar="HOST:PORT", help="where to listen (default 127.0.0.1:0: loopback, a free "
                   "port, printed at start); PORT alone or HOST alone work too")
    p.add_argument("--root", metavar="DIR", help="file: the directory whose regular files may be served (required)")
    p.add_argument("--max-clients", metavar="N", help=f"connections at once (default {DEFAULT_MAX_CLIENTS})")
    p.add_argument("--idle-timeout", metavar="SECONDS", help="drop a client without progress for this long "
                   f"(default {DEFAULT_IDLE:g})")
    p.add_argument("--max-request", metavar="BYTES", help="file: longest request line (default 1024); "
                   f"--udp: largest datagram answered (default {DATAGRAM_MAX})")
    p.add_argument("--quiet", "-q", action="store_true", help="no log line per client (the address is printed)")


def cmd_serve(args: argparse.Namespace) -> int:
    from ..servers.commands import cmd_serve as serve

    return serve(args)
