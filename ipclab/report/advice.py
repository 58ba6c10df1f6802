"""The advice engine: every warning ``run`` and ``report`` show, as objects with a code, rendered one way.

``advise(result)`` is a pure function of a result dict returning ``Advice`` objects: what is wrong, which cells,
what to do. Each warning appears once, naming the cells it concerns. Machine first (interrupted run, virtual
machine, a busy machine (load average at the start and end of the run, CPU steal time), fewer CPUs than worker
processes, a single trial), then per pattern (percentiles resting on too few samples, trials that disagree, a
stall, lost messages), then what the engine recorded per cell, grouped. The figures considered are the same for
``run`` and ``report`` (each pattern's declared run and report tables, the experiment's metrics, and any table
shown), so both print the same lines for the same result.

Cell warnings are objects ``{"code", "message"}`` (codes such as "placement", "spread", "corrupt",
"interrupted"); older result files carry plain strings, read as code "note". Spread warnings of cells are not
repeated: the per-metric advice says it with the worst cell. Nothing here matches warning text: codes decide.

``lines(advice)`` renders them as the one-line texts every format prints (``- ...`` in text and Markdown,
``% WARNING:`` in LaTeX, ``ipclab: warning:`` on stderr).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import stats
from .cells import figure_range, label, loss_pct, lossy, samples_behind
from .metrics import METRICS, PERCENTILES, belongs, default_metrics, format_number, report_metrics
from .tables import SPREAD_MARK, Table, patterns_in

NOTE = "note"  # the code of a warning recorded as a plain string (result files before warning objects)
PER_METRIC = frozenset({"spread"})  # cell codes the per-metric advice already covers
SHOWN_CELLS = 4  # cells named in one warning before "and N more"
STALL_FACTOR = 10.0  # a max this many times the tail percentile...
STALL_MIN_US = 1000.0  # ...and at least this long (a scheduler timeslice) is a stall, not a tail
STEAL_WARN = 0.02  # share of CPU time the hypervisor may take before the figures are suspect
GOOD_TRIALS = 5  # what `ipclab compare` needs; the spread advice asks for no more


@dataclass(frozen=True)
class Advice:
    """One warning: a code (stable, for machines), what is wrong, the cells concerned and what to do."""

    code: str
    message: str
    cells: tuple[str, ...] = ()
    fix: str = ""

    def text(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message


def cell_warning(item: Any) -> tuple[str, str]:
    """(code, message) of a recorded cell warning: an object, or a plain string from an older file."""
    if isinstance(item, dict):
        return str(item.get("code") or NOTE), str(item.get("message", ""))
    return NOTE, str(item)


def listing(labels: list[str] | tuple[str, ...]) -> str:
    """"a, b, c and 3 more": the cells of one warning, short enough for one line."""
    labels = list(dict.fromkeys(labels))
    head = ", ".join(labels[:SHOWN_CELLS])
    return head + (f" and {len(labels) - SHOWN_CELLS} more" if len(labels) > SHOWN_CELLS else "")


def processes_per_cell(result: dict[str, Any]) -> int:
    """The most worker processes any cell ran at once (2 for a producer/consumer pair)."""
    most = 0
    for cell in result.get("cells", []):
        cpus = cell.get("cpus")
        if isinstance(cpus, dict):
            most = max(most, len(cpus))
    return most


def busy_advice(result: dict[str, Any]) -> list[Advice]:
    """A busy machine: load average above the CPU count at the start or end of the sweep (our own workers taken
    out of the end figure), and CPU time the hypervisor took (steal) during it. Read from the metadata the sweep
    records at its start and end (``load_start``, ``load_end``: probes.machine_load())."""
    meta = result.get("metadata", {})
    start, end = meta.get("load_start"), meta.get("load_end")
    cpus = meta.get("cpu_count")
    out = []
    if isinstance(start, dict) and isinstance(end, dict) and isinstance(cpus, int) and cpus > 0:
        first, last = _load1(start), _load1(end)
        # The end figure counts this run's own workers (the 1-minute average of the last cells): not "others".
        others = None if last is None else last - processes_per_cell(result)
        if (first is not None and first > cpus) or (others is not None and others > cpus):
            out.append(Advice("busy", f"the machine was busy: load average {_opt(first)} at the start and "
                              f"{_opt(last)} at the end of the run (up to {processes_per_cell(result)} of it this "
                              f"run's workers) on {cpus} CPUs: other programs competed with the workers",
                              fix="close other programs or rerun when the machine is idle; compare only with runs "
                              "made under the same load"))
    steal = steal_share(start, end)
    if steal is not None and steal > STEAL_WARN:
        out.append(Advice("steal", f"the hypervisor took {steal:.1%} of the CPU time during the run (steal time): "
                          "the workers waited for real CPUs that other guests were using",
                          fix="rerun on a quieter host or on bare metal; compare only with runs of similar steal"))
    return out


def _load1(snapshot: dict[str, Any]) -> float | None:
    load = snapshot.get("load_average")
    return float(load[0]) if isinstance(load, list) and load and isinstance(load[0], (int, float)) else None


def _opt(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def steal_share(start: Any, end: Any) -> float | None:
    """Steal jiffies over all jiffies between two snapshots (/proc/stat's cpu line); None if not recorded."""
    try:
        total = end["cpu_jiffies"]["total"] - start["cpu_jiffies"]["total"]
        steal = end["cpu_jiffies"]["steal"] - start["cpu_jiffies"]["steal"]
    except (KeyError, TypeError):
        return None
    return steal / total if isinstance(total, (int, float)) and total > 0 else None


def machine_advice(result: dict[str, Any]) -> list[Advice]:
    """About the run as a whole: interrupted, a VM, a busy machine, CPUs vs processes, one trial."""
    meta = result.get("metadata", {})
    out = []
    if result.get("interrupted"):
        out.append(Advice("interrupted", "the run was interrupted: cells after the last one shown were never "
                          "measured", fix="rerun the sweep to complete it"))
    if meta.get("virtualization"):
        out.append(Advice("vm", f"measured on a virtual machine ({meta['virtualization']}): wake-up latencies "
                          "depend on the hypervisor and its other guests",
                          fix="compare only with runs from the same machine, or rerun on bare metal for absolute "
                          "figures"))
    out += busy_advice(result)
    usable = meta.get("cpu_affinity") or []
    procs = processes_per_cell(result)
    if usable and procs > len(usable):
        out.append(Advice("cpus", f"only {len(usable)} CPU(s) usable but cells ran {procs} worker processes: they "
                          "took turns on the CPUs, so figures include scheduler waits",
                          fix=f"run on a machine with at least {procs} cores or read the figures as 'CPUs shared'"))
    trials = result.get("config", {}).get("trials")
    if trials == 1 and any(c.get("status") == "ok" for c in result.get("cells", [])):
        out.append(Advice("one_trial", "one trial per cell: how much the figures vary from run to run is unknown",
                          fix=f"rerun with --trials {GOOD_TRIALS} (what 'ipclab compare' needs)"))
    return out


def considered(result: dict[str, Any], tables: list[Table] | None = None,
               chosen: bool = False) -> dict[str, list[str]]:
    """pattern -> the figures the advice looks at: the tables run and report show by default, the experiment's
    metrics, and any table shown; the same for run and report, so both give the same advice. With ``chosen``
    (``report --metric``), the tables shown only: the reader picked the figures."""
    asked = [] if chosen else result.get("config", {}).get("extra", {}).get("metrics") or []
    out = {}
    for p in patterns_in(result):
        declared = [] if chosen else [*default_metrics(p), *report_metrics(p)]
        keys = [*declared, *asked, *(t.metric.key for t in tables or [] if t.pattern == p)]
        out[p] = [k for k in dict.fromkeys(keys) if k in METRICS and belongs(p, k)]
    return out


def spread_fix(result: dict[str, Any]) -> str:
    """What to do about trials that disagree, given what the run already did (never 'pin' a pinned run)."""
    config = result.get("config", {})
    trials = config.get("trials") or 1
    steps = []
    if trials < GOOD_TRIALS:
        steps.append(f"rerun with --trials {GOOD_TRIALS}")
    if config.get("pin") == "none":
        steps.append("pin the workers (--pin auto, same or cross)")
    if steps:
        return " and ".join(steps) + "; close other programs"
    return (f"the run was already pinned with {trials} trials, so the machine itself is noisy: close other "
            "programs or use a quieter machine, and read each figure with its range")


def samples_advice(pattern: str, cells: list[dict[str, Any]], keys: list[str]) -> list[Advice]:
    """Percentiles resting on too few samples: the most demanding percentile considered decides."""
    thin: list[tuple[int, float, str, list[str], int]] = []
    for key in keys:
        if (p := PERCENTILES.get(key)) is None or not any(key in c.get("summary", {}) for c in cells):
            continue
        need = stats.min_samples_for(p)
        short = [(n, label(c)) for c in cells if (n := samples_behind(c, key)[0]) is not None and n < need]
        if short:
            thin.append((need, p, key, [lab for _, lab in short], min(n for n, _ in short)))
    if not thin:
        return []
    need, p, key, labels, fewest = max(thin)
    return [Advice("samples", f"{pattern}: {key} is a p{p:g}, which needs at least {need} samples, but "
                   f"{len(labels)} cell(s) have fewer (fewest: {fewest}; marked in the tables): {listing(labels)}",
                   tuple(labels), f"rerun with --count {need} or more, or with more --trials (percentiles pool "
                   "every trial's samples)")]


def spread_advice(result: dict[str, Any], pattern: str, cells: list[dict[str, Any]],
                  keys: list[str]) -> list[Advice]:
    """Trials that disagree by more than SPREAD_MARK of the median: which figures, how many cells, the worst."""
    noisy: list[str] = []
    labels: list[str] = []
    worst = (0.0, "", "")
    for key in keys:
        spreads = []
        for c in cells:
            span, median = figure_range(c, key), c.get("summary", {}).get(key)
            if span is not None and isinstance(median, (int, float)) and median:
                spreads.append(((span[1] - span[0]) / abs(median), c))
        bad = [(s, c) for s, c in spreads if s > SPREAD_MARK]
        if bad:
            noisy.append(f"{key} ({len(bad)} of {len(spreads)} cells)")
            labels.extend(label(c) for _, c in bad)
            s, c = max(bad, key=lambda item: item[0])
            if s > worst[0]:
                worst = (s, key, label(c))
    if not noisy:
        return []
    return [Advice("spread", f"{pattern}: trials disagree by more than {SPREAD_MARK:.0%} of the median in "
                   f"{', '.join(noisy)}; worst: {worst[1]} {worst[2]}, {worst[0]:.0%} (tables show the range)",
                   tuple(dict.fromkeys(labels)), spread_fix(result))]


def stall_pairs(pattern: str) -> list[tuple[str, str]]:
    """(max key, tail key) per timed distribution the pattern declares: its max and its highest percentile."""
    pairs = []
    for key in METRICS:
        if not key.endswith("_max_us") or not belongs(pattern, key):
            continue
        prefix = key[: -len("max_us")]
        tails = [(p, k) for k, p in PERCENTILES.items() if k.startswith(prefix) and p < 100 and belongs(pattern, k)]
        if tails:
            pairs.append((key, max(tails)[1]))
    return pairs


def stall_advice(pattern: str, cells: list[dict[str, Any]]) -> list[Advice]:
    """A stall: in some trial the max is far above the tail percentile (one event, not the distribution)."""
    found: list[tuple[float, str, str]] = []  # (ratio, cell label, what)
    for max_key, tail_key in stall_pairs(pattern):
        for c in cells:
            for trial in c.get("trials", []):
                figures = trial.get("metrics", {})
                top, tail = figures.get(max_key), figures.get(tail_key)
                if not (isinstance(top, (int, float)) and isinstance(tail, (int, float)) and tail > 0):
                    continue
                if top >= STALL_FACTOR * tail and top - tail >= STALL_MIN_US:
                    what = (f"trial {trial.get('trial', '?')}: {max_key} {format_number(top)} µs vs "
                            f"{tail_key} {format_number(tail)} µs")
                    found.append((top / tail, label(c), what))
    if not found:
        return []
    ratio, where, what = max(found)
    labels = [lab for _, lab, _ in found]
    return [Advice("stall", f"{pattern}: a stall in {len(set(labels))} cell(s) ({listing(labels)}), a max far above "
                   f"the tail; worst: {where} {what} ({ratio:.0f}x): one event (preemption, a page fault, another "
                   "program) held a worker up", tuple(dict.fromkeys(labels)),
                   "figures up to the tail are unaffected; rerun to see whether it repeats, close other programs")]


def loss_advice(pattern: str, cells: list[dict[str, Any]]) -> list[Advice]:
    """Cells that lost, reordered or duplicated messages: said once, with the loss of each."""
    hit = [c for c in cells if lossy(c)]
    if not hit:
        return []
    shown = [f"{label(c)} ({format_number(lost)}%)" if (lost := loss_pct(c)) is not None else label(c) for c in hit]
    return [Advice("loss", f"{pattern}: messages lost, reordered or duplicated in {len(hit)} cell(s): "
                   f"{listing(shown)}; their figures count only what arrived", tuple(label(c) for c in hit),
                   "read them with the loss beside them and the lost / reordered / duplicated table")]


def pattern_advice(result: dict[str, Any], tables: list[Table] | None = None,
                   chosen: bool = False) -> list[Advice]:
    """Per pattern: thin percentiles, trials that disagree, stalls, lost messages."""
    out = []
    for pattern, keys in considered(result, tables, chosen).items():
        cells = [c for c in result.get("cells", []) if c.get("pattern") == pattern and c.get("status") == "ok"]
        out += samples_advice(pattern, cells, keys)
        out += spread_advice(result, pattern, cells, keys)
        out += stall_advice(pattern, cells)
        out += loss_advice(pattern, cells)
    return out


def cell_advice(result: dict[str, Any], patterns: set[str] | None = None) -> list[Advice]:
    """What the engine recorded per cell (corrupt messages, placement, interruptions), spread excepted; one line
    per distinct warning, naming every cell it was recorded for."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for cell in result.get("cells", []):
        if patterns is not None and cell.get("pattern") not in patterns:
            continue
        for item in cell.get("warnings", []):
            code, message = cell_warning(item)
            if code not in PER_METRIC:
                grouped.setdefault((code, message), []).append(f"{cell['pattern']} {label(cell)}")
    return [Advice(code, f"{listing(cells)}: {message}", tuple(dict.fromkeys(cells)))
            for (code, message), cells in grouped.items()]


def advise(result: dict[str, Any], tables: list[Table] | None = None, chosen: bool = False) -> list[Advice]:
    """Every warning for a result (and ``tables``, if they show more than run and report do by default; only
    theirs with ``chosen``, the figures a reader picked with ``report --metric``)."""
    out = machine_advice(result) + pattern_advice(result, tables, chosen) + cell_advice(result)
    seen: set[str] = set()
    unique = []
    for item in out:
        if item.text() not in seen:
            seen.add(item.text())
            unique.append(item)
    return unique


def lines(advice: list[Advice]) -> list[str]:
    """The one-line texts every format prints, in order."""
    return [a.text() for a in advice]


def report_warnings(result: dict[str, Any], tables: list[Table] | None = None, chosen: bool = False) -> list[str]:
    """What ``ipclab report`` prints next to its tables: the same lines as ``run`` for the same result (unless
    the reader ``chosen`` the figures with --metric)."""
    return lines(advise(result, tables, chosen))


def run_warnings(result: dict[str, Any], tables: list[Table] | None = None) -> list[str]:
    """What ``ipclab run`` prints on stderr after its tables: the same engine, the same lines."""
    return lines(advise(result, tables))
