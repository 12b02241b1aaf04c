"""CLI contracts of `dualnets solve` and `dualnets make-problem`, and their bad-input errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dualnets.cli import main

SOLVE_KEYS = {"objective", "dual_objective", "gap", "relative_gap", "constraint_violation",
              "certified", "status", "network_objective", "active_subnetworks", "n_patterns",
              "solve_seconds", "solver"}


@pytest.fixture(scope="module")
def problem_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "bc.npz"
    assert main(["make-problem", "--dataset", "breast_cancer", "--n", "60", "--patterns",
                 "random:8", "--m1", "2", "--beta", "1", "--seed", "0", "-o", str(path)]) == 0
    return path


def test_make_problem_writes_design_format(problem_file):
    with np.load(problem_file) as f:
        assert f["X"].shape == (60, 31) and f["y"].shape == (60,)
        assert set(np.unique(f["y"])) == {-1.0, 1.0}
        assert f["inner"].shape == (8, 2, 60) and f["inner"].dtype == bool
        assert f["inner_sign"].dtype == np.int8 and f["outer"].shape == (8, 60)
        assert float(f["beta"]) == 1.0 and int(f["m1"]) == 2
        assert np.allclose(f["X"][:, :-1].mean(axis=0), 0, atol=0.5)   # standardized on train


def test_make_problem_planted_and_bare_count(tmp_path):
    out = tmp_path / "p.npz"
    assert main(["make-problem", "--dataset", "planted", "--n", "30", "--d", "4",
                 "--patterns", "5", "-o", str(out)]) == 0
    with np.load(out) as f:
        assert f["X"].shape == (30, 4) and f["inner"].shape[0] == 5


def test_solve_json_contract(problem_file, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["solve", str(problem_file), "--solver", "clarabel", "--json", str(out)]) == 0
    row = json.loads(out.read_text())
    assert SOLVE_KEYS <= set(row)
    assert row["certified"] is True and row["solver"] == "clarabel"
    assert row["n_patterns"] == 8 and 0 <= row["relative_gap"] <= 1e-6
    assert row["network_objective"] == pytest.approx(row["objective"], rel=1e-6)
    assert "clarabel" in capsys.readouterr().out


def test_solve_patterns_spec_replaces_stored(problem_file, tmp_path):
    out = tmp_path / "r.json"
    assert main(["solve", str(problem_file), "--patterns", "random:3", "--seed", "4",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["n_patterns"] == 3


@pytest.mark.parametrize("argv, match", [
    (["solve", "MISSING.npz"], "problem file not found"),
    (["solve", "{problem}", "--solver", "nope"], "unknown solver 'nope'"),
    (["solve", "{nokeys}"], "lacks required keys"),
    (["solve", "{problem}", "--patterns", "bogus:3"], "unknown pattern strategy 'bogus'"),
    (["make-problem", "--dataset", "nope", "-o", "{tmp}/x.npz"], "unknown dataset 'nope'"),
    (["make-problem", "--dataset", "breast_cancer", "--beta", "-1", "-o", "{tmp}/x.npz"],
     "beta must be > 0"),
    (["solve"], "the following arguments are required"),
    (["solve", "{problem}", "--solver-option", "foo"], "--solver-option needs KEY=VALUE"),
    (["solve", "{problem}", "--solver-option", "bar=2"], "unrecognized solver setting 'bar'"),
])
def test_bad_input_one_line_exit_2(argv, match, problem_file, tmp_path, capsys):
    np.savez(tmp_path / "nokeys.npz", X=np.ones((3, 2)))
    fill = dict(problem=problem_file, nokeys=tmp_path / "nokeys.npz", tmp=tmp_path)
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dualnets: error:")
    assert match in err


def test_console_script_exit_code_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dualnets.cli", "solve", str(tmp_path / "x.npz")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
