"""Comparing two results: per common cell, B/A and whether the difference is real.

The unit of evidence is the trial (fresh processes each time); samples inside one trial are not independent
of each other, so a cell's per-trial figures go to a Mann-Whitney U test and a bootstrap interval of the ratio
of medians (ipclab.stats.compare_trials). With too few trials the verdict says so instead of guessing.
Differences in the two runs' machines or settings are listed, because they explain differences in figures.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from .. import stats
from ..config import format_size
from ..patterns import specs
from ..untrusted import csv_cell, strict_json
from .metrics import Metric, belongs, default_metrics, format_number, metric_for
from .tables import Table

ALPHA = 0.05
META_FIELDS = (("kernel", "kernel"), ("cpu_model", "CPU model"), ("cpu_count", "CPU count"),
               ("cpu_affinity", "usable CPUs"), ("virtualization", "virtualization"),
               ("python_version", "Python version"), ("python_implementation", "Python implementation"),
               ("ipclab_version", "ipclab version"))
CONFIG_FIELDS = (("count", "--count"), ("duration", "--duration"), ("warmup", "--warmup"),
                 ("verify", "--verify"), ("rates", "--rate"))


def config_fields() -> list[tuple[str, str]]:
    """Run settings whose differences are listed: the common ones and every pattern's own options."""
    options = {o.name: f"--{o.name.replace('_', '-')}" for s in specs() for o in s.options}
    return [*CONFIG_FIELDS, *options.items()]


def _setting(config: dict[str, Any], key: str) -> Any:
    """A setting of a result's config: top level (older files, built-in options) or under "options"."""
    if key in config:
        return config[key]
    options = config.get("options")
    return options.get(key) if isinstance(options, dict) else None


@dataclass
class Row:
    pattern: str
    transport: str
    size: int
    metric: Metric
    outcome: dict[str, Any]  # stats.compare_trials
    rate: float | None = None  # an open-loop cell's offered rate; None: closed loop

    def verdict(self) -> str:
        o = self.outcome
        if o["reason"]:
            return "too few trials"
        if o["ratio"] is None:
            return "A is 0: no ratio"
        if not o["significant"]:
            return f"no significant difference (p={o['p']:.2g})"
        better = (o["ratio"] > 1) == self.metric.higher_is_better
        return f"B {'better' if better else 'worse'} (p={o['p']:.2g})"


@dataclass
class Comparison:
    rows: list[Row]
    warnings: list[str] = field(default_factory=list)  # metadata differences
    notes: list[str] = field(default_factory=list)  # cells on one side only, too few trials


Key = tuple[str, str, int, "float | None"]


def _key(cell: dict[str, Any]) -> Key:
    """Cells match by pattern, transport, size and offered rate (open loop; None: closed loop)."""
    from .load import rate_of

    return cell["pattern"], cell["transport"], cell["size_bytes"], rate_of(cell)


def _rate(rate: float | None) -> str:
    from .load import format_rate

    return format_rate(rate) + ("/s" if rate is not None else "")


def _label(key: Key) -> str:
    return f"{key[0]} {key[1]} {format_size(key[2])}" + (f" at {_rate(key[3])}" if key[3] is not None else "")


def per_trial(cell: dict[str, Any], metric: str) -> list[float]:
    values = [t.get("metrics", {}).get(metric) for t in cell.get("trials", [])]
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def metadata_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """One line per difference in machine, software or settings that can move the figures."""
    out = []
    ma, mb = a.get("metadata", {}), b.get("metadata", {})
    for key, label in META_FIELDS:
        if ma.get(key) != mb.get(key):
            out.append(f"{label} differs: {ma.get(key)!r} (A) vs {mb.get(key)!r} (B)")
    ca, cb = a.get("config", {}), b.get("config", {})
    for key, label in config_fields():
        va, vb = _setting(ca, key), _setting(cb, key)
        if va != vb:
            out.append(f"{label} differs: {va!r} (A) vs {vb!r} (B)")
    cells_b = {_key(c): c for c in b.get("cells", [])}
    moved = [(k, ca_.get("placement"), cells_b[k].get("placement"))
             for ca_ in a.get("cells", []) if (k := _key(ca_)) in cells_b
             and ca_.get("placement") != cells_b[k].get("placement")]
    if moved:
        first, pa, pb = moved[0]
        out.append(f"placement differs in {len(moved)} common cell(s), e.g. {_label(first)}: {pa} (A) vs {pb} (B); "
                   "same-CPU and cross-CPU figures differ by design")
    return out


def compare(a: dict[str, Any], b: dict[str, Any], metrics: list[str] | None = None, *, alpha: float = ALPHA,
            seed: int = 0) -> Comparison:
    """Rows for every cell measured (status ok) in both results, for each metric both recorded."""
    cells_a = {_key(c): c for c in a.get("cells", []) if c.get("status") == "ok"}
    cells_b = {_key(c): c for c in b.get("cells", []) if c.get("status") == "ok"}
    common = [k for k in cells_a if k in cells_b]
    result = Comparison(rows=[], warnings=metadata_differences(a, b))
    for key in common:
        pattern = key[0]
        for name in metrics or default_metrics(pattern):
            metric = metric_for(pattern, name)  # the words its cells count in (per round trip...)
            if not belongs(pattern, name):
                continue
            va, vb = per_trial(cells_a[key], name), per_trial(cells_b[key], name)
            if va and vb:
                outcome = stats.compare_trials(va, vb, alpha=alpha, seed=seed)
                result.rows.append(Row(pattern, key[1], key[2], metric, outcome, key[3]))
    only_a = [k for k in cells_a if k not in cells_b]
    only_b = [k for k in cells_b if k not in cells_a]
    if only_a:
        result.notes.append(f"{len(only_a)} cell(s) measured only in A, e.g. {_label(only_a[0])}")
    if only_b:
        result.notes.append(f"{len(only_b)} cell(s) measured only in B, e.g. {_label(only_b[0])}")
    reasons = list(dict.fromkeys(r.outcome["reason"] for r in result.rows if r.outcome["reason"]))
    result.notes.extend(reasons)
    return result


def _groups(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.pattern, row.metric.key), []).append(row)
    return groups


def _ci(outcome: dict[str, Any]) -> str:
    ci = outcome["ci"]
    return "" if ci is None else f"{ci[0]:.3g}..{ci[1]:.3g}"


COLUMNS = ["transport", "size", "A", "B", "B/A", "CI", "verdict"]


def tables(comp: Comparison, alpha: float = ALPHA) -> list[Table]:
    """One table per (pattern, metric): the rows the text, Markdown, LaTeX and HTML renderings all show."""
    out = []
    for (pattern, _), rows in _groups(comp.rows).items():
        metric = rows[0].metric
        title = (f"{pattern}: {metric.heading()}; B/A = ratio of medians across trials, {1 - alpha:.0%} CI by "
                 f"bootstrap, p from Mann-Whitney U on per-trial figures")
        loaded = any(r.rate is not None for r in rows)  # open-loop cells: a rate column (max = closed loop)
        body = [[r.transport, format_size(r.size), *([_rate(r.rate)] if loaded else []),
                 format_number(r.outcome["median_a"]), format_number(r.outcome["median_b"]),
                 "" if r.outcome["ratio"] is None else f"{r.outcome['ratio']:.3g}", _ci(r.outcome), r.verdict()]
                for r in rows]
        columns = [*COLUMNS[:2], *(["rate"] if loaded else []), *COLUMNS[2:5], f"{1 - alpha:.0%} CI", COLUMNS[6]]
        out.append(Table(pattern, metric, title, columns, [r.size for r in rows], body, [],
                         transports=[r.transport for r in rows]))
    return out


def _extra(comp: Comparison) -> list[str]:
    return [f"warning: {w}" for w in comp.warnings] + [f"note: {n}" for n in comp.notes]


def render_text(comp: Comparison, fmt: str, alpha: float = ALPHA, width: int | None = None) -> str:
    """table (terminal, fitted to ``width``: default the terminal's) or markdown (github: the same)."""
    from .layout import fit, terminal_width, wrap

    md = fmt in ("github", "markdown")
    width = width or terminal_width()
    out = []
    for t in tables(comp, alpha):
        aligns = ("left", *("right",) * (len(t.columns) - 2), "left")
        if md:
            from tabulate import tabulate

            body = tabulate(t.rows, headers=t.columns, tablefmt="pipe", disable_numparse=True, colalign=aligns)
            out.append(f"**{t.title}**\n\n{body}\n")
        else:
            body = "\n\n".join(fit(t.columns, t.rows, width))
            out.append(f"{wrap(t.title, width, 2)}\n\n{body}\n")
    if not comp.rows:
        out.append("no cell was measured in both results\n")
    extra = _extra(comp)
    if extra:
        out.append("\n".join(f"- {e}" if md else wrap(e, width, 2) for e in extra) + "\n")
    return "\n".join(out)


def render_latex(comp: Comparison, a: str, b: str, alpha: float = ALPHA) -> str:
    """LaTeX: report's booktabs table per (pattern, metric); warnings and notes as comments for the author."""
    from .latex import escape, render_table

    def comment(text: str) -> str:
        return "% " + " ".join(str(text).split())

    head = [comment("Generated by ipclab compare; needs \\usepackage{booktabs} in the preamble."),
            comment(f"A = {a}"), comment(f"B = {b}"), *(comment(e) for e in _extra(comp))]
    body = "\n".join(render_table(t) for t in tables(comp, alpha))
    if not comp.rows:
        body = escape("no cell was measured in both results") + "\n"
    return "\n".join(head) + "\n\n" + body


def render_html(comp: Comparison, a: str, b: str, alpha: float = ALPHA) -> str:
    """One self-contained page with report's table style: the tables, then the warnings and notes."""
    from html import escape

    from .html import CSS, render_table

    title = "ipclab compare"
    parts = ["<!DOCTYPE html>", '<html lang="en">', '<head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{title}</title>", f"<style>{CSS}</style></head>", "<body>", f"<h1>{title}</h1>",
             f"<p>A = {escape(a)}<br>B = {escape(b)}</p>"]
    extra = _extra(comp)
    if extra:
        items = "".join(f"<li>{escape(e)}</li>" for e in extra)
        parts.append(f'<section class="warnings"><ul>{items}</ul></section>')
    parts += [f"<section>{render_table(t)}</section>" for t in tables(comp, alpha)]
    if not comp.rows:
        parts.append("<p>no cell was measured in both results</p>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def records(comp: Comparison) -> list[dict[str, Any]]:
    out = []
    for r in comp.rows:
        o = r.outcome
        ci = o["ci"]
        out.append({"pattern": r.pattern, "metric": r.metric.key, "unit": r.metric.unit, "transport": r.transport,
                    "size_bytes": r.size, "rate": r.rate, "trials_a": o["n_a"], "trials_b": o["n_b"],
                    "median_a": o["median_a"],
                    "median_b": o["median_b"], "ratio": o["ratio"], "ci_low": None if ci is None else ci[0],
                    "ci_high": None if ci is None else ci[1], "p_value": o["p"], "significant": o["significant"],
                    "reason": o["reason"]})
    return out


def render_csv(comp: Comparison) -> str:
    """Machine-clean: raw numbers, empty fields for 'not computed', true/false for significance."""
    rows = records(comp)
    out = io.StringIO()
    fields = ["pattern", "metric", "unit", "transport", "size_bytes", "rate", "trials_a", "trials_b", "median_a",
              "median_b", "ratio", "ci_low", "ci_high", "p_value", "significant", "reason"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell("" if v is None else str(v).lower() if isinstance(v, bool) else
                                     repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def render_json(comp: Comparison) -> str:
    return strict_json({"rows": records(comp), "warnings": comp.warnings, "notes": comp.notes}, indent=1) + "\n"
