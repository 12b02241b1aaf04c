"""CLI edges: outputs checked before any work, atomic writes, crashes in one line (--debug
for the traceback), and the `solve --json` contract of every registered convex solver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualnets import registry
from dualnets.cli import main
from dualnets.commands.solve import JSON_KEYS
from dualnets.outputs import atomic_open
from dualnets.result import Result

CLARABEL, ADAM = registry.solver_class("clarabel"), registry.solver_class("adam")
CONVEX = [name for name in registry.available_solvers()
          if registry.solver_class(name).model != "network"]
NUMBERS = ("objective", "dual_objective", "gap", "relative_gap", "constraint_violation",
           "network_objective", "solve_seconds")
NETWORK_KEYS = ("constraint_violation", "network_objective", "active_subnetworks")


@pytest.fixture(scope="module")
def problem(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("p") / "p.npz"
    assert main(["make-problem", "--dataset", "planted", "--n", "20", "--d", "3",
                 "--patterns", "random:4", "--seed", "1", "-o", str(path)]) == 0
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def no_tmp_left(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _must_not_run(self, problem, warm_start=None):
    raise AssertionError("work started although an output path was bad")


# -- outputs checked before the work ----------------------------------------------------------
def test_solve_json_to_a_folder_fails_before_solving(problem, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(CLARABEL, "solve", _must_not_run)
    assert main(["solve", str(problem), "--json", str(tmp_path)]) == 2
    assert f"--json {tmp_path}: is a folder; expected a file name" in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_solve_json_below_a_file_fails_before_solving(problem, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(CLARABEL, "solve", _must_not_run)
    (tmp_path / "plain").write_text("x")
    assert main(["solve", str(problem), "--json", str(tmp_path / "plain" / "r.json")]) == 2
    assert "plain is not a folder, so nothing can be written below it" in one_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["plain"]


@pytest.mark.parametrize("flag", ["--json", "--save-network"])
def test_train_outputs_checked_before_training(problem, tmp_path, capsys, monkeypatch, flag):
    monkeypatch.setattr(ADAM, "solve", _must_not_run)
    (tmp_path / "plain").write_text("x")
    assert main(["train", str(problem), "--epochs", "2", flag,
                 str(tmp_path / "plain" / "out")]) == 2
    assert f"{flag} {tmp_path / 'plain' / 'out'}" in one_line(capsys)


def test_make_problem_output_is_a_folder(tmp_path, capsys):
    assert main(["make-problem", "--dataset", "planted", "--n", "20", "-o", str(tmp_path)]) == 2
    assert "is a folder; expected a file name" in one_line(capsys)


@pytest.mark.parametrize("argv", [
    ["sweep", "{cfg}", "--out", "{plain}"],
    ["compare", "--dataset", "wine", "--quick", "--methods", "clarabel", "--out", "{plain}"],
    ["report", "{tmp}", "-o", "{plain}"],
])
def test_output_folders_checked_before_the_work(tmp_path, capsys, argv):
    (tmp_path / "plain").write_text("x")
    (tmp_path / "c.toml").write_text('datasets = ["wine"]\nmethods = ["clarabel"]\nn = [20]\n')
    fill = dict(cfg=tmp_path / "c.toml", plain=tmp_path / "plain", tmp=tmp_path)
    assert main([a.format(**fill) for a in argv]) == 2
    assert f"{tmp_path / 'plain'}: is a file; expected a folder" in one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "plain"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_open_leaves_the_old_file_and_no_tmp(tmp_path, error):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(error):
        with atomic_open(target) as fh:
            fh.write("half")
            raise error()
    assert target.read_text() == "old"
    no_tmp_left(tmp_path)
    with atomic_open(target) as fh:
        fh.write("new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) != 0o600
    no_tmp_left(tmp_path)


# -- unexpected errors ------------------------------------------------------------------------
def _crash(self, problem, warm_start=None):
    raise RuntimeError("boom in the solver")


def test_crash_is_one_line_with_the_step_and_exit_1(problem, capsys, monkeypatch):
    monkeypatch.setattr(CLARABEL, "solve", _crash)
    assert main(["solve", str(problem)]) == 1
    err = one_line(capsys)
    assert err.startswith("dualnets: error: solve failed unexpectedly: RuntimeError: boom in "
                          "the solver")
    assert "rerun with `dualnets --debug solve ...` for the traceback" in err


def test_debug_reraises_the_crash(problem, monkeypatch):
    monkeypatch.setattr(CLARABEL, "solve", _crash)
    with pytest.raises(RuntimeError, match="boom in the solver"):
        main(["--debug", "solve", str(problem)])


# -- the solve --json contract, for every registered convex solver ---------------------------
def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def strict_json(path: Path) -> dict:
    def refuse(constant):
        raise AssertionError(f"non-strict JSON constant {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def supported_or_skip(name: str, problem_path: Path) -> None:
    from dualnets.io import load_problem
    ok, why = registry.get_solver(name).supports(load_problem(problem_path))
    if not ok:
        pytest.skip(f"{name} cannot run here: {why}")


@pytest.mark.parametrize("name", CONVEX)
def test_solve_json_keys_and_types(name, problem, tmp_path):
    supported_or_skip(name, problem)
    out = tmp_path / "r.json"
    assert main(["solve", str(problem), "--solver", name, "--json", str(out)]) == 0
    row = strict_json(out)
    assert set(JSON_KEYS) <= set(row)
    # the gated relaxation has no cones and no network: those keys are null for it
    relu = registry.solver_class(name).model == "relu"
    for key in NUMBERS + ("active_subnetworks",):
        nullable = not relu and key in NETWORK_KEYS
        assert is_number(row[key]) or (nullable and row[key] is None), key
    assert isinstance(row["certified"], bool) and isinstance(row["status"], str)
    assert isinstance(row["active_subnetworks"], (int, type(None))) and row["n_patterns"] == 4
    assert row["solver"] == name


@pytest.mark.parametrize("name", CONVEX)
def test_solve_json_when_the_solver_returns_nothing(name, problem, tmp_path, monkeypatch):
    supported_or_skip(name, problem)
    cls = registry.solver_class(name)
    monkeypatch.setattr(cls, "solve", lambda self, p, warm_start=None: Result(
        name, "error", message="no solution", model=cls.model))
    out = tmp_path / "r.json"
    assert main(["solve", str(problem), "--solver", name, "--json", str(out)]) == 1
    row = strict_json(out)
    assert set(JSON_KEYS) <= set(row)
    assert all(row[key] is None for key in NUMBERS if key != "solve_seconds")
    assert row["active_subnetworks"] is None and row["certified"] is False
    assert row["status"] == "error" and row["solver"] == name and row["n_patterns"] == 4
    no_tmp_left(tmp_path)


@pytest.mark.parametrize("argv, match", [
    (["--beta", "nan"], "--beta must be finite, got nan"),
    (["--beta", "1e300"], r"--beta must be at most 1e+150 in magnitude"),
    (["--budget", "nan"], "--budget must be finite, got nan"),
    (["--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
])
def test_compare_numbers_checked_before_any_run(tmp_path, capsys, argv, match):
    assert main(["compare", "--dataset", "wine", "--quick", "--out", str(tmp_path / "o"),
                 *argv]) == 2
    assert match in one_line(capsys)
    assert not (tmp_path / "o").exists()
