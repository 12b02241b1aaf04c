"""Failed runs are set apart from results: compare's table and both reports list them, with
their message, in a "Failed runs" table, and no figure or best-of uses them."""

from __future__ import annotations

import pytest

from dualnets import registry
from dualnets.cli import main
from dualnets.report import best_certified, compare_report, compare_rows, sweep_report
from dualnets.runner import RunSpec, run_safely
from dualnets.store import ResultStore


def _crash(self, problem, warm_start=None):
    raise RuntimeError("boom in the solver")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ResultStore:
    """Two clarabel runs with a result and one that crashed."""
    store = ResultStore(tmp_path_factory.mktemp("failed") / "results")
    for seed in (0, 1):
        store.write(run_safely(RunSpec("planted", "clarabel", seed, n=20, d=3, patterns=3)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry.solver_class("clarabel"), "solve", _crash)
        store.write(run_safely(RunSpec("planted", "clarabel", 2, n=20, d=3, patterns=3)))
    return store


def test_a_crash_is_an_error_row_that_says_crashed(store):
    runs = store.runs().set_index("seed")
    assert runs.loc[2, "status"] == "error"
    assert runs.loc[2, "message"].startswith("crashed: RuntimeError: boom in the solver (at ")
    assert runs.loc[0, "status"] == "optimal"


def test_compare_report_sets_failed_runs_apart(store, tmp_path):
    runs = store.runs()
    assert [r["seed"] for r in compare_rows(runs)] == [0, 1]
    assert best_certified(runs[runs["status"] != "error"])["seed"] in (0, 1)
    text = compare_report(runs, store.traces(), tmp_path, "t", {}).read_text()
    results, failed = text.split("## Failed runs")
    assert "| clarabel | 2 |" not in results and "boom" not in results
    assert "| method | seed | status | message |" in failed
    assert "| clarabel | 2 | error | crashed: RuntimeError: boom in the solver" in failed


def test_sweep_report_lists_failed_runs_in_their_own_table(store, tmp_path):
    text = sweep_report(store.runs(), store.traces(), tmp_path).read_text()
    summary, failed = text.split("## Failed runs")
    assert "| planted | clarabel | 3 | optimal 2, error 1 | 2/3 |" in summary
    assert "| status | method | runs | message |" in failed
    assert "| error | clarabel | 1 | crashed: RuntimeError: boom in the solver" in failed


def test_compare_prints_failed_runs_apart(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry.solver_class("ecos"), "solve", _crash)
    assert main(["compare", "--dataset", "wine", "--quick", "--methods", "clarabel,ecos",
                 "--out", str(tmp_path / "w")]) == 0
    printed = capsys.readouterr().out
    assert "error: ecos seed 0: crashed: RuntimeError: boom in the solver" in printed
    results, failed = printed.split("dualnets compare: wine")[1].split("Failed runs (no result)")
    assert "ecos" not in results and "clarabel" in results
    assert "ecos" in failed and "crashed: RuntimeError" in failed
    text = (tmp_path / "w" / "report.md").read_text()
    assert "| ecos | 0 | error | crashed: RuntimeError: boom in the solver" in text
