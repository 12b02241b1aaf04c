"""ipm over a working set of cone rows (:mod:`dualnets.solvers.ipm_rows`): its pieces against
the whole-program ones, and its answers against Clarabel's, certified over every row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualnets.certificate import primal_and_dual, squared_primal_and_dual
from dualnets.lifting import Lifting
from dualnets.patterns import sample_patterns
from dualnets.problem import Problem
from dualnets.registry import get_solver
from dualnets.solvers import ipm_rows, row_set
from dualnets.solvers.al_newton import NewtonInner, lifted_weights
from dualnets.solvers.ipm import NewtonSystem
from dualnets.solvers.torch_ops import TorchLifting
from dualnets.varied import varied_data

from test_ipm import assert_matches_clarabel


def problem_of(depth: int, m1: int, beta: float = 0.1, kind: str = "plain", n: int = 60,
               seed: int = 0) -> Problem:
    X, y = varied_data(np.random.default_rng(seed), n, 4, kind)
    problem = Problem(X, y, beta, m1, depth=depth, name=f"rows-{kind}")
    return problem.with_patterns(sample_patterns(X, m1, 8, seed=m1, depth=depth))


@pytest.fixture
def few_rows(monkeypatch):
    """Rounds that start from 8 samples and take 2 per violated cone: the cutting planes run."""
    monkeypatch.setattr(row_set, "INITIAL_ROWS", 8)
    monkeypatch.setattr(row_set, "ROWS_PER_CONE", 2)
    monkeypatch.setattr(row_set, "CHUNK_ROWS", 16)


@pytest.mark.parametrize("beta", [0.01, 1.0, 10.0])
@pytest.mark.parametrize("m1", [1, 2, 3])
@pytest.mark.parametrize("depth", [2, 3])
def test_the_row_set_matches_clarabel_over_depth_width_and_beta(depth, m1, beta, few_rows):
    problem = problem_of(depth, m1, beta, seed=10 * depth + m1)
    assert_matches_clarabel(problem, row_set=True)
    result = get_solver("ipm", row_set=True).solve(problem)
    rounds = result.info["row_rounds"]
    assert len(rounds) > 1 and rounds[0]["rows"] == 8          # it had to add rows
    assert result.info["rows"] <= problem.n
    # the multipliers live on the working set's samples only
    assert np.count_nonzero(np.any(result.lam_inner != 0, axis=0)) <= result.info["rows"]


@pytest.mark.parametrize("kind", ["duplicates", "constant", "scaled_down", "scaled_up",
                                  "zero_y"])
def test_the_row_set_certifies_degenerate_data(kind, few_rows):
    assert_matches_clarabel(problem_of(3, 2, kind=kind, seed=7), row_set=True)


def test_the_loss_gram_is_that_of_every_row(few_rows):
    problem = problem_of(3, 2, n=50)
    lift = Lifting.from_problem(problem)
    ops = TorchLifting(lift, problem.y)
    half = lift.n_groups // 2
    weight = lifted_weights(ops)[:half]
    gram = row_set.LossGram(lift, problem.y, "cpu")            # four chunks of 16 rows
    torch.testing.assert_close(gram.K, NewtonInner.half_gram(ops.X, weight), rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(gram.b, ((weight * ops.y) @ ops.X).flatten(), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("depth", [2, 3])
def test_the_row_system_over_every_row_is_the_whole_system(depth):
    problem = problem_of(depth, 2)
    lift = Lifting.from_problem(problem)
    ops = TorchLifting(lift, problem.y)
    whole = NewtonSystem(ops, route="fold")
    rows = ipm_rows.RowNewtonSystem(TorchLifting(lift, problem.y),
                                    row_set.LossGram(lift, problem.y, "cpu"))
    gen = torch.Generator().manual_seed(1)
    Z = torch.randn((ops.G, ops.d), generator=gen, dtype=torch.float64)
    lam_i = torch.rand((ops.G, ops.n), generator=gen, dtype=torch.float64)
    lam_o = torch.rand((ops.B, ops.n), generator=gen, dtype=torch.float64) if depth == 3 \
        else ops.zeros_outer()
    ws_a, ws_b = ops.workspace(), ops.workspace()
    torch.testing.assert_close(whole.gradient(Z, lam_i, lam_o, ws_a),
                               rows.gradient(Z, lam_i, lam_o, ws_b), rtol=1e-10, atol=1e-10)
    a, b = whole.check(Z, ws_a, problem.beta, 1.0), rows.check(Z, ws_b, problem.beta, 1.0)
    assert b.objective == pytest.approx(a.objective, rel=1e-12)
    assert b.relative_gap == pytest.approx(a.relative_gap, rel=1e-9, abs=1e-12)
    assert b.violation == a.violation


def test_the_products_certificate_is_the_vector_one():
    rng = np.random.default_rng(3)
    v, y, Z = rng.normal(size=30), rng.normal(size=30), rng.normal(size=(6, 3))
    for worst in (0.5, 3.0, 1e3):
        expected = primal_and_dual(v + y, v, y, Z, 0.7, worst)
        got = squared_primal_and_dual(float(v @ v), float(v @ y), Z, 0.7, worst)
        np.testing.assert_allclose(got, expected, rtol=1e-13)


@pytest.mark.parametrize("floor", [0.0, 0.5])
def test_the_violated_rows_are_the_worst_of_each_cone(few_rows, floor):
    problem = problem_of(3, 2, n=50)
    lift = Lifting.from_problem(problem)
    Z = np.random.default_rng(4).normal(size=(lift.n_groups, problem.d))
    worst, rows = row_set.violated_rows(lift, torch.as_tensor(Z), floor, 2)
    U = lift.activations(Z)
    values = [lift.inner_values(U), lift.outer_values(lift.block_outputs(U))]
    assert worst == pytest.approx(max(-min(0.0, float(V.min())) for V in values), rel=1e-12)
    V = np.concatenate(values)                              # (G + B, n)
    expected = set()
    for cone in range(V.shape[0]):
        worst_two = np.argsort(V[cone], kind="stable")[:2]
        expected |= {int(i) for i in worst_two if V[cone, i] < -floor}
    assert expected and set(rows.tolist()) == expected


def test_row_set_refuses_a_program_without_the_fold(monkeypatch):
    from dualnets.solvers import ipm
    monkeypatch.setattr(ipm, "MAX_UNKNOWNS", 10)
    with pytest.raises(ValueError, match="row_set=True needs the folded system"):
        get_solver("ipm", row_set=True).solve(problem_of(3, 2))


def test_a_round_out_of_iterations_ends_the_rounds_with_its_status(few_rows):
    result = get_solver("ipm", row_set=True, max_iters=3).solve(problem_of(3, 2))
    assert result.status == "max_iterations" and result.iterations == 3
    assert len(result.info["row_rounds"]) == 1 and len(result.trace) == 1
