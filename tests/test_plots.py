"""Plots read at a glance: checked through matplotlib's own objects (lines, markers, legends, tick labels and
their window extents, error bar containers, titles), never by pixels.

Fast tier: synthetic results drawn in-process; ``ipclab.cli.main`` for the command line.
"""

from __future__ import annotations

import copy
import math
import random
import sys

import pytest
from synthetic import add_na_cell, make_result

from ipclab import results, stats
from ipclab.cli import main
from ipclab.histogram import Histogram
from ipclab.report import distplot, plot, plotstyle
from ipclab.report.plotstyle import transport_style
from ipclab.units import format_size

pytest.importorskip("matplotlib")

ALL = {name: 5.0 + 3 * i for i, name in enumerate(plotstyle.STYLES)}  # every built-in transport, distinct
CROSS = "cross CPUs (server 0, client 1)"


def big_result() -> dict:
    """Every built-in transport at 0 B .. 1 MiB, three trials: pipe/unix/tcp n/a at 0 B, shm-spin across CPUs."""
    result = make_result(ALL, sizes=(64, 4096, 65536, 1 << 20), trials=3, n=400, patterns=("pingpong",))
    for name in list(ALL):
        if name in ("pipe", "unix", "tcp"):
            add_na_cell(result, name, 0, "a byte stream cannot carry an empty message")
        else:
            cell = copy.deepcopy(next(c for c in result["cells"] if c["transport"] == name and c["size_bytes"] == 64))
            cell["size_bytes"] = 0
            result["cells"].append(cell)
    for cell in result["cells"]:
        if cell["transport"] == "shm-spin":
            cell["placement"] = CROSS
    return result


def draw(result: dict, kind: str):
    return plot.figure(result, kind)


_BIG: dict[str, object] = {}


def big(kind: str):
    """The figure of big_result() (drawn once per module: tests only read it)."""
    if kind not in _BIG:
        _BIG[kind] = draw(big_result(), kind)
    return _BIG[kind]


def renderer(fig):
    return fig.canvas.get_renderer()


def panels(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def lines(ax) -> list[tuple[str, object]]:
    """(transport, data line) of every curve: the line of each error bar container, and plain lines (CDF)."""
    out = [(c.get_label(), c[0]) for c in ax.containers if hasattr(c, "has_yerr")]
    inside = {id(line) for _, line in out}
    return out + [(line.get_label(), line) for line in ax.get_lines() if id(line) not in inside
                  and not line.get_label().startswith("_")]


def legend(fig):
    assert len(fig.legends) == 1
    return fig.legends[0]


def legend_texts(fig) -> list[str]:
    return [t.get_text() for t in legend(fig).get_texts()]


# -- one stable style per transport ------------------------------------------------------------------------------
def test_every_registered_transport_has_its_own_colour_and_marker():
    from ipclab.transports import TRANSPORTS

    styles = {name: transport_style(name) for name in TRANSPORTS}
    assert len(set(styles.values())) == len(styles), "two transports share colour and marker"
    for a, b in (("pipe", "unix"), ("tcp", "udp"), ("shm", "shm-spin"), ("zmq-ipc", "zmq-tcp"),
                 ("mp-pipe", "mp-queue")):
        assert styles[a][0] != styles[b][0] and styles[a][1] != styles[b][1], (a, b)


def test_a_plug_in_transport_gets_a_free_style_that_never_changes():
    first = transport_style("my-plugin")
    assert first == transport_style("my-plugin")
    assert first not in plotstyle.STYLES.values()


def test_colours_come_from_the_name_not_the_order_cells_appear_in():
    result = make_result({"udp": 23.0, "shm": 5.0, "pipe": 10.0}, trials=2, patterns=("pingpong",))
    reordered = {**result, "cells": list(reversed(result["cells"]))}
    only_pipe = {**result, "cells": [c for c in result["cells"] if c["transport"] == "pipe"]}
    assert plot._colors(result) == plot._colors(reordered)
    assert plot._colors(only_pipe)["pipe"] == plot._colors(result)["pipe"] == transport_style("pipe")[0]
    for source, kinds in ((result, ("latency", "cdf", "cpu")), (reordered, ("latency", "cdf")), (only_pipe, ("cdf",))):
        for fig in (draw(source, kind) for kind in kinds):
            drawn = [(name, line) for ax in panels(fig) for name, line in lines(ax)]
            assert {name for name, _ in drawn} == {t for t in ("udp", "shm", "pipe") if t in plot._colors(source)}
            for name, line in drawn:
                assert (line.get_color(), line.get_marker()) == transport_style(name)


# -- the all-transport latency plot ------------------------------------------------------------------------------
def test_many_transports_put_p50_and_p99_in_two_panels_with_the_legend_outside():
    fig = big("latency")
    p50, p99 = panels(fig)
    assert p50.get_title() == "p50 (solid)" and p99.get_title() == "p99 (dashed)"
    assert len(lines(p50)) == len(lines(p99)) == len(ALL)
    assert {line.get_linestyle() for _, line in lines(p50)} == {"-"}
    assert {line.get_linestyle() for _, line in lines(p99)} == {"--"}
    texts = legend_texts(fig)
    assert texts[:len(ALL)] == list(plotstyle.STYLES)  # every transport, registry order
    assert "p50 (solid)" in texts and "p99 (dashed)" in texts and "range across trials" in texts
    box = legend(fig).get_window_extent(renderer(fig))
    for ax in panels(fig):
        assert not box.overlaps(ax.get_window_extent(renderer(fig)))


def test_few_transports_draw_p99_dashed_beside_p50_in_one_panel():
    fig = draw(make_result(trials=3, patterns=("pingpong",)), "latency")
    (ax,) = panels(fig)
    styles = {(name, line.get_linestyle()) for name, line in lines(ax)}
    assert {("pipe", "-"), ("pipe", "--"), ("udp", "-"), ("udp", "--")} <= styles
    assert "p99 (dashed)" in legend_texts(fig)


def test_error_bars_span_the_range_across_trials():
    result = make_result(trials=3, noise=0.2, patterns=("pingpong",))
    fig = draw(result, "latency")
    (ax,) = panels(fig)
    cell = next(c for c in result["cells"] if c["transport"] == "udp" and c["size_bytes"] == 4096)
    per_trial = [t["metrics"]["rtt_p50_us"] for t in cell["trials"]]
    bars = [c for c in ax.containers if c.has_yerr and c.get_label() == "udp"]
    segments = [seg for c in bars for seg in c[2][0].get_segments()]
    spans = [(seg[0][1], seg[1][1]) for seg in segments if seg[0][0] == 4096]
    low, high = min(per_trial), max(per_trial)
    assert any(math.isclose(min(s), min(low, cell["summary"]["rtt_p50_us"])) and math.isclose(max(s), high)
               for s in spans)


def test_throughput_has_error_bars_too():
    fig = draw(make_result(trials=3, noise=0.2, patterns=("stream",)), "throughput")
    (ax,) = panels(fig)
    assert sum(1 for c in ax.containers if c.has_yerr) == 3


# -- 0 B ------------------------------------------------------------------------------------------------------------
def test_zero_bytes_is_plotted_on_the_size_axis_and_missing_points_are_explained():
    fig = big("latency")
    ax = panels(fig)[0]
    assert ax.get_xscale() == "symlog"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "0 B" and "1 MiB" in labels
    assert ax.get_xlim()[0] < 0 < ax.get_xlim()[1]
    shm = [line for name, line in lines(ax) if name == "shm"]
    assert 0 in list(shm[0].get_xdata())
    assert 0 not in [x for name, line in lines(ax) if name == "pipe" for x in line.get_xdata()]
    title = fig._suptitle.get_text()
    assert "no 0 B point for pipe, unix, tcp: a byte stream cannot carry an empty message" in title


def test_throughput_says_why_0_bytes_has_no_point_in_a_title_that_fits():
    result = make_result(ALL, sizes=(64, 4096), trials=2, n=200, patterns=("stream",))
    for cell in [c for c in result["cells"] if c["size_bytes"] == 64]:
        if cell["transport"] in ("pipe", "unix", "tcp", "fifo"):
            add_na_cell(result, cell["transport"], 0, "a byte stream cannot carry an empty message")
            result["cells"][-1]["pattern"] = "stream"
            continue
        zero = copy.deepcopy(cell)
        zero["size_bytes"] = 0
        del zero["summary"]["mb_s"]
        result["cells"].append(zero)
    fig = draw(result, "throughput")
    title = " ".join(fig._suptitle.get_text().split())
    assert "no 0 B point for pipe, unix, tcp (+1): a byte stream cannot carry an empty message; " \
           "udp, shm, shm-spin (+10): MB/s is not defined at 0 B" in title
    box = fig._suptitle.get_window_extent(renderer(fig))
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert not box.overlaps(legend(fig).get_window_extent(renderer(fig)))
    only_zero = make_result(trials=2, patterns=("stream",))
    for cell in [c for c in only_zero["cells"] if c["size_bytes"] == 64]:
        zero = copy.deepcopy(cell)
        zero["size_bytes"] = 0
        del zero["summary"]["mb_s"]
        only_zero["cells"].append(zero)
    title = draw(only_zero, "throughput")._suptitle.get_text()
    assert "no 0 B point for any transport: MB/s is not defined at 0 B" in title


# -- placement --------------------------------------------------------------------------------------------------
def test_title_names_the_lines_that_ran_across_cpus():
    assert "same CPU (1); across CPUs: shm-spin" in big("latency")._suptitle.get_text()
    result = make_result(trials=2, sizes=(64, 4096), patterns=("pingpong",))
    for cell in result["cells"]:
        if cell["transport"] == "udp" and cell["size_bytes"] == 64:
            cell["placement"] = CROSS
    assert "across CPUs: udp at 64 B" in draw(result, "latency")._suptitle.get_text()
    uniform = draw(make_result(trials=2, patterns=("pingpong",)), "latency")._suptitle.get_text()
    assert "same CPU (1)" in uniform and "across" not in uniform


# -- readable axes, everywhere -----------------------------------------------------------------------------------
def small_hist_result() -> dict:
    return make_result(trials=2, sizes=(64, 4096), patterns=("pingpong",))


@pytest.mark.parametrize("kind", ["latency", "throughput", "cdf", "cpu", "hist"])
def test_tick_labels_never_touch_and_the_legend_is_outside(kind):
    if kind in ("latency", "cdf", "cpu"):
        fig = big(kind)
    elif kind == "hist":
        fig = draw(small_hist_result(), kind)
    else:
        fig = draw(make_result(ALL, sizes=(64, 4096, 65536, 1 << 20), trials=2, n=200, patterns=("stream",)), kind)
    r = renderer(fig)
    box = legend(fig).get_window_extent(r)
    figure_box = fig.bbox
    for ax in panels(fig):
        assert not box.overlaps(ax.get_window_extent(r)), "legend sits on the data"
        for axis in (ax.xaxis, ax.yaxis):
            labels = plotstyle.visible_tick_labels(axis)
            extents = [t.get_window_extent(r) for t in labels]
            for a, b in zip(extents, extents[1:]):
                assert not a.overlaps(b), [t.get_text() for t in labels]
        title = ax.title.get_window_extent(r)
        assert not title.overlaps(box) and figure_box.x0 <= title.x0 and title.x1 <= figure_box.x1
    assert not fig._suptitle.get_window_extent(r).overlaps(box)


def test_a_crowded_size_axis_keeps_every_other_size_with_its_own_label():
    sizes = tuple(1 << k for k in range(0, 21))  # 1 B .. 1 MiB: 21 labels cannot fit side by side
    fig = draw(make_result({"pipe": 5.0, "unix": 8.0}, sizes=sizes, trials=2, n=50, patterns=("pingpong",)),
               "latency")
    labels = plotstyle.visible_tick_labels(panels(fig)[0].xaxis)
    assert 3 <= len(labels) < len(sizes)
    assert all(t.get_text() == format_size(round(t.get_position()[0])) for t in labels)
    extents = [t.get_window_extent(renderer(fig)) for t in labels]
    assert not any(a.overlaps(b) for a, b in zip(extents, extents[1:]))


def test_cdf_panels_have_readable_decades_and_limits_from_the_data():
    fig = big("cdf")
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["0 B", "64 B", "4 KiB", "64 KiB", "1 MiB"]
    for ax in axes:
        xs = [x for line in ax.get_lines() for x in line.get_xdata()]
        lo, hi = ax.get_xlim()
        assert lo < min(xs) and max(xs) < hi
        assert min(xs) / lo < 1.2 and hi / max(xs) < 1.2, "x limits far from the data"
        labels = [t.get_text() for t in plotstyle.visible_tick_labels(ax.xaxis)]
        assert len(labels) >= 2, f"{ax.get_title()}: {labels}"
        assert all(float(text) > 0 for text in labels)


def test_cdf_marks_each_curve_at_p50():
    fig = draw(make_result(trials=2, patterns=("pingpong",)), "cdf")
    line = next(line for name, line in lines(panels(fig)[0]) if name == "pipe")
    assert line.get_markevery() == [distplot.P50_INDEX] and line.get_marker() == transport_style("pipe")[1]


# -- hist -----------------------------------------------------------------------------------------------------------
def with_histograms(result: dict) -> dict:
    """Give every pingpong trial a histogram of samples around its p50 (as the engine stores them), summarised."""
    rng = random.Random(3)
    for cell in result["cells"]:
        for trial in cell["trials"]:
            centre = trial["metrics"]["rtt_p50_us"] * 1000
            samples = [round(rng.lognormvariate(math.log(centre), 0.1)) for _ in range(500)]
            trial["histograms"] = {"rtt": Histogram.of(samples).to_json()}
        s = stats.summarize_cell(cell["trials"])
        cell.update(summary=s["summary"], spread=s["spread"], range=s["range"], pooled=s["pooled"])
    results.validate(result)
    return result


def test_hist_draws_one_panel_per_cell_with_log_bins_from_the_pooled_histograms():
    result = with_histograms(small_hist_result())
    fig = draw(result, "hist")
    axes = panels(fig)
    assert len(axes) == 6
    for ax in axes:
        (patch,) = ax.patches
        shares, edges, _ = patch.get_data()
        assert 99.0 < sum(shares) <= 100.0 + 1e-9  # x ends past the slowest p99.9: the rest is said in the title
        assert ("off the axis" in ax.get_title()) == (sum(shares) < 99.995)
        ratios = [b / a for a, b in zip(edges, edges[1:])]
        assert max(ratios) == pytest.approx(min(ratios))  # log-scaled bins
        assert ax.get_xscale() == "log"
        assert "n = 1000" in ax.get_title()
    pipe = next(ax for ax in axes if ax.get_title().startswith("pipe 64 B"))
    shares, edges, _ = pipe.patches[0].get_data()
    peak = max(range(len(shares)), key=lambda i: shares[i])
    p50 = next(c for c in result["cells"] if c["transport"] == "pipe" and c["size_bytes"] == 64)["summary"]
    assert edges[peak] / 1.3 < p50["rtt_p50_us"] < edges[peak + 1] * 1.3
    assert {line.get_linestyle() for line in pipe.get_lines()} == {"-", "--"}  # p50 and p99 marks
    assert "p50 (solid)" in legend_texts(fig)


def test_hist_of_an_older_file_spreads_the_stored_quantiles_and_says_so():
    fig = draw(small_hist_result(), "hist")
    for ax in panels(fig):
        shares, _edges, _ = ax.patches[0].get_data()
        assert 99.0 < sum(shares) <= 100.0 + 1e-9
        assert "n = " not in ax.get_title()
    assert "from the stored quantiles" in fig._suptitle.get_text()


def test_hist_with_too_many_cells_is_one_line_naming_the_cap_and_the_fix(tmp_path, capsys):
    path = str(tmp_path / "r.json")
    results.save(make_result(trials=2, sizes=(64, 4096, 65536), patterns=("pingpong",)), path)
    out = tmp_path / "h.png"
    assert main(["plot", path, "--kind", "hist", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "9 pingpong cells" in err and f"at most {distplot.MAX_HIST_CELLS}" in err and "--transport" in err
    assert not out.exists()
    assert main(["plot", path, "--kind", "hist", "-o", str(out), "--transport", "pipe,unix", "--size", "4096"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


# -- lazy matplotlib --------------------------------------------------------------------------------------------
def test_the_plot_modules_do_not_import_matplotlib(monkeypatch):
    import ipclab.report

    for name in [m for m in sys.modules if m.startswith(("matplotlib", "ipclab.report.plot", "ipclab.report.dist"))]:
        attr = name.rpartition(".")[2]
        if name.startswith("ipclab.") and hasattr(ipclab.report, attr):
            monkeypatch.setattr(ipclab.report, attr, getattr(ipclab.report, attr))  # put back afterwards
        monkeypatch.delitem(sys.modules, name)
    import ipclab.report.plot  # noqa: F401

    assert not any(m.startswith("matplotlib") for m in sys.modules)


def test_a_lossy_cell_shows_its_loss_where_its_speed_is_plotted() -> None:
    """A cell that lost messages is annotated "N% lost" beside its point, in its transport's colour, on the
    throughput and the latency plot; cells without loss are not."""
    result = make_result({"pipe": 10.0, "udp": 12.0}, patterns=("pingpong", "stream"), sizes=(64, 4096))
    for cell in result["cells"]:
        if cell["transport"] == "udp" and cell["size_bytes"] == 4096:
            cell["summary"]["loss_pct"] = 0.739
            for trial in cell["trials"]:  # the trials the median comes from
                trial["metrics"]["loss_pct"] = 0.739
    for kind in ("throughput", "latency"):
        fig = draw(result, kind)
        notes = [t for ax in fig.axes for t in ax.texts if t.get_text().endswith("% lost")]
        assert [t.get_text() for t in notes] == ["0.74% lost"], kind
        assert notes[0].get_color() == transport_style("udp")[0]
        assert notes[0].xy[0] == 4096


def test_a_cell_whose_median_trial_lost_nothing_still_shows_the_worst_trials_loss() -> None:
    """Trials losing 6.1 %, 0 % and 0 %: the median is 0, but the tables print "6.13% lost" beside the figure,
    and so must the plot (the sample sweep's udp 4 KiB stream showed its loss in the table only)."""
    result = make_result({"pipe": 10.0, "udp": 12.0}, patterns=("stream",), sizes=(64, 4096))
    for cell in result["cells"]:
        if cell["transport"] == "udp" and cell["size_bytes"] == 4096:
            cell["summary"]["loss_pct"] = 0.0
            for trial, lost in zip(cell["trials"], (6.134, 0.0, 0.0)):
                trial["metrics"]["loss_pct"] = lost
    fig = draw(result, "throughput")
    notes = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text().endswith("% lost")]
    assert notes == ["6.1% lost"]
