"""The plugin contract, checked for every registered solver, baseline and dataset (as
``benchopt test`` checks every solver of a benchmark): a new plugin file is tested here with no
other edit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dualnets import registry
from dualnets.datasets import dataset_names, is_synthetic, load_dataset
from dualnets.lifting import Lifting
from dualnets.metrics import evaluate
from dualnets.patterns import sample_patterns
from dualnets.problem import Problem
from dualnets.result import STATUSES, TRACE_COLUMNS, Result
from dualnets.runner import RunSpec, run
from dualnets.solvers.base import Solver
from dualnets.store import ROW_SCHEMA

SOLVERS = registry.available_solvers()
SOLVE_KEYS = ("objective", "dual_objective", "gap", "relative_gap", "constraint_violation",
              "certified", "status", "network_objective", "active_subnetworks", "n_patterns",
              "solve_seconds", "solver")
NETWORK_KEYS = ("network_objective", "norm_violation", "active_subnetworks", "train_accuracy",
                "test_accuracy", "status", "solver", "solve_seconds")
BUDGET = 0.5       # seconds given to max_seconds
OVERSHOOT = 1.5    # seconds a solver may run past it (one step, one check)


def tiny_problem(depth: int = 3, n: int = 14, d: int = 3, P: int = 5, seed: int = 0,
                 loss: str = "squared") -> Problem:
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    y = np.sign(rng.standard_normal(n)) + 0.0
    problem = Problem(X, y, 0.5, 2, depth=depth, loss=loss, X_test=X[:4], y_test=y[:4],
                      name="tiny")
    return problem.with_patterns(sample_patterns(X, 2, P, seed, depth))


def quick(name: str, **options) -> Solver:
    """The solver with small settings where its defaults would take long on a tiny problem."""
    cls = registry.solver_class(name)
    if cls.model == "network":
        options = {"K": 4, "epochs": 20, "lrs": (1e-2,)} | options
    return cls(**options)


@pytest.mark.parametrize("name", SOLVERS)
def test_declares_the_contract(name):
    cls = registry.solver_class(name)
    assert issubclass(cls, Solver) and cls.name == name
    assert cls.model in ("relu", "gated", "network")
    assert all(isinstance(getattr(cls, flag), bool) for flag in
               ("warm_starts", "seeded", "interior_point", "benchmarked", "honours_budget"))
    solver = quick(name, max_seconds=3.0)
    assert solver.max_seconds == 3.0
    if cls.seeded:
        assert quick(name, seed=3) is not None
    if cls.interior_point:
        ok, why = quick(name, max_cone_rows=1).supports(tiny_problem())
        assert not ok and "interior-point size limit" in why


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("name", SOLVERS)
def test_solve_returns_a_documented_result_or_refuses_with_a_reason(name, depth, loss):
    problem, solver = tiny_problem(depth, loss=loss), quick(name)
    ok, why = solver.supports(problem)
    assert ok or loss not in solver.losses or depth not in solver.depths or \
        not solver.supports(tiny_problem(depth))[0], "a declared loss refused"
    if not ok:
        assert isinstance(why, str) and why
        if loss not in solver.losses:
            assert f"got {loss!r}" in why, why
        with pytest.raises(ValueError, match="cannot solve this problem"):
            solver.solve(problem)
        return
    result = solver.solve(problem)
    assert isinstance(result, Result) and result.solver == name
    assert result.status in STATUSES and result.model == solver.model
    assert all(len(row) == len(TRACE_COLUMNS) for row in result.trace)
    row = evaluate(problem, result)
    if solver.model == "network":
        assert result.network is not None
        assert set(NETWORK_KEYS) <= set(row)
        return
    lift = Lifting.from_problem(problem)
    if result.status not in ("error", "infeasible"):
        assert result.Z.shape == (lift.n_groups, problem.d)
        for lam, rows in ((result.lam_inner, lift.n_groups), (result.lam_outer, lift.n_blocks)):
            assert lam is None or lam.shape == (rows, problem.n)
        expected = SOLVE_KEYS if solver.model == "relu" else \
            ("objective", "dual_objective", "gap", "relative_gap", "certified", "status")
        assert set(expected) <= set(row)


@pytest.mark.parametrize("name", SOLVERS)
def test_warm_start_is_accepted(name):
    problem, solver = tiny_problem(), quick(name)
    if not solver.supports(problem)[0]:
        pytest.skip(solver.supports(problem)[1])
    first = solver.solve(problem)
    again = solver.solve(problem, warm_start=first)
    assert isinstance(again, Result) and again.status in STATUSES


@pytest.mark.parametrize("name", SOLVERS)
def test_max_seconds_is_respected(name):
    cls = registry.solver_class(name)
    problem = tiny_problem(n=300, d=6, P=40, seed=1)
    options = {"K": 50, "epochs": None, "lrs": (1e-2, 1e-3)} if cls.model == "network" else {}
    solver = cls(max_seconds=BUDGET, **options)
    if not solver.supports(problem)[0]:
        pytest.skip(solver.supports(problem)[1])
    if not cls.honours_budget:
        pytest.skip(f"{name} declares that it cannot stop on a time budget")
    result = solver.solve(problem)
    assert result.solve_seconds <= BUDGET + OVERSHOOT, result.solve_seconds


def test_evaluated_keys_are_all_stored():
    """Every key a runner row holds (metrics.evaluate's and the runner's) is a store column."""
    for method in ("clarabel", "gated-fista", "adam"):
        options = {"epochs": 5, "K": 4} if method == "adam" else {}
        row = run(RunSpec("wine", method, n=20, patterns=4, options=options)).row
        assert set(row) <= set(ROW_SCHEMA.names), sorted(set(row) - set(ROW_SCHEMA.names))


def test_nothing_failed_to_register():
    assert registry.unavailable() == {}


@pytest.mark.parametrize("name", dataset_names())
def test_dataset_loads_with_its_documented_shapes(name):
    data = load_dataset(name)
    n, d = data.X_train.shape
    assert data.y_train.shape == (n,) and data.X_test.shape == (data.n_test, d)
    assert data.y_test.shape == (data.n_test,) and data.n_test >= 1
    assert np.all(data.X_train[:, -1] == 1.0) and np.all(data.X_test[:, -1] == 1.0), \
        "the last column is the ones column"
    assert np.all(np.isfinite(data.X_train)) and np.all(np.isfinite(data.X_test))
    labels = np.unique(np.concatenate([data.y_train, data.y_test]))
    if data.task == "binary":
        assert set(labels) <= {-1.0, 1.0} and data.n_classes == 2
    elif data.task == "multiclass":
        assert set(labels) <= set(range(data.n_classes)) and data.n_classes >= 3
    else:
        assert data.task == "regression" and data.n_classes == 0
    again = load_dataset(name, seed=0)
    assert np.array_equal(again.X_train, data.X_train), "the split is seeded"
    small = load_dataset(name, n=20, **({"d": 4} if is_synthetic(name) else {}))
    assert small.n == 20 and (small.d == 4 or not is_synthetic(name))
    assert math.isfinite(float(small.y_train.sum()))
