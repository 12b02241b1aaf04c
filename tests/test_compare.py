"""`dualnets compare`: the table, report.md and figures; skipped methods are reported."""

from __future__ import annotations

import pytest

from dualnets.cli import main
from dualnets.runner import RunSpec, run_safely
from dualnets.store import ResultStore

FIGURES = ("objective_vs_time.png", "test_accuracy.png", "gap_vs_time.png")


def check_report(out, methods):
    text = (out / "report.md").read_text()
    for name in FIGURES:
        assert (out / name).stat().st_size > 5000
        assert f"![{name}]({name})" in text
    for method in methods:
        assert f"| {method} |" in text
    return text


def test_compare_quick_writes_table_report_and_figures(tmp_path, capsys):
    out = tmp_path / "bc"
    assert main(["compare", "--dataset", "breast_cancer", "--quick", "--out", str(out),
                 "--methods", "clarabel,ecos,adam"]) == 0
    printed = capsys.readouterr().out
    for column in ("method", "NC objective", "relative gap", "certified", "train acc",
                   "test acc", "seconds"):
        assert column in printed
    check_report(out, ["clarabel", "ecos", "adam"])
    runs = ResultStore(out / "results").runs()
    assert len(runs) == 4                       # --quick: 2 baseline seeds, 1 convex seed
    assert set(runs.loc[runs["method"] == "adam", "seed"]) == {0, 1}
    assert runs.loc[runs["method"] == "clarabel", "certified"].all()
    assert runs["n"].eq(60).all()


def test_compare_multiclass_one_vs_rest(tmp_path):
    out = tmp_path / "iris"
    assert main(["compare", "--dataset", "iris", "--quick", "--out", str(out),
                 "--methods", "clarabel", "--seeds", "1"]) == 0
    row = ResultStore(out / "results").runs().iloc[0]
    assert row["parts"] == 3 and row["certified"]
    assert 0.5 < row["test_accuracy"] <= 1.0


def test_clarabel_over_the_size_limit_is_skipped_with_the_reason(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["compare", "--dataset", "wine", "--quick", "--out", str(out), "--methods",
                 "clarabel,ecos", "--seeds", "1", "--ip-limit", "100"]) == 0
    assert "skipped: clarabel seed 0: interior-point size limit" in capsys.readouterr().out
    runs = ResultStore(out / "results").runs()
    assert set(runs["status"]) == {"skipped"}
    assert "interior-point size limit" in (out / "report.md").read_text()


def test_method_this_installation_lacks_is_a_skipped_row_not_dropped(monkeypatch):
    from dualnets.solvers import cvxpy_solver
    monkeypatch.setattr(cvxpy_solver, "backend_available",
                        lambda backend: (False, f"{backend} is not installed (pip install x)"))
    outcome = run_safely(RunSpec("wine", "clarabel", n=20, patterns=4))
    assert outcome.row["status"] == "skipped"
    assert outcome.row["message"] == "CLARABEL is not installed (pip install x)"
    assert outcome.row["model"] == "relu"


def test_unknown_method_is_an_error_row_naming_the_choices():
    outcome = run_safely(RunSpec("wine", "nosuchsolver", n=20, patterns=4))
    assert outcome.row["status"] == "error"
    assert "unknown method 'nosuchsolver'" in outcome.row["message"]
    assert "clarabel" in outcome.row["message"]


def test_unknown_dataset_one_line_error_exit_2(tmp_path, capsys):
    assert main(["compare", "--dataset", "mnist", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dualnets: error: unknown dataset 'mnist'; choose one of "
                          "breast_cancer, diabetes, digits, iris, ")
    assert err.endswith(", planted, spirals, wine\n") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_compare_quick_default_methods(tmp_path):
    out = tmp_path / "bc"
    assert main(["compare", "--dataset", "breast_cancer", "--quick", "--out", str(out)]) == 0
    check_report(out, ["clarabel", "al", "sgd", "adam", "al+network", "al+network+dual-search",
                       "al+dual-search"])
