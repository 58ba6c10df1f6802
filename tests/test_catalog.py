"""Shipped experiments by name: find (a path wins), list, show, the template, and their command lines."""

from __future__ import annotations

import glob
import os
import re

import pytest
from conftest import ROOT

from ipclab import catalog
from ipclab.cli import build_parser, main
from ipclab.cli.run import build_config
from ipclab.errors import ConfigError
from ipclab.experiment import load, schema

PACKAGED = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(ROOT, "ipclab", "experiments", "*.toml")))


def test_shipped_names_are_the_package_files_and_the_clone_sees_the_same():
    assert catalog.shipped_names() == PACKAGED and len(PACKAGED) >= 8
    # experiments/ in a clone is the package directory, so README's experiments/NAME.toml paths still work
    assert os.path.realpath(os.path.join(ROOT, "experiments")) == os.path.realpath(catalog.SHIPPED_DIR)


def test_find_a_name_with_or_without_suffix_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    label, path, shipped = catalog.find("same-core")
    assert (label, shipped) == ("same-core", True) and path == os.path.join(catalog.SHIPPED_DIR, "same-core.toml")
    assert catalog.find("same-core.toml")[1] == path


def test_a_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "same-core").write_text('transports = ["pipe"]\n')
    assert catalog.find("same-core") == ("same-core", "same-core", False)
    (tmp_path / "same-core.toml").write_text('transports = ["pipe"]\n')
    assert catalog.find("same-core.toml") == ("same-core.toml", "same-core.toml", False)


@pytest.mark.parametrize("value,words", [
    ("latncy-vs-size", ["'latncy-vs-size'", "did you mean 'latency-vs-size'", "shipped: classic-patterns"]),
    ("nothing-like-it", ["no shipped experiment named 'nothing-like-it'", "udp-loss", "ipclab experiments"]),
    ("experiments/same-core.toml", ["cannot read 'experiments/same-core.toml'", "use --experiment same-core"]),
    ("sub/mine.toml", ["cannot read 'sub/mine.toml': No such file", "ipclab experiments"]),
])
def test_unknown_names_list_the_shipped_ones_and_suggest(tmp_path, monkeypatch, capsys, value, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        catalog.find(value)
    for word in words:
        assert word in str(info.value)
    # the same through the command line: one line, exit 2, no traceback
    assert main(["run", "-e", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipclab: error: --experiment: ") and err.count("\n") == 1 and words[0] in err


def test_list_prints_every_shipped_experiment_with_its_description(capsys):
    assert main(["experiments"]) == 0
    out = capsys.readouterr().out
    for exp in catalog.list_shipped():
        assert re.search(rf"^{re.escape(exp.label)} +{re.escape(exp.keys['description'])}$", out, re.MULTILINE)
    assert main(["experiments", "list"]) == 0 and capsys.readouterr().out == out


def test_show_prints_the_file_and_the_copy_runs_as_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["experiments", "show", "udp-loss"]) == 0
    text = capsys.readouterr().out
    with open(os.path.join(catalog.SHIPPED_DIR, "udp-loss.toml"), encoding="utf-8") as f:
        assert text == f.read()
    (tmp_path / "mine.toml").write_text(text.replace("trials = 5", "trials = 7"))
    config = build_config(build_parser().parse_args(["run", "-e", "mine.toml"]))
    assert config.trials == 7 and config.transports == ("udp", "tcp") and config.experiment == "mine.toml"
    assert main(["experiments", "show", "udp-los"]) == 2


def test_every_shipped_experiment_has_a_question_and_metrics_and_enough_trials_for_compare():
    from ipclab import stats

    # the fewest trials per side for which a Mann-Whitney difference can reach p < 0.05 (compare's rule)
    need = min(k for k in range(2, 50) if stats.min_p_value(k, k) < 0.05)
    for exp in catalog.list_shipped():
        assert "?" in exp.keys["question"], exp.label
        assert catalog.check_metrics(exp.keys["metrics"], "metrics"), exp.label
        assert exp.keys["trials"] >= need, f"{exp.label}: trials {exp.keys['trials']} < {need}, compare says nothing"


def test_a_shipped_name_runs_from_an_empty_folder_and_records_its_question(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = build_config(build_parser().parse_args(["run", "-e", "same-core"]))
    assert config.experiment == "same-core" and config.pin == "same" and config.trials == 5
    assert config.extra["question"].startswith("Does it matter") and "rtt_p50_us" in config.extra["metrics"]
    assert config.output == "results/same-core.json" and (tmp_path / "results").is_dir()  # made, like the default


def test_unknown_metric_names_the_file_line_and_the_closest(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('transports = ["pipe"]\nmetrics = ["rtt_p50_us", "rtt_p5O_us"]\n')
    with pytest.raises(ConfigError, match=r"exp.toml:2: metrics: unknown metric 'rtt_p5O_us' \(did you mean "
                                          r"'rtt_p50_us'\?\)"):
        build_config(build_parser().parse_args(["run", "-e", str(path)]))


def test_new_template_names_every_key_validates_as_it_is_and_is_never_overwritten(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["experiments", "new", "assignment.toml"]) == 0
    text = (tmp_path / "assignment.toml").read_text()
    for key in schema():  # every key, set or commented out, with a comment above it
        assert re.search(rf"^(# )?{key} = ", text, re.MULTILINE), key
    keys = load("assignment.toml")
    assert keys["output"] == "results/assignment.json"
    config = build_config(build_parser().parse_args(["run", "-e", "assignment.toml"]))
    assert config.trials == keys["trials"] >= 4 and config.extra["question"] == keys["question"]

    (tmp_path / "assignment.toml").write_text("mine\n")
    capsys.readouterr()
    assert main(["experiments", "new", "assignment.toml"]) == 2
    err = capsys.readouterr().err
    assert "'assignment.toml' already exists" in err and "--force" in err and err.count("\n") == 1
    assert (tmp_path / "assignment.toml").read_text() == "mine\n"
    assert main(["experiments", "new", "assignment.toml", "--force"]) == 0
    assert (tmp_path / "assignment.toml").read_text() == text
    assert main(["experiments", "new", str(tmp_path / "no" / "x.toml")]) == 2
    assert main(["experiments", "new", str(tmp_path)]) == 2


def test_the_readme_lists_every_shipped_experiment_with_its_question_and_advice_that_agrees():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for exp in catalog.list_shipped():
        row = f"| `{exp.label}` | {exp.keys['question']} |"
        assert row in readme, f"README's experiments table has no row {row!r}"
    assert "`--trials 3` or more" not in readme  # the old advice: 3 trials give compare nothing to say
    assert "needs at least 4 trials per side" in readme
