"""Choosing beta and learning rates on a validation split ([select], [vary], n_max), the
two-stage sweep, its report, and the same sweep on Dask."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dualnets.cli import main
from dualnets.datasets import load_dataset
from dualnets.datasets.base import validation_split
from dualnets.runner import RunSpec, build_problems
from dualnets.selection import beta_scores, best_variants, choose_beta
from dualnets.store import ResultStore
from dualnets.sweep import comparable, load_config, run_sweep

# 2 datasets; per dataset 2 betas x (1 convex + 2 lrs) selection runs, then 3 x 2 seeds
CONFIG = """
name = "picked"
datasets = ["wine", "spirals"]
n_max = 40
methods = ["clarabel", "adam"]
seeds = 2
[problem]
patterns = 6
[options.adam]
epochs = 15
K = 4
[vary.adam]
lrs = [[0.1], [0.001]]
[select]
beta = [0.5, 2]
validation = 0.25
seeds = 1
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_validation_split_holds_out_part_of_the_training_rows_only():
    data = load_dataset("wine", n=80, seed=3)
    val = validation_split(data, 0.25, seed=0)
    assert (val.n, val.n_test, val.d) == (60, 20, data.d)
    # the rows come from the training rows (re-standardized), never from the test fold
    assert np.allclose(val.X_train[:, -1], 1.0) and np.allclose(val.X_train[:, :-1].mean(0), 0)
    assert np.allclose(val.X_train[:, :-1].std(0)[data.X_train[:, :-1].std(0) > 0], 1.0)
    assert sorted(np.r_[val.y_train, val.y_test]) == sorted(data.y_train)
    # stratified: both classes in the validation rows, in about the training proportion
    assert abs(np.mean(val.y_test == 1) - np.mean(data.y_train == 1)) <= 1 / 20 + 1e-12


def test_validation_split_refuses_a_bad_fraction():
    data = load_dataset("wine", n=10)
    with pytest.raises(ValueError, match=r"validation must be a fraction in \(0, 1\), got 1.5"):
        validation_split(data, 1.5, 0)
    with pytest.raises(ValueError, match=r"leaves 10 validation rows"):
        validation_split(data, 0.99, 0)


def test_a_validation_spec_tests_on_validation_rows_and_keeps_old_run_ids():
    plain = RunSpec("wine", "clarabel", n=40)
    held = RunSpec("wine", "clarabel", n=40, validation=0.25)
    assert plain.run_id != held.run_id
    assert "validation" not in json.dumps(plain.base_row()["options"])
    _, (problem,) = build_problems(held)
    assert (problem.n, problem.X_test.shape[0]) == (30, 10)


def rows(scores: dict) -> pd.DataFrame:
    """Selection rows from {(beta, method, options): [validation accuracies over seeds]}."""
    out = []
    for (beta, method, options), accs in scores.items():
        out += [{"beta": beta, "method": method, "options": options, "validation": 0.2,
                 "test_accuracy": a} for a in accs]
    return pd.DataFrame(out)


def test_rule_averages_each_methods_best_variant_and_breaks_ties_to_larger_beta():
    table = rows({(0.1, "convex", "{}"): [0.8], (1.0, "convex", "{}"): [0.9],
                  (0.1, "sgd", "a"): [0.9, 1.0], (1.0, "sgd", "a"): [0.7, 0.7],
                  (0.1, "sgd", "b"): [0.6, 0.6], (1.0, "sgd", "b"): [0.85, 0.85]})
    scores = beta_scores(table)
    assert scores[0.1] == pytest.approx((0.8 + 0.95) / 2)
    assert scores[1.0] == pytest.approx((0.9 + 0.85) / 2)
    assert choose_beta(table, [0.1, 1.0]) == 1.0          # a tie: the larger beta
    assert best_variants(table, 1.0) == {"convex": "{}", "sgd": "b"}
    assert best_variants(table, 0.1) == {"convex": "{}", "sgd": "a"}


def test_rule_skips_runs_without_accuracy_and_ties_variants_to_sorted_first():
    table = rows({(0.1, "convex", "{}"): [np.nan], (1.0, "convex", "{}"): [0.7],
                  (0.1, "sgd", "lr1"): [0.9], (1.0, "sgd", "lr1"): [0.6],
                  (1.0, "sgd", "lr0"): [0.6], (0.1, "sgd", "lr0"): [np.nan]})
    assert beta_scores(table)[0.1] == pytest.approx(0.9)   # the convex method left out
    assert choose_beta(table, [0.1, 1.0]) == 0.1
    assert best_variants(table, 1.0)["sgd"] == "lr0"
    assert choose_beta(rows({(0.1, "convex", "{}"): [np.nan]}), [0.1]) is None


def test_config_expands_selection_and_variants(tmp_path):
    config = load_config(write(tmp_path, CONFIG))
    entries = list(config.entries())
    assert [(name, n) for name, n, _ in entries] == [("wine", 40), ("spirals", 40)]
    sel = config.selection_specs(*entries[0])
    assert len(sel) == 2 * 3 and {s.validation for s in sel} == {0.25}
    assert {s.beta for s in sel} == {0.5, 2} and {s.seed for s in sel} == {0}
    assert sorted(s.options["lrs"][0] for s in sel if s.method == "adam") == [0.001] * 2 + [0.1] * 2
    final = config.final_specs(*entries[0], 2)
    assert len(final) == 3 * 2 and {s.validation for s in final} == {None}


@pytest.mark.parametrize("extra, match", [
    ("[select]\nbeta = []", r"select.beta must be a non-empty list"),
    ("[select]\nbeta = [1, 1]", r"select.beta lists a value twice"),
    ("[select]\nbeta = [1]\nvalidation = 1.5", r"select.validation must be a fraction"),
    ("[select]\nbeta = [1]\nfolds = 3", r"unknown key\(s\) \['folds'\] in \[select\]"),
    ("[vary.clarabel]\ntol = 1e-6", r"vary.clarabel.tol must be a non-empty list"),
    ("[vary.adam]\nlrs = [[0.1]]", r"vary given for 'adam', which no method uses"),
    ("[vary.clarabel]\ntol = ['x']", r"option 'tol' of solver 'clarabel' must be a number"),
    ("n_max = 1", r"n_max of wine must be a non-empty list of integers >= 2"),
])
def test_bad_selection_config_is_one_line(tmp_path, capsys, extra, match):
    cfg = write(tmp_path, 'datasets = ["wine"]\nmethods = ["clarabel"]\n' + extra + "\n")
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(match, err), err


@pytest.mark.parametrize("text, match", [
    ('datasets = ["wine"]\nn = [20, 30]\n', r"each dataset takes one n"),
    ('datasets = ["diabetes"]\n', r"diabetes is a regression dataset"),
    ('datasets = ["wine"]\nn = [20]\nn_max = 30\n', r"give n or n_max, not both"),
])
def test_selection_needs_one_n_per_classification_dataset(tmp_path, capsys, text, match):
    cfg = write(tmp_path, text + 'methods = ["clarabel"]\n[select]\nbeta = [1]\n')
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.fixture(scope="module")
def picked(tmp_path_factory):
    """The CONFIG sweep, run once, and its report."""
    tmp = tmp_path_factory.mktemp("picked")
    cfg = write(tmp, CONFIG)
    runs = run_sweep(load_config(cfg), tmp / "store", progress=False)
    assert main(["report", str(tmp / "store"), "-o", str(tmp / "report")]) == 0
    return cfg, tmp, runs


def test_evaluation_runs_at_the_beta_chosen_on_validation(picked):
    _, _, runs = picked
    sel, ev = runs[runs["validation"].notna()], runs[runs["validation"].isna()]
    assert len(sel) == 2 * 2 * 3 and len(ev) == 2 * 3 * 2
    for dataset, g in sel.groupby("dataset"):
        beta = choose_beta(g, [0.5, 2])
        assert set(ev.loc[ev["dataset"] == dataset, "beta"]) == {beta}
    # selection trained on 30 of the 40 rows and tested on the other 10
    assert set(sel["n"]) == {30} and set(sel["n_test"]) == {10} and set(ev["n"]) == {40}


def test_rerun_skips_both_stages(picked, capsys):
    cfg, tmp, runs = picked
    assert main(["sweep", str(cfg), "--out", str(tmp / "store"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "to run" in out and all(" 0 to run" in line for line in out.splitlines()
                                    if "to run" in line)


def test_report_counts_wins_and_draws_the_profile(picked):
    _, tmp, runs = picked
    text = (tmp / "report" / "report.md").read_text()
    assert "## Win / tie / loss" in text and "| clarabel | adam |" in text
    assert (tmp / "report" / "accuracy_scatter.png").stat().st_size > 0
    assert (tmp / "report" / "performance_profile.png").stat().st_size > 0
    table = pd.read_csv(tmp / "report" / "per_dataset.csv")
    assert set(table["dataset"]) == {"wine", "spirals"}
    ev = runs[runs["validation"].isna()]
    for _, r in table[table["method"] == "clarabel"].iterrows():
        mine = ev[(ev["dataset"] == r["dataset"]) & (ev["method"] == "clarabel")]
        assert r["accuracy"] == pytest.approx(mine["test_accuracy"].astype(float).mean())
    comp = pd.read_csv(tmp / "report" / "comparisons.csv")
    counted = comp["vs validated"].value_counts().to_dict()
    assert sum(counted.values()) == 2
    assert f"{counted.get('win', 0)} wins, {counted.get('tie', 0)} ties, " \
        f"{counted.get('loss', 0)} losses" in text


def test_selection_sweep_on_dask_gives_the_same_table(picked, tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg, _, local = picked
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        assert main(["sweep", str(cfg), "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "dask"), "--no-progress"]) == 0
    on_dask = ResultStore(tmp_path / "dask").runs()
    assert len(on_dask) == len(local)
    pd.testing.assert_frame_equal(comparable(local), comparable(on_dask))


def test_report_keeps_the_losses_apart(picked, tmp_path):
    """A store with a squared and a logistic [select] sweep: beta chosen and methods compared
    per loss, a logistic method named METHOD (logistic)."""
    from dualnets.validated_report import validated_report

    _, _, runs = picked
    logistic = runs.copy()
    logistic["loss"] = "logistic"
    logistic["run_id"] = logistic["run_id"] + "-logistic"
    both = pd.concat([runs.assign(loss="squared"), logistic], ignore_index=True)
    validated_report(both, tmp_path / "both", "both losses")
    table = pd.read_csv(tmp_path / "both" / "per_dataset.csv")
    assert set(table["method"]) == {"clarabel", "adam", "clarabel (logistic)",
                                    "adam (logistic)"}
    comp = pd.read_csv(tmp_path / "both" / "comparisons.csv")
    assert set(zip(comp["convex"], comp["baseline"])) == {
        ("clarabel", "adam"), ("clarabel (logistic)", "adam (logistic)")}
