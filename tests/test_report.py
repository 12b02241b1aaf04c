"""`dualnets report`: figures and markdown from a stored sweep."""

from __future__ import annotations

import numpy as np
import pytest

from dualnets.cli import main
from dualnets.report import scaling_table, slope
from dualnets.store import ResultStore
from dualnets.sweep import parse_config, run_sweep

RAW = {"datasets": {"planted": {"n": [16, 32], "d": [3, 6]}, "wine": {"n": [20]}},
       "methods": ["clarabel", "adam", "gated-fista"], "seeds": [0],
       "problem": {"patterns": 4},
       "options": {"adam": {"epochs": 10, "K": 3, "lrs": [0.01]}}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep") / "results"
    run_sweep(parse_config(RAW), root, workers=2, progress=False)
    return ResultStore(root)


def test_report_writes_figures_and_summary(store, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(store.root), "-o", str(out)]) == 0
    text = (out / "report.md").read_text()
    for name in ("runtime_vs_n.png", "runtime_vs_d.png", "gap_vs_time.png",
                 "accuracy_convex_vs_sgd.png"):
        assert (out / name).stat().st_size > 5000, name
        assert f"![{name}]({name})" in text
    assert "| dataset | method | runs | statuses | certified |" in text
    assert "| planted | clarabel | 4 | optimal 4 | 4/4 |" in text
    assert "| wine | adam | 1 | max_iterations 1 | 0/1 |" in text
    assert "Fitted log-log slopes" in text


def test_scaling_uses_only_datasets_that_vary(store):
    by_n = scaling_table(store.runs(), "n")
    assert set(by_n["dataset"]) == {"planted"}          # wine has a single n
    assert len(by_n[by_n["method"] == "clarabel"]) == 2  # medians over d and seeds


def test_slope_of_a_power_law():
    x = np.array([10.0, 20.0, 40.0, 80.0])
    assert slope(x, 3 * x ** 1.5) == pytest.approx(1.5)
    assert np.isnan(slope([10.0, 10.0], [1.0, 2.0]))


def test_empty_results_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "r")]) == 2
    assert "no stored runs" in capsys.readouterr().err
