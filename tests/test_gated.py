"""The gated relaxation and its FISTA solver: a model of its own, honestly labelled."""

from __future__ import annotations

import json

import cvxpy as cp
import numpy as np
import pytest

from dualnets.cli import main
from dualnets.gated import gated_certificate
from dualnets.io import save_problem
from dualnets.lifting import Lifting
from dualnets.metrics import evaluate
from dualnets.problem import Problem
from dualnets.registry import get_solver
from dualnets.solvers.gated_fista import GatedFista
from test_al import random_problem


def cvxpy_gated_objective(problem) -> float:
    """Reference: the same group lasso (masks as fixed features, no cones) in cvxpy."""
    lift = Lifting.from_problem(problem)
    G, d = lift.n_groups, problem.d
    Z = cp.Variable((G, d))
    U = Z @ problem.X.T
    coef = np.concatenate([lift.coef, lift.coef])
    out = np.repeat(lift.block_sign[:, None] * np.concatenate([lift.outer, lift.outer]),
                    lift.m1, axis=0)
    pred = cp.sum(cp.multiply(coef * out, U), axis=0)
    obj = 0.5 * cp.sum_squares(pred - problem.y) + problem.beta * cp.sum(cp.norm(Z, 2, axis=1))
    return cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL", tol_gap_rel=1e-10,
                                              tol_gap_abs=1e-10, tol_feas=1e-10)


@pytest.mark.parametrize("depth", [2, 3])
def test_gated_fista_matches_group_lasso_reference(depth):
    problem = random_problem(depth)
    result = GatedFista().solve(problem)
    assert result.status == "optimal" and result.model == "gated"
    cert = gated_certificate(Lifting.from_problem(problem), problem.y, problem.beta, result.Z)
    assert cert.certified and 0 <= cert.relative_gap <= 1e-6
    ref = cvxpy_gated_objective(problem)
    assert abs(cert.objective - ref) <= 1e-6 * abs(ref)


@pytest.mark.parametrize("depth", [2, 3])
def test_gated_objective_is_below_the_relu_program(depth):
    problem = random_problem(depth)
    gated = GatedFista().solve(problem)
    relu = get_solver("clarabel", tol=1e-10).solve(problem)
    lift = Lifting.from_problem(problem)
    relu_row = evaluate(problem, relu)
    assert gated_certificate(lift, problem.y, problem.beta, gated.Z).objective <= relu_row["objective"]


def test_evaluate_labels_the_gated_model():
    problem = random_problem(3)
    row = evaluate(problem, GatedFista().solve(problem))
    assert row["model"] == "gated" and "not the ReLU program" in GatedFista.objective_kind
    assert "constraint_violation" not in row and "network_objective" not in row
    # train accuracy of the gated model's own predictions; none on held-out rows (no masks)
    y = np.where(problem.y >= np.median(problem.y), 1.0, -1.0)
    labelled = Problem(problem.X, y, problem.beta, problem.m1, patterns=problem.patterns)
    result = GatedFista().solve(labelled)
    yhat = Lifting.from_problem(labelled).predict(result.Z)
    row = evaluate(labelled, result)
    assert row["train_accuracy"] == np.mean(np.sign(yhat + (yhat == 0)) == y)
    assert np.isnan(row["test_accuracy"])


def test_bad_options():
    with pytest.raises(ValueError, match="check_every must be >= 1, got 0"):
        GatedFista(check_every=0)
    with pytest.raises(ValueError, match="dtype must be one of .* got 'half'"):
        GatedFista(dtype="half")


def test_warm_start_needs_fewer_iterations():
    problem = random_problem(3)
    first = GatedFista().solve(problem)
    again = GatedFista().solve(problem, warm_start=first)
    assert again.status == "optimal" and again.iterations < first.iterations


def test_cli_solve_gated_reports_the_gated_objective(tmp_path):
    problem = random_problem(3)
    save_problem(problem, tmp_path / "p.npz")
    out = tmp_path / "g.json"
    assert main(["solve", str(tmp_path / "p.npz"), "--solver", "gated-fista", "--json",
                 str(out)]) == 0
    row = json.loads(out.read_text())
    lift = Lifting.from_problem(problem)
    expected = gated_certificate(lift, problem.y, problem.beta,
                                 GatedFista().solve(problem).Z).objective
    assert row["solver"] == "gated-fista" and row["certified"] is True
    assert abs(row["objective"] - expected) <= 1e-6 * abs(expected)
