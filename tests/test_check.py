"""The teacher's check: a result that follows the experiment passes; each way of not following it is named."""

from __future__ import annotations

import json

import pytest
from synthetic import add_na_cell, make_result

from ipclab import catalog
from ipclab.check import check
from ipclab.cli import main

EXPERIMENT = ('description = "assignment"\nquestion = "Which is faster?"\nmetrics = ["rtt_p50_us", "cpu_us_msg"]\n'
              'transports = ["pipe", "unix"]\npatterns = ["pingpong"]\nsizes = [64, "4K"]\ncount = 2000\n'
              'trials = 5\npin = "same"\n')


@pytest.fixture
def experiment(tmp_path):
    path = tmp_path / "assignment.toml"
    path.write_text(EXPERIMENT)
    return catalog.open_experiment(str(path))


def handed_in(**kwargs):
    result = make_result({"pipe": 10.0, "unix": 18.0}, patterns=("pingpong",), **kwargs)
    result["config"]["pin"] = "same"
    return result


def test_a_result_that_follows_the_experiment_passes(experiment):
    assert check(handed_in(), experiment) == []
    more = handed_in(trials=7)  # more trials than asked is fine
    assert check(more, experiment) == []


def _one(problems, *words):
    hits = [p for p in problems if all(w in p for w in words)]
    assert hits, f"no problem with {words} in {problems}"
    return hits[0]


def test_a_removed_trial_fails(experiment):
    result = handed_in()
    del result["cells"][1]["trials"][2]
    problems = check(result, experiment)
    line = _one(problems, "pingpong pipe 4 KiB", "4 trial(s)", "at least 5")
    assert "\n" not in line
    _one(problems, "pingpong pipe 4 KiB", "run recorded trials = 5", "removed")


def test_a_removed_trial_with_the_config_edited_to_match_still_fails(experiment):
    result = handed_in(trials=6)
    for cell in result["cells"]:
        del cell["trials"][-1]
    result["config"]["trials"] = 5  # 5 trials each, config says 5: only the medians give it away
    problems = check(result, experiment)
    _one(problems, "is not what its 5 trial(s) give", "edited")


@pytest.mark.parametrize("edit,words", [
    (lambda r: r["config"].update(trials=3), ("trials: 3 per cell", "at least 5")),
    (lambda r: r["config"].update(count=500), ("count: 500", "at least 2000")),
    (lambda r: r["config"].update(pin="cross"), ("placement", "'cross'", "'same'")),
    (lambda r: r["cells"][0].update(cpus={"server": [0], "client": [1]}, placement="cross CPUs"),
     ("pingpong pipe 64 B", "ran at 'cross CPUs'")),
    (lambda r: r["config"].update(transports=["pipe"]), ("transports: missing unix",)),
    (lambda r: r["config"].update(sizes=[64, 4096, 65536]), ("sizes: not asked for 64 KiB",)),
    (lambda r: r["cells"].pop(), ("pingpong unix 4 KiB: not measured",)),
    (lambda r: r["cells"][0].update(status="failed", reason="worker crashed"), ("pingpong pipe 64 B: failed: worker",)),
    (lambda r: r["cells"][0].update(status="n/a", reason="", trials=[], summary={}),
     ("pingpong pipe 64 B: n/a without a reason",)),
    (lambda r: r["cells"][0]["summary"].update(rtt_p50_us=1.0), ("rtt_p50_us = 1 is not what", "edited")),
    (lambda r: [c["summary"].pop("cpu_us_msg") or [t["metrics"].pop("cpu_us_msg") for t in c["trials"]]
                for c in r["cells"]], ("cpu_us_msg: no measured cell recorded it",)),
    (lambda r: r["cells"][0]["summary"].pop("cpu_us_msg"), ("pingpong pipe 64 B: no cpu_us_msg",)),
    (lambda r: r.update(interrupted=True), ("interrupted",)),
    (lambda r: r["metadata"].update(load_average=[6.5, 3.0, 2.0]), ("busy", "load average 6.5 on 4 usable CPU")),
    (lambda r: r["metadata"].update(busy="CPU steal 30 %"), ("flagged busy (CPU steal 30 %)",)),
    # The advice engine's verdict, from the load the sweep recorded at its start and end (what run/report warn).
    (lambda r: r["metadata"].update(cpu_count=2, load_start={"load_average": [7.0, 5.0, 4.0]},
                                    load_end={"load_average": [1.0, 1.0, 1.0]}),
     ("the machine was busy: load average 7", "close other programs")),
    (lambda r: r["cells"].append({**r["cells"][0], "transport": "tcp"}), ("pingpong tcp 64 B: a cell the experiment",)),
    (lambda r: r["cells"][0]["trials"].reverse(), ("trials numbered [5, 4, 3, 2, 1]",)),
    (lambda r: r.update(cells="none"), ("not a usable ipclab result",)),
])
def test_each_way_of_not_following_is_one_line(experiment, edit, words):
    result = handed_in()
    edit(result)
    problems = check(result, experiment)
    _one(problems, *words)
    assert all("\n" not in p for p in problems)


def test_an_na_cell_with_a_reason_is_fine(experiment):
    result = handed_in()
    result["cells"] = [c for c in result["cells"] if not (c["transport"] == "unix" and c["size_bytes"] == 4096)]
    add_na_cell(result, "unix", 4096, "above unix's limit of 2 KiB (net.core.wmem_default)")
    assert check(result, experiment) == []


def test_an_experiment_without_transports_accepts_any_set_but_every_cell_of_it(tmp_path):
    path = tmp_path / "any.toml"
    path.write_text('patterns = ["pingpong"]\nsizes = [64, "4K"]\ntrials = 3\n')
    exp = catalog.open_experiment(str(path))
    result = handed_in()
    assert check(result, exp) == []
    result["cells"].pop(0)
    _one(check(result, exp), "pingpong pipe 64 B: not measured")


def test_the_command_line_exit_codes(tmp_path, experiment, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(handed_in()))
    result = handed_in()
    del result["cells"][0]["trials"][0]
    bad.write_text(json.dumps(result))
    assert main(["check", str(good), "--experiment", experiment.path]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{good} follows experiment") and "4 cells (4 measured, 0 n/a" in out
    assert main(["check", str(bad), "-e", experiment.path]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 3 and all(line.startswith(f"{bad}") for line in lines)
    assert lines[-1].endswith(f"does not follow experiment {experiment.path!r}: {len(lines) - 1} problem(s)")
    (tmp_path / "broken.json").write_text('{"format": "ipclab-result", "format_version": 1, "cells": [')
    assert main(["check", str(tmp_path / "broken.json"), "-e", experiment.path]) == 1
    assert "not valid JSON" in capsys.readouterr().out
    # bad input: exit 2, one line naming the value
    assert main(["check", str(tmp_path / "missing.json"), "-e", experiment.path]) == 2
    assert main(["check", str(good), "-e", "no-such-experiment"]) == 2
    assert main(["check", str(good)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(e.startswith("ipclab: error: ") for e in err)
    assert "missing.json" in err[0] and "no-such-experiment" in err[1] and "--experiment" in err[2]


def test_a_shipped_experiment_checks_by_name(capsys, tmp_path):
    result = make_result({"pipe": 5.0, "unix": 9.0, "tcp": 14.0, "shm": 8.0}, patterns=("pingpong",))
    result["config"]["pin"] = "same"
    path = tmp_path / "same.json"
    path.write_text(json.dumps(result))
    assert main(["check", str(path), "-e", "same-core"]) == 0, capsys.readouterr().out
    assert main(["check", str(path), "-e", "cross-core"]) == 1
    out = capsys.readouterr().out
    assert "the experiment asks for 'cross'" in out


@pytest.mark.parametrize("text,words", [
    ('transports = ["pipe"]\nmetrics = ["rtt_p5O_us"]\n', "unknown metric 'rtt_p5O_us'"),
    ('transports = ["pipez"]\n', "unknown transport 'pipez'"),
    ('sizez = [64]\n', "unknown key 'sizez'"),
])
def test_a_broken_experiment_is_bad_input(tmp_path, capsys, text, words):
    (tmp_path / "r.json").write_text(json.dumps(handed_in()))
    (tmp_path / "e.toml").write_text(text)
    assert main(["check", str(tmp_path / "r.json"), "-e", str(tmp_path / "e.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipclab: error: ") and words in err and err.count("\n") == 1


def test_rates_are_cells_of_their_own(tmp_path):
    """With ``rates``, each (pattern, transport, size) is one cell per rate (max = the closed loop): a result
    that has them all passes, a missing rate is named with its rate, and the run's rates are compared."""
    import copy

    path = tmp_path / "load.toml"
    path.write_text(EXPERIMENT + "rates = [1000, \"max\"]\n")
    experiment = catalog.open_experiment(str(path))
    result = handed_in()
    result["config"]["rates"] = [1000.0, None]
    paced = []
    for cell in result["cells"]:
        extra = copy.deepcopy(cell)
        extra["rate"] = 1000.0
        paced.append(extra)
    result["cells"] += paced
    assert check(result, experiment) == []
    del result["cells"][-1]  # pipe/unix 4 KiB at 1k/s
    _one(check(result, experiment), "4 KiB at 1k/s", "not measured")
    result["config"]["rates"] = [None]
    _one(check(result, experiment), "rates")
