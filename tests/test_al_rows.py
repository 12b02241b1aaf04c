"""The AL over a working set of cone rows (:mod:`dualnets.solvers.al_rows`): its operators
against the whole-program ones, and its answers against Clarabel's, certified over every row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualnets.lifting import Lifting
from dualnets.registry import get_solver
from dualnets.solvers import row_set
from dualnets.solvers.al_rows import GramLossLifting
from dualnets.solvers.torch_ops import TorchLifting
from dualnets.solvers.torch_run import device_certificate

from test_ipm import assert_result_matches_clarabel
from test_ipm_rows import problem_of


@pytest.fixture
def few_rows(monkeypatch):
    """Rounds that start from 8 samples and take 2 per violated cone: the cutting planes run."""
    monkeypatch.setattr(row_set, "INITIAL_ROWS", 8)
    monkeypatch.setattr(row_set, "ROWS_PER_CONE", 2)
    monkeypatch.setattr(row_set, "CHUNK_ROWS", 16)


def row_solver(**options):
    return get_solver("al", row_set=True, max_seconds=60, **options)


@pytest.mark.parametrize("depth", [2, 3])
def test_the_gram_loss_operators_over_every_row_are_the_whole_ones(depth, few_rows):
    """Value, gradient and certificate of the AL function, with every sample in ``R``."""
    problem = problem_of(depth, 2, n=50)
    lift = Lifting.from_problem(problem)
    whole = TorchLifting(lift, problem.y)
    rows = GramLossLifting(lift, problem.y, row_set.LossGram(lift, problem.y, "cpu"), "cpu")
    rng = np.random.default_rng(1)
    Z = torch.as_tensor(rng.normal(size=(lift.n_groups, problem.d)))
    lam_i = torch.as_tensor(rng.uniform(size=(lift.n_groups, problem.n)))
    lam_o = torch.as_tensor(rng.uniform(size=(lift.n_blocks, problem.n))) if depth == 3 \
        else whole.zeros_outer()
    checks = []
    for ops in (whole, rows):
        ws = ops.workspace()
        value = ops.al_value(Z, lam_i, lam_o, 3.0, ws)
        grad = ops.al_gradient(Z, lam_i, lam_o, 3.0, ws).clone()
        checks.append((value, grad, device_certificate(ops, ws, Z, problem.beta, 1.0)))
    (v1, g1, c1), (v2, g2, c2) = checks
    assert v2 == pytest.approx(v1, rel=1e-12)
    torch.testing.assert_close(g2, g1, rtol=1e-10, atol=1e-10)
    assert c2.objective == pytest.approx(c1.objective, rel=1e-12)
    assert c2.relative_gap == pytest.approx(c1.relative_gap, rel=1e-9, abs=1e-12)
    assert c2.violation == c1.violation


@pytest.mark.parametrize("beta", [0.01, 1.0, 10.0])
@pytest.mark.parametrize("m1", [1, 2, 3])
@pytest.mark.parametrize("depth", [2, 3])
def test_the_al_row_set_matches_clarabel_over_depth_width_and_beta(depth, m1, beta, few_rows):
    problem = problem_of(depth, m1, beta)
    result = row_solver().solve(problem)
    assert_result_matches_clarabel(problem, result)
    assert result.info["row_set_rounds"] >= 1


@pytest.mark.parametrize("kind", ["duplicates", "constant", "scaled_down", "scaled_up",
                                  "zero_y"])
def test_the_al_row_set_certifies_degenerate_data(kind, few_rows):
    assert_result_matches_clarabel(problem_of(3, 2, kind=kind), row_solver().solve(problem_of(
        3, 2, kind=kind)))


def test_the_rounds_add_the_rows_that_the_first_one_violates(few_rows):
    """From 8 random samples the first round's point violates rows outside them: they are
    added, and the last round is certified over every row."""
    problem = problem_of(3, 2, n=60)
    result = row_solver(verbose=False).solve(problem)
    assert result.info["row_set_rounds"] >= 2
    assert 8 < result.info["row_set_samples"] <= problem.n
    first_violation, last_violation = result.trace[0][4], result.trace[-1][4]
    assert first_violation > 1e-6 >= last_violation
    assert_result_matches_clarabel(problem, result)


def test_a_warm_start_gives_the_first_point(few_rows):
    problem = problem_of(3, 2, n=60)
    cold = row_solver().solve(problem)
    warm = row_solver().solve(problem, warm_start=cold)
    assert_result_matches_clarabel(problem, warm)
    assert warm.iterations < cold.iterations


def test_the_row_set_refuses_what_it_cannot_take():
    problem = problem_of(2, 2)
    with pytest.raises(ValueError, match="row_set=True needs the squared loss, float64"):
        get_solver("al", row_set=True, dtype="float32").solve(problem)


def test_an_exhausted_budget_returns_its_status(few_rows):
    problem = problem_of(3, 3, beta=0.01, n=60)
    result = row_solver(max_iters=3).solve(problem)
    assert result.status == "max_iterations"
    assert result.Z is not None and result.lam_inner.shape == (2 * 8 * 3, problem.n)


def test_auto_takes_the_row_set_on_large_programs_that_ipm_does_not_take(monkeypatch,
                                                                         few_rows):
    from dualnets.solvers import al, ipm

    problem = problem_of(3, 2, n=60)
    monkeypatch.setattr(ipm, "MAX_CONE_ROWS", 0)          # ipm does not take it
    monkeypatch.setattr(al, "ROW_SET_MIN_N", 61)
    assert "row_set_samples" not in get_solver("al").solve(problem).info
    monkeypatch.setattr(al, "ROW_SET_MIN_N", 60)
    result = get_solver("al").solve(problem)
    assert "row_set_samples" in result.info
    assert_result_matches_clarabel(problem, result)
    assert "row_set_samples" not in get_solver("al", row_set=False).solve(problem).info
    assert "row_set_samples" not in get_solver("al", inner="fista").solve(problem).info


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_al_row_set_runs_on_cuda(few_rows):
    problem = problem_of(3, 2, n=60)
    assert_result_matches_clarabel(problem, row_solver(device="cuda").solve(problem))
