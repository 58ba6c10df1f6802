"""The `report`, `plot` and `compare` subcommands: read result files, never measure anything.

Output goes to stdout unless ``-o FILE`` is given (``-o -`` is stdout too); an existing file is never
overwritten without ``--force``. Warnings go into human-readable output, and to stderr when the output is a
file or a machine format (CSV, JSON), so the user always sees them and data files stay clean.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..config import closest, split_list
from ..errors import ConfigError, IpclabError
from ..untrusted import terminal_text
from .metrics import METRICS, report_metrics

REPORT_FORMATS = ("table", "github", "markdown", "latex", "csv", "html", "json")
COMPARE_FORMATS = ("table", "github", "markdown", "latex", "html", "csv", "json")


# -- helpers ---------------------------------------------------------------------------------------------
def parse_metrics(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = split_list(text, "--metric")
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"--metric: unknown metric {name!r}{closest(name, list(METRICS))}; "
                              f"known: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def selected(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The result with only the cells --transport, --pattern, --size and --rate select."""
    from .select import select_cells

    return select_cells(result, getattr(args, "transport", None), getattr(args, "pattern", None),
                        getattr(args, "size", None), getattr(args, "rate", None))


def write_output(data: str | bytes, path: str | None, force: bool) -> bool:
    """Write to stdout (None or '-') or to a new file; True if it went to a file."""
    if path is None or path == "-":
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(data)
        return False
    from ..outputs import check_target

    check_target(path, "-o", force=force)  # never into a device, FIFO or socket; never over a file without --force
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        # "x" makes the existence check and the creation one step: no race with another writer.
        with open(path, "wb" if force else "xb") as f:
            f.write(raw)
    except FileExistsError:
        raise ConfigError(f"-o: {path!r} already exists; add --force to overwrite it or choose another name") from None
    except OSError as exc:
        raise ConfigError(f"-o: cannot write {path!r}: {exc.strerror}") from None
    return True


def _warn(lines: list[str]) -> None:
    for line in lines:  # warnings quote names and reasons from the file: no escape sequence reaches stderr
        print(f"ipclab: warning: {terminal_text(line, newlines=False)}", file=sys.stderr)


def report_tables(result: dict[str, Any], metrics: list[str] | None, path: str = "the result") -> list[Any]:
    """The pivot tables a report shows; ConfigError if a requested metric is recorded nowhere."""
    from .load import closed_loop, load_tables
    from .tables import applicable, patterns_in, pivot, shown_metrics

    patterns = patterns_in(result)
    if not patterns:
        raise ConfigError(f"{path} holds no cells (was the run interrupted before the first one?)")
    closed = closed_loop(result)  # the size pivots: closed-loop cells; open-loop ones (--rate): the load tables
    shown = patterns_in(closed)
    if metrics is None:
        # A pattern's SPEC.report_tables (a little more than `run`), with the delivery table where cells lost any.
        return [pivot(closed, p, k) for p in shown for k in shown_metrics(closed, p, report_metrics(p))
                if applicable(closed, p, k)] + load_tables(result)
    recorded = [k for k in METRICS if any(applicable(result, p, k) for p in patterns)]
    for key in metrics:
        if key not in recorded:
            raise ConfigError(f"--metric: {key!r} is not recorded in {path} (patterns: {', '.join(patterns)}); "
                              f"recorded here: {', '.join(recorded)}")
    return [pivot(closed, p, k) for p in shown for k in shown_metrics(closed, p, metrics, asked=True)
            if applicable(closed, p, k)] + load_tables(result)


def context_line(result: dict[str, Any]) -> str:
    """Where and how the figures were measured, in one line above the tables."""
    meta = result.get("metadata", {})
    usable = meta.get("cpu_affinity") or []
    parts = [f"ipclab {meta.get('ipclab_version', '?')}", f"Python {meta.get('python_version', '?')}",
             f"Linux {meta.get('kernel', '?')}" if meta.get("os", "Linux") == "Linux" else str(meta.get("kernel")),
             f"{meta.get('cpu_model') or 'unknown CPU'} ({len(usable) or meta.get('cpu_count', '?')} CPUs usable)"]
    if meta.get("virtualization"):
        parts.append("virtual machine")
    created = str(result.get("created") or "?")[:10]
    return f"Measured {created} with " + ", ".join(parts)


def _html_plots(result: dict[str, Any]) -> tuple[list[tuple[str, bytes]], str | None]:
    from . import plot

    try:
        plot.require_matplotlib()
    except IpclabError:
        return [], f"Plots omitted: matplotlib is not installed ({plot.INSTALL_HINT})."
    out = []
    for kind in plot.KINDS:
        try:
            out.append((plot.caption(result, kind), plot.render(result, kind, "png")))
        except ConfigError:
            continue  # nothing of that kind in this result
    return out, None


# -- handlers --------------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from .. import results
    from .advice import report_warnings
    from .tables import render_tables

    if getattr(args, "list_metrics", False):
        from .metrics import list_metrics

        sys.stdout.write(list_metrics())
        return 0
    if args.result is None:
        raise ConfigError("report: give a RESULT.json (or --list-metrics)")
    result = selected(results.load(args.result), args)
    chosen = parse_metrics(args.metric)
    tables = report_tables(result, chosen, args.result)
    warnings = report_warnings(result, tables, chosen=chosen is not None)  # by default: the lines `run` printed
    to_file = args.output not in (None, "-")
    fmt = args.format
    if fmt in ("csv", "json"):
        text = render_tables(tables, fmt)
    elif fmt == "latex":
        from . import latex

        text = latex.render(result, tables, warnings)
    elif fmt == "html":
        from . import html

        plots, note = ([], None) if args.no_plots else _html_plots(result)
        name = os.path.basename(args.result)
        argv = getattr(args, "argv", None) or ["report", args.result, "--format", "html"]  # as typed (cli.main)
        text = html.render(result, tables, warnings, plots, note, title=f"ipclab report: {name}",
                           command=html.command_text(["ipclab", *argv]))
    else:  # table, github, markdown: the tables exactly as `ipclab run` prints them, with context and warnings
        from ..engine.remote import describe
        from .layout import terminal_width, wrap

        line = context_line(result)
        # Wrapped at words for a person at a terminal; one line per warning in a file or a pipe (greppable, and
        # the same lines `run` prints to stderr).
        width = terminal_width() if not args.output and sys.stdout.isatty() else 10**6
        text = (f"_{line}_\n\n" if fmt != "table" else f"{wrap(line, width)}\n\n")
        hosts = describe(result.get("metadata", {}))  # a run across hosts: both hosts and the link, as run said
        if hosts:
            text += f"{hosts}\n\n"
        text += render_tables(tables, fmt)
        if warnings:
            md = fmt != "table"
            head = "**Warnings**\n\n" if md else "warnings:\n"
            text += "\n" + head + "".join(f"- {w}\n" if md else wrap(f"  - {w}", width, indent=4) + "\n"
                                           for w in warnings)
    if fmt not in ("csv", "json", "html"):  # (CSV: see csv_cell; JSON escapes controls; HTML: html.escape)
        text = terminal_text(text)  # names and reasons from the file: no escape sequence reaches a terminal
    write_output(text, args.output, args.force)
    # In a file or a machine format the user would not see them: say them on stderr as well.
    if to_file or fmt in ("csv", "json", "latex"):
        _warn(warnings)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .. import results
    from . import plot

    path = args.output
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if path == "-":
        ext = "png"
    if ext not in plot.FORMATS:
        raise ConfigError(f"-o: {path!r} must end in .png or .svg (the image format is taken from the name)")
    if path != "-":
        from ..outputs import check_target

        check_target(path, "-o", force=args.force)  # before the (slow) plot is drawn
    plot.require_matplotlib()
    result = results.load(args.result)
    if not result["cells"]:
        raise ConfigError(f"{args.result} holds no cells; nothing to plot")
    result = selected(result, args)
    data = plot.render(result, args.kind or plot.default_kind(result), ext)
    write_output(data, path, args.force)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .. import results
    from . import compare

    if not 0.0 < args.alpha < 0.5:
        raise ConfigError(f"--alpha: {args.alpha:g} is out of range; a significance level is between 0 and 0.5 "
                          "(usually 0.05)")
    a, b = results.load(args.a), results.load(args.b)
    comp = compare.compare(a, b, parse_metrics(args.metric), alpha=args.alpha)
    if args.format == "csv":
        text = compare.render_csv(comp)
    elif args.format == "json":
        text = compare.render_json(comp)
    elif args.format == "latex":  # escaped by the renderer: names from the files cannot run TeX commands
        text = compare.render_latex(comp, args.a, args.b, args.alpha)
    elif args.format == "html":  # escaped by the renderer
        text = compare.render_html(comp, args.a, args.b, args.alpha)
    else:
        head = f"A = {args.a}\nB = {args.b}\n\n"
        text = terminal_text(head + compare.render_text(comp, args.format, args.alpha))  # names from the files
    to_file = write_output(text, args.output, args.force)
    if to_file or args.format in ("csv", "json", "latex", "html"):
        _warn(comp.warnings)
    return 0
