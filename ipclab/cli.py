"""Command line: argparse subcommands. The only place that prints errors and picks exit codes.

Exit status: 0 success; 1 a run finished but some cells failed (or a run-time error); 2 bad input;
130/143 interrupted by SIGINT/SIGTERM (results measured so far are saved). Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from . import __version__
from .errors import ConfigError, Interrupted, IpclabError

# Modules that add subcommands: each defines add_commands(subparsers); missing ones are simply absent.
PLUGINS = ("ipclab.report.commands", "ipclab.cleanup", "ipclab.servers.commands", "ipclab.cli_experiments")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def _fmt(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ipclab", formatter_class=_fmt,
                     description="Compare inter-process communication mechanisms with real processes.")
    parser.add_argument("--version", action="version", version=f"ipclab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="measure transports x patterns x sizes; print tables, save JSON",
                         formatter_class=_fmt, description="Spawn producer/consumer processes for every cell "
                         "(pattern x transport x size), print comparison tables and save the full result as JSON.",
                         epilog="examples:\n  ipclab run\n  ipclab run --transport tcp,udp,pipe --size 64,4K,64K "
                         "--trials 3\n  ipclab run --experiment latency-vs-size      (see 'ipclab experiments')")
    run.add_argument("--transport", "-t", metavar="LIST", help="comma-separated transports, or 'all' "
                     "(default: every available one; see 'ipclab list')")
    run.add_argument("--pattern", "-p", metavar="LIST",
                     help="pingpong, stream, reqrep, fanin, connect (default: pingpong,stream)")
    run.add_argument("--size", "-s", metavar="LIST", help="message sizes: bytes or K/M suffixes (KiB/MiB), "
                     "0 = empty message (default: 64,4K,64K)")
    run.add_argument("--count", "-n", metavar="N", help="messages (round trips) per trial (default: per size, "
                     "~64 MiB of traffic: 200..5000 round trips, 200..100000 stream messages)")
    run.add_argument("--duration", "-d", metavar="SECONDS", help="run each trial for this long instead of a count")
    run.add_argument("--warmup", metavar="N", help="messages discarded before measuring (default: count/10, <=100)")
    run.add_argument("--trials", "-k", metavar="K", help="trials per cell, each in fresh processes (default: 1)")
    run.add_argument("--seed", metavar="N", help="payload seed (default: 1)")
    run.add_argument("--pin", metavar="MODE", help="CPU placement: auto, none, same, cross, or CPUs 'S,C' "
                     "(default: auto = both workers on one CPU; one CPU each for busy-pollers and UDP streams)")
    run.add_argument("--timeout", metavar="SECONDS", help="per-trial limit before workers are killed (default: 60)")
    run.add_argument("--clients", metavar="N", help="producers for fan-in patterns (default: 1)")
    run.add_argument("--verify", action="store_true", help="check every byte of every message")
    run.add_argument("--experiment", "-e", metavar="NAME|FILE", help="a shipped experiment (see 'ipclab "
                     "experiments') or a TOML file; flags override it")
    run.add_argument("--output", "-o", metavar="PATH", help="result JSON path (default: results/ipclab-DATE.json)")
    run.add_argument("--format", "-f", choices=["table", "markdown", "csv", "json"], default="table",
                     help="what to print: tables (table, markdown, csv) or the whole result (json)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    run.set_defaults(handler=cmd_run)

    lst = sub.add_parser("list", help="every transport: available?, reliable?, limits")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(handler=cmd_list)

    info = sub.add_parser("sysinfo", help="the machine metadata recorded in every result")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=cmd_sysinfo)

    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        module.add_commands(sub)
    return parser


# -- run -------------------------------------------------------------------------------------------------
def build_config(args: argparse.Namespace) -> Any:
    from .config import validate
    from .experiment import flag_names, load

    given = {
        "transports": args.transport, "patterns": args.pattern, "sizes": args.size, "count": args.count,
        "duration": args.duration, "warmup": args.warmup, "trials": args.trials, "seed": args.seed,
        "timeout": args.timeout, "pin": args.pin, "clients": args.clients, "output": args.output,
    }
    values: dict[str, Any] = {}
    flags: dict[str, str] = {}
    extra: dict[str, Any] = {}
    label: str | None = None  # [issue 17] the shipped name or the path given, recorded as config.experiment
    verify = args.verify
    if args.experiment:
        # [issue 17] NAME|FILE: an existing path wins, else a shipped experiment; question/metrics go to extra.
        from .catalog import check_metrics, find, make_output_dir

        label, exp_path, _ = find(args.experiment)
        exp = load(exp_path)
        flags = flag_names(exp_path, exp)
        for key in ("description", "question"):
            if key in exp:
                extra[key] = exp.pop(key)
        if "metrics" in exp:
            extra["metrics"] = check_metrics(exp.pop("metrics"), flags.pop("metrics"))
        if args.output is None:
            make_output_dir(exp)
        # [/issue 17]
        verify = verify or bool(exp.pop("verify", False))
        values.update(exp)
        # CLI flags override the file; --count and --duration replace each other.
        if args.count is not None:
            values.pop("duration", None)
        if args.duration is not None:
            values.pop("count", None)
    for key, value in given.items():
        if value is not None:
            values[key] = value
            flags.pop({"transports": "transport", "patterns": "pattern", "sizes": "size"}.get(key, key), None)
    return validate(**values, verify=verify, experiment=label, extra=extra, flags=flags)


def cmd_run(args: argparse.Namespace) -> int:
    from . import results
    from .progress import Progress
    from .report.tables import render
    from .runner import Runner

    config = build_config(args)
    path = config.output
    if path is None:
        try:
            os.makedirs("results", exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--output: cannot create the default directory results/ ({exc.strerror}); "
                              "pass --output PATH") from None
        path = results.default_path("results")
    to_stdout = path == "-"

    def save(result: dict[str, Any]) -> None:
        if not to_stdout:
            results.save(result, path)

    runner = Runner(config, on_cell=save)
    interrupted: Interrupted | None = None
    with _terminate_as_exception(), Progress(quiet=args.quiet) as progress:
        runner.progress = progress
        try:
            runner.run()
        except KeyboardInterrupt:
            interrupted = Interrupted(signal.SIGINT)
        except Interrupted as exc:
            interrupted = exc
    result = runner.result
    if interrupted is not None:  # also when the signal came before or after the sweep proper
        result["interrupted"] = True
    save(result)
    if interrupted is not None:
        where = "" if to_stdout else f"; results measured so far saved to {path}"
        print(f"ipclab: {interrupted}{where}", file=sys.stderr)
        return interrupted.exit_code

    if args.format == "json" or to_stdout:
        sys.stdout.write(results.dumps(result))
    else:
        # [issue 17] an experiment's question above its tables, and the metrics it asks to read
        if config.extra.get("question") and args.format in ("table", "markdown"):
            print(f"Question: {config.extra['question']}\n")
        sys.stdout.write(render(result, args.format, config.extra.get("metrics")))
    warnings = [f"{c['pattern']} {c['transport']} {c['size_bytes']} B: {w}" for c in result["cells"]
                for w in c.get("warnings", [])]
    for line in _run_warnings(result) + warnings:
        print(f"ipclab: warning: {line}", file=sys.stderr)
    failed = [c for c in result["cells"] if c["status"] == "failed"]
    for c in failed:
        print(f"ipclab: failed: {c['pattern']} {c['transport']} {c['size_bytes']} B: {c['reason']}", file=sys.stderr)
    if not to_stdout:
        stream = sys.stdout if args.format in ("table", "markdown") else sys.stderr
        print(f"\nresult saved to {path}", file=stream)
    return 1 if failed else 0


def _run_warnings(result: dict[str, Any]) -> list[str]:
    meta = result.get("metadata", {})
    out = []
    if meta.get("virtualization"):
        out.append(f"running on a virtual machine ({meta['virtualization']}): wake-up latencies depend on the "
                   "hypervisor; compare figures only with runs from the same machine")
    cpus = meta.get("cpu_affinity") or []
    if cpus and len(cpus) < 2:
        out.append(f"only {len(cpus)} CPU usable: producer and consumer always share it")
    return out


class _terminate_as_exception:
    """SIGTERM raises Interrupted in the main thread, so the same finally blocks clean up as for Ctrl-C."""

    def __enter__(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            raise Interrupted(signum)

        self.old = signal.signal(signal.SIGTERM, handler)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self.old)


# -- list / sysinfo --------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .transports import TRANSPORTS, get_transport

    rows = []
    for name in TRANSPORTS:
        cls = get_transport(name)
        props = cls.properties()
        reason = cls.unavailable_reason()
        props["available"] = reason is None
        props["unavailable_reason"] = reason
        rows.append(props)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0

    def yn(v: bool) -> str:
        return "yes" if v else "no"

    table = [[r["name"], "yes" if r["available"] else f"no: {r['unavailable_reason']}", yn(r["reliable"]),
              yn(r["ordered"]), yn(r["boundaries"]), "unlimited" if r["max_message"] is None else r["max_message"],
              r["summary"]] for r in rows]
    print(tabulate(table, headers=["transport", "available", "reliable", "ordered", "boundaries",
                                   "max message (bytes)", "mechanism"], disable_numparse=True))
    print(f"\n{sum(r['available'] for r in rows)} of {len(rows)} transports available")
    return 0


def cmd_sysinfo(args: argparse.Namespace) -> int:
    from .probes import sysinfo

    info = sysinfo()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{key:22} {value}")
    return 0


# -- main ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    # SIGTERM becomes an exception from the start (exit 143 via IpclabError), not only during a sweep.
    with _terminate_as_exception():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return handler(args)
    except IpclabError as exc:
        print(f"ipclab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ipclab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ipclab report ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except OSError as exc:  # an exhausted resource outside any cell: name the limit (anything else is a bug)
        from .resources import explain, is_exhaustion

        if not is_exhaustion(exc):
            raise
        print(f"ipclab: error: {explain(exc)}", file=sys.stderr)
        return 1
