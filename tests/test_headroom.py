"""`dualnets headroom`: the certified optima over a network's patterns and after search."""

from __future__ import annotations

import json

from dualnets.cli import main
from dualnets.datasets import load_dataset
from dualnets.io import save_problem
from dualnets.problem import Problem


def test_headroom_never_above_the_network(tmp_path, capsys):
    data = load_dataset("wine", n=24)
    save_problem(Problem(data.X_train, data.y_train, 1.0, 2), tmp_path / "p.npz")
    assert main(["train", str(tmp_path / "p.npz"), "--K", "6", "--epochs", "100", "--lrs",
                 "0.01", "--save-network", str(tmp_path / "net.npz")]) == 0
    assert main(["headroom", str(tmp_path / "p.npz"), "--network", str(tmp_path / "net.npz"),
                 "--budget", "5", "--json", str(tmp_path / "h.json")]) == 0
    row = json.loads((tmp_path / "h.json").read_text())
    assert row["seeded_certified"] and row["searched_certified"]
    assert row["seeded_objective"] <= row["network_objective"] * (1 + 1e-6)
    assert row["searched_objective"] <= row["seeded_objective"] * (1 + 1e-6)
    assert row["improvement"] >= -1e-6 and "can reach NC" in capsys.readouterr().out


def test_headroom_bad_budget_is_one_line(tmp_path, capsys):
    assert main(["headroom", str(tmp_path / "p.npz"), "--network", "n.npz", "--budget",
                 "0"]) == 2
    assert "--budget must be > 0 seconds, got 0.0" in capsys.readouterr().err
