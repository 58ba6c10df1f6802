"""``ipclab run``: measure transports x patterns x sizes, print tables, save the JSON result after every cell.

The run options (flags, experiment keys, validation) come from the one option table, :mod:`ipclab.options`;
this module adds only what is not part of the config: --experiment, --format and --quiet.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from ..config import FORMATS, RunConfig
from ..errors import Interrupted
from .common import add_command, add_format, formatter, terminate_as_exception


def add_parser(subparsers: Any) -> None:
    from .. import options

    run = add_command(
        subparsers, "run", cmd_run, help="measure transports x patterns x sizes; print tables, save JSON",
        formatter_class=formatter,
        description="Spawn producer/consumer processes for every cell (pattern x transport x size), print "
        "comparison tables and save the full result as JSON.",
        epilog=pattern_help() + "\n\nexamples:\n  ipclab run\n  ipclab run --transport tcp,udp,pipe --size 64,4K,64K "
        "--trials 3\n  ipclab run --experiment latency-vs-size      (see 'ipclab experiments')")
    options.add_arguments(run)
    for action in run._actions:  # the option table's help lists the names; what each measures is in the epilog
        if action.dest == "patterns" and action.help:
            action.help = action.help.replace(" (default:", "; each explained under 'patterns' below (default:", 1)
    run.add_argument("--experiment", "-e", metavar="NAME|FILE", help="a shipped experiment (see 'ipclab "
                     "experiments') or a TOML file; flags override it")
    add_format(run, FORMATS, "what to print: the tables (as text, a Markdown table or CSV) or the whole "
               "result (json); the JSON file is written either way")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    run.add_argument("--force", action="store_true", help="overwrite the --output file if it exists")


def pattern_help() -> str:
    """"patterns:" and one line per registered pattern, its declared summary (a new pattern shows up here)."""
    import shutil
    import textwrap

    from ..patterns import specs

    found = specs()
    name = max((len(s.name) for s in found), default=0)
    width = max(60, shutil.get_terminal_size().columns - 2)  # argparse's own width
    return "patterns (--pattern):\n" + "\n".join(
        textwrap.fill(f"  {s.name:<{name}}  {s.summary}", width, subsequent_indent=" " * (name + 4),
                      break_long_words=False, break_on_hyphens=False) for s in found)


def build_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig of ``ipclab run ARGS``: flags over the experiment file's keys, validated by the table."""
    from ..catalog import check_metrics, find, make_output_dir
    from ..experiment import NOTES, key_labels, load
    from ..options import resolve, table

    given = {o.name: getattr(args, o.name, None) for o in table()}
    if not args.experiment:
        return resolve(given)
    label, path, _ = find(args.experiment)  # an existing path wins, else a shipped experiment's name
    values = load(path)
    labels = key_labels(path, values)
    extra = {key: values.pop(key) for key in NOTES if key in values}
    if "metrics" in extra:
        extra["metrics"] = check_metrics(extra["metrics"], labels["metrics"])
    if given.get("output") is None:
        make_output_dir(values)  # a shipped experiment's results/ is created like the default one
    return resolve(given, values, labels, experiment=label, extra=extra)


def cmd_run(args: argparse.Namespace) -> int:
    from .. import results
    from ..outputs import SaveFailed, check_default_dir, check_target
    from ..progress import Progress
    from ..runner import Runner

    config = build_config(args)
    path = config.output
    if path is None:
        check_default_dir("results")
        path = results.default_path("results")
    # Everything the first save needs, checked before the first cell: no measurement is lost to a bad path.
    check_target(path, "--output", force=args.force)
    to_stdout = path == "-"

    def save(result: dict[str, Any]) -> None:
        if not to_stdout:
            try:
                results.save(result, path)
            except OSError as exc:  # a full disk mid-sweep: stop, and keep what was measured elsewhere
                raise SaveFailed(_rescued(result, path, exc)) from None

    runner = Runner(config, on_cell=save)
    runner.result["metadata"]["argv"] = ["ipclab", *getattr(args, "argv", sys.argv[1:])]  # how to measure it again
    interrupted: Interrupted | None = None
    with terminate_as_exception(), Progress(quiet=args.quiet, label_width=label_width(config)) as progress:
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
        if config.extra.get("question") and args.format in ("table", "markdown"):  # an experiment's question
            from ..untrusted import terminal_text

            print(f"Question: {terminal_text(config.extra['question'])}\n")  # text from the experiment file
        if args.format in ("table", "markdown"):  # a run across hosts is headed by both hosts and the link
            from ..engine.remote import describe

            hosts = describe(result["metadata"])
            if hosts:
                print(f"{hosts}\n")
        sys.stdout.write(render_run_tables(result, args.format, config.extra.get("metrics")))
    # The same lines `ipclab report` prints for this result: one advice engine, the same figures considered.
    for line in run_warnings(result):
        print(_fit_stderr(f"ipclab: warning: {line}"), file=sys.stderr)
    failed = [c for c in result["cells"] if c["status"] == "failed"]
    for c in failed:
        print(f"ipclab: failed: {c['pattern']} {c['transport']} {c['size_bytes']} B: {c['reason']}", file=sys.stderr)
    if not to_stdout:
        stream = sys.stdout if args.format in ("table", "markdown") else sys.stderr
        print(f"\nresult saved to {path}", file=stream)
    return 1 if failed else 0


def label_width(config: RunConfig) -> int:
    """The longest cell label of the sweep ("pingpong unix-seqpacket 64 KiB"): the progress bar's fixed width."""
    from ..config import format_size

    return max((len(f"{p} {t} {format_size(s)}") for p in config.patterns for t in config.transports
                for s in config.sizes), default=0)


def _rescued(result: dict[str, Any], path: str, exc: OSError) -> str:
    """The one line for a save that failed mid-sweep, after writing the result measured so far elsewhere."""
    from .. import results
    from ..outputs import rescue

    result["interrupted"] = True  # the sweep stops here: cells after this one were never measured
    where = rescue(results.dumps(result), path, exc)
    cells = len(result["cells"])
    return (f"cannot save the result to {path!r} ({exc.strerror or exc}); the {cells} cell(s) measured so far are "
            f"saved to {where}; free space or choose another --output, then rerun")


def render_run_tables(result: dict[str, Any], fmt: str, metrics: list[str] | None = None) -> str:
    """The tables ``run`` prints (an experiment's ``metrics``, else each pattern's): report's renderer."""
    from ..report.tables import render_run_tables as render

    return render(result, fmt, metrics)


def _fit_stderr(line: str) -> str:
    """A warning as one line for a pipe or a log (greppable), wrapped at words for a person at a terminal."""
    if not sys.stderr.isatty():
        return line
    from ..report.layout import terminal_width, wrap

    return wrap(line, terminal_width(), indent=4)


def run_warnings(result: dict[str, Any]) -> list[str]:
    """The warning lines ``run`` prints after its tables: the advice engine ``ipclab report`` uses."""
    from ..report.advice import run_warnings as advise

    return advise(result)
