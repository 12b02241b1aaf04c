"""The augmented Lagrangian solver: agreement with Clarabel, certificate, dtypes, devices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import cases_dir
from dualnets.certificate import certify
from dualnets.cli import main
from dualnets.io import load_problem, save_problem
from dualnets.lifting import Lifting
from dualnets.patterns import sample_patterns
from dualnets.problem import Problem
from dualnets.registry import get_solver
from dualnets.result import Result
from dualnets.solvers import al_newton
from dualnets.solvers.al import AugmentedLagrangian, warm_arrays
from dualnets.solvers.al_inner import Subproblem
from dualnets.solvers.al_fold import Folding
from dualnets.solvers.al_newton import ConeSums, NewtonInner
from dualnets.solvers.torch_ops import TorchLifting

pytestmark = pytest.mark.usefixtures("al_without_ipm")

TOL = 1e-6


def random_problem(depth: int, seed: int = 1, n: int = 20, d: int = 3, P: int = 6,
                   beta: float = 0.1, m1: int = 2) -> Problem:
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    problem = Problem(X, rng.standard_normal(n), beta, m1, depth=depth, name=f"rand{depth}")
    return problem.with_patterns(sample_patterns(X, m1, P, seed, depth))


def clarabel_objective(problem: Problem) -> float:
    res = get_solver("clarabel", tol=1e-10).solve(problem)
    return certify(Lifting.from_problem(problem), problem.y, problem.beta, res.Z).objective


def assert_certified_match(problem: Problem, result, tol: float = TOL) -> None:
    lift = Lifting.from_problem(problem)
    cert = certify(lift, problem.y, problem.beta, result.Z, result.lam_inner, result.lam_outer,
                   gap_tol=tol, violation_tol=tol)
    assert cert.relative_gap <= tol and cert.constraint_violation <= tol, cert
    ref = clarabel_objective(problem)
    assert abs(cert.objective - ref) <= tol * abs(ref), (cert.objective, ref)


@pytest.mark.parametrize("inner, line_search", [("fista", False), ("fista", True),
                                                 ("newton", False)])
@pytest.mark.parametrize("depth", [2, 3])
def test_al_matches_clarabel_with_certified_gap(depth, inner, line_search):
    problem = random_problem(depth)
    result = AugmentedLagrangian(max_seconds=60, inner=inner,
                                 line_search=line_search).solve(problem)
    assert result.status == "optimal"
    assert result.model == "relu"
    assert result.info["inner"] == inner
    assert_certified_match(problem, result)


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("seed", [2, 3, 5])
def test_newton_al_matches_clarabel_on_more_problems(depth, seed):
    problem = random_problem(depth, seed=seed, n=40, d=4, P=8)
    result = AugmentedLagrangian(max_seconds=60, inner="newton").solve(problem)
    assert result.status == "optimal"
    assert_certified_match(problem, result)


def newton_case(depth: int, seed: int, rng_seed: int, lam: float | None = None, **size):
    """``(problem, ops, ws, NewtonInner, rng, Z, lam_i, lam_o)`` of a random problem: Z
    standard normal, multipliers uniform in [0, 1) or all equal to ``lam``."""
    problem = random_problem(depth, seed=seed, **size)
    lift = Lifting.from_problem(problem)
    ops = TorchLifting(lift, problem.y)
    rng = np.random.default_rng(rng_seed)
    Z = torch.as_tensor(rng.standard_normal((lift.n_groups, problem.d)))

    def multipliers(rows: int) -> torch.Tensor:
        if lam is None:
            return torch.as_tensor(rng.random((rows, problem.n)))
        return torch.full((rows, problem.n), lam, dtype=torch.float64)

    lam_i = multipliers(lift.n_groups)
    lam_o = multipliers(lift.n_blocks) if depth == 3 else ops.zeros_outer()
    return problem, ops, ops.workspace(), NewtonInner(ops), rng, Z, lam_i, lam_o


def assert_newton_matrix_is_the_jacobian(case: tuple, step: float) -> None:
    """On the nonzero groups of a :func:`newton_case` (two groups set to zero), the Newton
    matrix times v equals the directional derivative of ``grad f + beta z/||z||`` (central
    differences of ``step``, small enough that no cone row switches); a loss whose Hessian is
    not the identity gives the matrix its weights ``W`` at Z."""
    problem, ops, ws, newton, rng, Z, lam_i, lam_o = case
    Z[[1, 4]] = 0.0
    rho, beta = 0.7, problem.beta
    active = torch.nonzero(torch.linalg.vector_norm(Z, dim=1) > 0).flatten()

    def field(W):
        grad = ops.al_gradient(W, lam_i, lam_o, rho, ws).clone()
        norms = torch.linalg.vector_norm(W[active], dim=1, keepdim=True)
        return (grad[active] + beta * W[active] / norms).flatten()

    field(Z)
    h = None if ops.loss.identity_hessian else ops.loss.hessian_diagonal(ws.yhat, ops.y)
    masks = (ws.mu_i > 0).clone(), (ws.mu_o > 0).clone()
    norms = torch.linalg.vector_norm(Z[active], dim=1)
    p, q, C, _ = newton._local_terms(active, Z[active] / norms[:, None], norms, rho, beta, ws,
                                     h=h)
    M = newton._dense(active, p, q, C, h)
    V = torch.zeros_like(Z)
    V[active] = torch.as_tensor(rng.standard_normal((active.numel(), problem.d)))
    derivative = (field(Z + step * V) - field(Z - step * V)) / (2 * step)
    field(Z + step * V)
    assert torch.equal(masks[0], ws.mu_i > 0) and torch.equal(masks[1], ws.mu_o > 0)
    expected = M @ V[active].flatten()
    np.testing.assert_allclose(derivative.numpy(), expected.numpy(), rtol=1e-5,
                               atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("depth", [2, 3])
def test_newton_matrix_is_the_jacobian_of_the_subproblem_gradient(depth):
    """The Newton matrix ``A'A + rho B_S'B_S +`` the norms' curvature is the Jacobian of the
    subproblem's gradient on the nonzero groups."""
    assert_newton_matrix_is_the_jacobian(newton_case(depth, seed=6, rng_seed=2), step=1e-7)


@pytest.mark.parametrize("m1", [1, 2, 3])
@pytest.mark.parametrize("depth", [2, 3])
def test_low_rank_newton_solve_equals_the_dense_one(depth, m1):
    """n = 12 rows, a d >= 48 unknowns: the Woodbury solve (block-diagonal D, batched by how
    many groups of a block are active) is used.  Large multipliers make every cone row active,
    so that D is well conditioned (where it is not, the solve returns None and the dense one is
    used: covered by the solves above)."""
    problem, ops, ws, newton, rng, Z, lam_i, lam_o = newton_case(
        depth, seed=8, rng_seed=4, lam=1e3, n=12, d=3, P=10, m1=m1)
    Z[[0, 3, 4, 9]] = 0.0               # some groups inactive: blocks with 1 .. m1 active groups
    ops.al_gradient(Z, lam_i, lam_o, 2.0, ws)
    active = torch.nonzero(torch.linalg.vector_norm(Z, dim=1) > 0).flatten()
    norms = torch.linalg.vector_norm(Z[active], dim=1)
    p, q, C, scale = newton._local_terms(active, Z[active] / norms[:, None], norms, 2.0,
                                         problem.beta, ws)
    rhs = torch.as_tensor(rng.standard_normal(active.numel() * problem.d))
    assert 2 * problem.n < rhs.numel()
    low, accurate = newton._solve_low_rank(active, p, q, C, rhs, scale)
    dense = newton._solve(newton._dense(active, p, q, C), rhs, scale)
    assert accurate
    torch.testing.assert_close(low, dense, rtol=1e-8, atol=1e-10 * float(dense.abs().max()))


def assert_folded_solve_is_the_dense_one(case: tuple) -> None:
    """On a :func:`newton_case` with groups active with both signs, with one sign only, and
    blocks with 1 .. m1 active groups, the system folded onto the patterns (:mod:`al_fold`)
    gives the dense solve's direction (the loss's weights ``W`` at Z where they are not the
    identity)."""
    problem, ops, ws, newton, rng, Z, lam_i, lam_o = case
    half, m1 = Z.shape[0] // 2, problem.m1
    Z[0] = 0.0                                       # pattern 0: group 0 of its plus block
    Z[half + m1] = 0.0                               # pattern 1: group 0 of its minus block
    Z[half + 2 * m1: half + 3 * m1] = 0.0            # pattern 2: its whole minus block
    Z[3 * m1: 4 * m1] = Z[half + 3 * m1: half + 4 * m1] = 0.0   # pattern 3: not at all
    rho, beta = 2.0, problem.beta
    ops.al_gradient(Z, lam_i, lam_o, rho, ws)
    h = None if ops.loss.identity_hessian else ops.loss.hessian_diagonal(ws.yhat, ops.y)
    active = torch.nonzero(torch.linalg.vector_norm(Z, dim=1) > 0).flatten()
    norms = torch.linalg.vector_norm(Z[active], dim=1)
    p, q, C, scale = newton._local_terms(active, Z[active] / norms[:, None], norms, rho, beta,
                                         ws, damping=0.3, h=h)
    rhs = torch.as_tensor(rng.standard_normal(active.numel() * problem.d))
    fold = Folding(active, half, m1, problem.d)
    assert fold.both.any() and fold.plus_only.any() and (fold.minus > fold.both).any()
    assert fold.U.numel() == half - m1               # pattern 3's groups are not unknowns
    folded = fold.solve(newton._half_block(fold.U, h), p, q, C, rhs, al_newton.RIDGE * scale,
                        lambda R: al_newton.ridged_cholesky(R, scale))
    dense = newton._solve(newton._dense(active, p, q, C, h), rhs, scale)
    torch.testing.assert_close(folded, dense, rtol=1e-8, atol=1e-10 * float(dense.abs().max()))


@pytest.mark.parametrize("m1", [1, 2, 3])
@pytest.mark.parametrize("depth", [2, 3])
def test_folded_newton_solve_equals_the_dense_one(depth, m1):
    assert_folded_solve_is_the_dense_one(
        newton_case(depth, seed=9, rng_seed=5, n=30, d=3, P=8, m1=m1))


def test_newton_switches_the_bent_line_search_after_an_unsolved_subproblem(monkeypatch):
    """A subproblem that ends its NEWTON_STEPS steps unsolved switches the bending for the
    next one (al_newton docstring, step 3); one that is solved, or ends on the budget, keeps
    it."""
    problem, ops, ws, newton, _, Z, lam_i, lam_o = newton_case(3, seed=6, rng_seed=2)
    monkeypatch.setattr(al_newton, "NEWTON_STEPS", 2)

    def run(eta: float, stop=lambda: False) -> tuple[bool, int]:
        newton.forget()
        sub = Subproblem(lam_i, lam_o, 2.0, problem.beta, eta, ws)
        _, solved, steps = newton.solve(Z.clone(), sub, stop, lambda _: None)
        return solved, steps

    assert newton.bend
    assert run(eta=0.0) == (False, 2)          # unsolved after the cap: switched
    assert not newton.bend
    assert run(eta=0.0) == (False, 2)          # and back
    assert newton.bend
    assert run(eta=0.0, stop=lambda: True) == (False, 0)   # a budget stop keeps it
    assert newton.bend
    assert run(eta=1e12)[0]                    # solved at once: kept
    assert newton.bend


@pytest.mark.parametrize("depth", [2, 3])
def test_cone_sums_updated_by_switched_rows_equal_a_recount(depth):
    _, ops, ws, newton, rng, Z, lam_i, lam_o = newton_case(depth, seed=7, rng_seed=3, n=60)
    tracked = ConeSums(ops, newton.XX)
    for _ in range(4):
        ops.al_gradient(Z, lam_i, lam_o, 1.0, ws)
        tracked.update(ws)
        fresh = ConeSums(ops, tracked.XX)
        fresh.update(ws)
        torch.testing.assert_close(tracked.inner, fresh.inner, rtol=1e-12, atol=1e-10)
        if depth == 3:
            torch.testing.assert_close(tracked.outer, fresh.outer, rtol=1e-12, atol=1e-10)
        Z = Z + 0.05 * torch.as_tensor(rng.standard_normal(Z.shape))   # a few rows switch


def test_auto_inner_falls_back_to_fista_above_the_newton_size(monkeypatch):
    problem = random_problem(3)
    assert AugmentedLagrangian(max_seconds=60).solve(problem).info["inner"] == "newton"
    monkeypatch.setattr(al_newton, "MAX_VARIABLES", 10)
    monkeypatch.setattr(al_newton, "MAX_LOW_RANK_ENTRIES", 10)
    result = AugmentedLagrangian(max_seconds=60).solve(problem)
    assert result.info["inner"] == "fista"
    with pytest.raises(ValueError, match="MAX_VARIABLES = 10 .*got n = 20, 24 groups x 3 feat"):
        AugmentedLagrangian(inner="newton").solve(problem)


@pytest.mark.parametrize("depth", [2, 3])
def test_newton_without_the_dense_gram_uses_the_low_rank_solve(monkeypatch, depth):
    """Above the dense size, n < G d / 2 still runs Newton (Woodbury only, no A'A)."""
    monkeypatch.setattr(al_newton, "MAX_VARIABLES", 10)
    problem = random_problem(depth, seed=9, n=15, d=4, P=8)
    assert NewtonInner(TorchLifting(Lifting.from_problem(problem), problem.y)).gram is None
    result = AugmentedLagrangian(max_seconds=60).solve(problem)
    assert result.info["inner"] == "newton" and result.status == "optimal"
    assert_certified_match(problem, result)


@pytest.mark.parametrize("name", ["public_tiny_1d", "public_teacher", "public_breast_cancer"])
def test_al_matches_clarabel_on_public_cases(name):
    folder = cases_dir()
    if folder is None or not (folder / f"{name}.npz").is_file():
        pytest.skip("public cases not present (set DUALNETS_CASES)")
    problem = load_problem(folder / f"{name}.npz")
    result = AugmentedLagrangian(max_seconds=300).solve(problem)
    assert_certified_match(problem, result)


def test_torch_gradient_is_the_certificate_adjoint():
    """With rho = 0 the multipliers are lam and the gradient is (A'v - B'lam) of certify()."""
    problem = random_problem(3, seed=4)
    lift = Lifting.from_problem(problem)
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((lift.n_groups, problem.d))
    lam_i = rng.random((lift.n_groups, problem.n))
    lam_o = rng.random((lift.n_blocks, problem.n))
    ops = TorchLifting(lift, problem.y)
    ws = ops.workspace()
    grad = ops.al_gradient(torch.as_tensor(Z), torch.as_tensor(lam_i), torch.as_tensor(lam_o),
                           0.0, ws)
    v = lift.predict(Z) - problem.y
    np.testing.assert_allclose(ws.r.numpy(), v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad.numpy(), lift.adjoint(v, lam_i, lam_o), rtol=1e-10,
                               atol=1e-10)


@pytest.mark.parametrize("depth", [2, 3])
def test_al_value_is_the_smooth_part_of_the_augmented_lagrangian(depth):
    """1/2||Az - y||^2 + 1/(2 rho)||(lam - rho Bz)_+||^2, by numpy, and its gradient's FD."""
    problem = random_problem(depth, seed=4)
    lift = Lifting.from_problem(problem)
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((lift.n_groups, problem.d))
    lam_i = rng.random((lift.n_groups, problem.n))
    lam_o = rng.random((lift.n_blocks, problem.n)) if depth == 3 else np.zeros(0)
    rho = 0.7
    U = lift.activations(Z)
    inner = np.maximum(lam_i - rho * lift.inner_values(U), 0)
    outer = np.maximum(lam_o - rho * lift.outer_values(lift.block_outputs(U)), 0) \
        if depth == 3 else np.zeros(0)
    r = lift.predict(Z) - problem.y
    expected = 0.5 * r @ r + 0.5 / rho * (np.sum(inner ** 2) + np.sum(outer ** 2))
    ops = TorchLifting(lift, problem.y)
    ws = ops.workspace()
    T = torch.as_tensor
    value = ops.al_value(T(Z), T(lam_i), T(lam_o), rho, ws)
    grad = ops.al_gradient(T(Z), T(lam_i), T(lam_o), rho, ws).numpy().copy()
    assert value == pytest.approx(expected, rel=1e-12)
    assert ops.al_value_after_gradient(rho, ws) == pytest.approx(expected, rel=1e-12)
    step = 1e-6 * rng.standard_normal(Z.shape)
    change = ops.al_value(T(Z + step), T(lam_i), T(lam_o), rho, ws) - \
        ops.al_value(T(Z - step), T(lam_i), T(lam_o), rho, ws)
    assert change == pytest.approx(2 * np.sum(grad * step), rel=1e-5)


def test_float32_fista_converges_to_1e4_in_objective_and_feasibility():
    problem = random_problem(3)
    result = AugmentedLagrangian(dtype="float32", max_iters=8000, inner="fista").solve(problem)
    lift = Lifting.from_problem(problem)
    cert = certify(lift, problem.y, problem.beta, result.Z, result.lam_inner, result.lam_outer)
    ref = clarabel_objective(problem)
    assert abs(cert.objective - ref) <= 1e-4 * abs(ref)
    assert cert.constraint_violation <= 1e-4


@pytest.mark.parametrize("seed", [1, 4, 12])
def test_float32_newton_certifies_1e4(seed):
    """float32 iterates, float64 Newton systems: certified at 1e-4 (16 of 16 seeds, note)."""
    problem = random_problem(3, seed=seed)
    result = AugmentedLagrangian(dtype="float32", max_iters=8000).solve(problem)
    assert result.info["inner"] == "newton" and result.status == "optimal"
    lift = Lifting.from_problem(problem)
    cert = certify(lift, problem.y, problem.beta, result.Z, result.lam_inner, result.lam_outer)
    assert abs(cert.relative_gap) <= 1e-4 and cert.constraint_violation <= 1e-4
    ref = clarabel_objective(problem)
    assert abs(cert.objective - ref) <= 1e-4 * abs(ref)


def float32_fista_certificate(working_set: bool):
    problem = random_problem(3)
    result = AugmentedLagrangian(dtype="float32", max_iters=8000, inner="fista",
                                 working_set=working_set).solve(problem)
    lift = Lifting.from_problem(problem)
    cert = certify(lift, problem.y, problem.beta, result.Z, result.lam_inner, result.lam_outer,
                   gap_tol=1e-4, violation_tol=1e-4)
    return result, cert


@pytest.mark.xfail(strict=True, reason="measured: float32 FISTA ends 8000 steps uncertified. "
                   "Over every block: the violation stays near 2e-3 for 6000 steps (rho grew "
                   "once, 16 -> 81: unsolved subproblems never stiffen it; inner_iters=4000 "
                   "did no better), both polish attempts fail, gap 1.2e-3.  With the working "
                   "set: gap 1.3e-3, violation 1e-5 (one intermediate version certified it "
                   "through the polish: it hangs on the trajectory, it is not robust)")
@pytest.mark.parametrize("working_set", [True, False])
def test_float32_fista_meets_its_stopping_rule(working_set):
    result, cert = float32_fista_certificate(working_set)
    assert result.status == "optimal" and cert.certified


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
@pytest.mark.parametrize("working_set", [True, False])
@pytest.mark.parametrize("dtype, tol", [("float64", TOL), ("float32", 1e-4)])
def test_cuda_matches_cpu(dtype, tol, working_set):
    problem = random_problem(3)
    result = AugmentedLagrangian(device="cuda", dtype=dtype, working_set=working_set,
                                 max_seconds=60).solve(problem)
    assert result.info["device"] == "cuda" and result.status == "optimal"
    assert_certified_match(problem, result, tol)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_supports_says_why_cuda_is_missing():
    ok, why = AugmentedLagrangian(device="cuda").supports(random_problem(2))
    assert not ok and "cuda is not available" in why
    with pytest.raises(ValueError, match="cuda is not available"):
        AugmentedLagrangian(device="cuda").solve(random_problem(2))


def test_bad_options_name_expected_and_got():
    with pytest.raises(ValueError, match="dtype must be one of .* got 'float16'"):
        AugmentedLagrangian(dtype="float16")
    with pytest.raises(ValueError, match="device must be one of .* got 'tpu'"):
        AugmentedLagrangian(device="tpu")
    with pytest.raises(ValueError, match="rho_scale must be > 0, got -1"):
        AugmentedLagrangian(rho_scale=-1)
    with pytest.raises(ValueError, match=r"inner must be one of \('auto', 'newton', 'fista', "
                       r"'ipm'\), got 'bogus'"):
        AugmentedLagrangian(inner="bogus")


def test_cli_bad_inner_is_one_line_and_exit_2(tmp_path, capsys):
    save_problem(random_problem(3), tmp_path / "p.npz")
    code = main(["solve", str(tmp_path / "p.npz"), "--solver", "al", "--solver-option",
                 "inner=bogus"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == ["dualnets: error: inner must be one of ('auto', 'newton', "
                                "'fista', 'ipm'), got 'bogus'"]


def test_trace_and_timings():
    problem = random_problem(3)
    result = AugmentedLagrangian(max_seconds=60, trace_every=500).solve(problem)
    seconds = [row[0] for row in result.trace]
    iterations = [row[1] for row in result.trace]
    assert all(len(row) == 5 for row in result.trace)
    assert seconds == sorted(seconds) and iterations == sorted(iterations)
    assert result.trace[-1][3] <= TOL and result.trace[-1][4] <= TOL
    assert result.warmup_seconds > 0 and result.solve_seconds >= seconds[-1] > 0


def test_limits_give_their_status():
    problem = random_problem(3)
    assert AugmentedLagrangian(max_iters=5).solve(problem).status == "max_iterations"
    assert AugmentedLagrangian(max_seconds=1e-9).solve(problem).status == "time_limit"


@pytest.mark.parametrize("inner, max_iters", [("fista", 150), ("fista", 200), ("fista", 230),
                                              ("newton", 6), ("newton", 14), ("newton", 25)])
def test_stopped_result_carries_the_multipliers_of_its_last_trace_row(inner, max_iters):
    # the budget runs out just after a multiplier update (fista 200), inside an inner solve
    # (fista 150, 230): either way the returned (Z, lam) are the point the last trace row
    # certified, and no iterate is certified twice (a second check would update its
    # multipliers again).  Newton returns its best checked point, as the last trace row.
    problem = random_problem(3, n=40, P=10, beta=0.01)
    result = AugmentedLagrangian(max_iters=max_iters, inner_iters=100, polish_at=0.0,
                                 gap_tol=1e-12, inner=inner).solve(problem)
    assert result.status == "max_iterations"
    iterations = [row[1] for row in result.trace]
    assert iterations == sorted(set(iterations)) and iterations[-1] == max_iters
    cert = certify(Lifting.from_problem(problem), problem.y, problem.beta, result.Z,
                   result.lam_inner, result.lam_outer)
    _, _, objective, gap, violation = result.trace[-1]
    assert cert.objective == pytest.approx(objective, rel=1e-12)
    assert cert.relative_gap == pytest.approx(gap, rel=1e-9, abs=1e-12)
    assert cert.constraint_violation == pytest.approx(violation, rel=1e-9, abs=1e-15)


def test_warm_start_maps_groups_by_pattern_identity():
    problem = random_problem(3)
    first = AugmentedLagrangian(max_seconds=60).solve(problem)
    pat = problem.patterns
    extra = sample_patterns(problem.X, 2, 10, seed=7, depth=3)
    order = np.arange(pat.n_patterns)[::-1]
    grown = problem.with_patterns(extra.concat(pat.take(order)))   # new ones first, reversed
    lift = Lifting.from_problem(grown)
    Z, lam_i, lam_o = warm_arrays(grown, lift, first)
    # same predictions and multipliers' total mass: the groups moved, nothing was lost
    np.testing.assert_allclose(lift.predict(Z), Lifting.from_problem(problem).predict(first.Z),
                               atol=1e-12)
    assert np.isclose(lam_i.sum(), first.lam_inner.sum()) and np.isclose(
        lam_o.sum(), first.lam_outer.sum())


def test_warm_start_over_beta_path_is_faster():
    problem = random_problem(3)
    cold = AugmentedLagrangian(max_seconds=60).solve(problem)
    nearby = Problem(problem.X, problem.y, problem.beta * 1.05, 2, 3, patterns=problem.patterns)
    warm = AugmentedLagrangian(max_seconds=60).solve(nearby, warm_start=cold)
    again = AugmentedLagrangian(max_seconds=60).solve(nearby)
    assert warm.status == "optimal"
    assert warm.iterations < again.iterations
    assert_certified_match(nearby, warm)


def test_cli_solve_with_al_writes_clarabel_keys(tmp_path):
    problem = random_problem(3)
    save_problem(problem, tmp_path / "p.npz")
    keys = {}
    for solver in ("clarabel", "al"):
        out = tmp_path / f"{solver}.json"
        assert main(["solve", str(tmp_path / "p.npz"), "--solver", solver, "--json",
                     str(out)]) == 0
        keys[solver] = json.loads(out.read_text())
    assert set(keys["clarabel"]) <= set(keys["al"])
    assert keys["al"]["certified"] is True
    assert abs(keys["al"]["objective"] - keys["clarabel"]["objective"]) <= 1e-6 * abs(
        keys["clarabel"]["objective"])


def varied(index: int, depth: int, m1: int, beta: float, kind: str) -> Problem:
    """Problem ``index`` of bench/run_varied.py (n = 120, d = 6, P = 20)."""
    from dualnets.varied import varied_data

    X, y = varied_data(np.random.default_rng(1000 + index), 120, 6, kind)
    problem = Problem(X, y, beta, m1, depth=depth, name=f"v{index}")
    return problem.with_patterns(sample_patterns(X, m1, 20, index, depth))


@pytest.mark.slow
def test_folded_solve_is_as_accurate_as_the_dense_one_along_a_stiff_solve(monkeypatch):
    """v04 of the varied set (features x1e3, beta = 0.01, m1 = 3; ~30 s): near its end, groups
    near zero make the elimination of the folded solve ill conditioned (without refinement,
    residuals up to 79x the dense Cholesky's, from step 485 on).  With the refinement every
    folded direction's residual is within 10x of the dense solve's, or below the refinement's
    target."""
    from dualnets.solvers import al_fold

    residuals = []
    original = NewtonInner._solve_dense

    def checked(self, active, p, q, C, rhs, scale, h=None):
        folded = original(self, active, p, q, C, rhs, scale, h)
        M = self._dense(active, p, q, C, h)
        M.diagonal().add_(al_newton.RIDGE * scale)
        dense = self._solve(self._dense(active, p, q, C, h), rhs, scale)
        size = float(torch.linalg.vector_norm(rhs))
        residual = lambda x: float(torch.linalg.vector_norm(rhs - M @ x)) / size  # noqa: E731
        residuals.append((residual(folded), residual(dense)))
        return folded

    monkeypatch.setattr(NewtonInner, "_solve_dense", checked)
    monkeypatch.setattr(al_newton, "LOW_RANK_RATIO", 1e9)       # every step folded
    get_solver("al", max_iters=2500).solve(varied(4, 2, 3, 0.01, "scaled_up"))
    folded, dense = np.array(residuals).T
    assert folded.size > 1000
    off = (folded > 10 * dense) & (folded > al_fold.REFINED_RESIDUAL)
    assert not off.any(), np.column_stack([folded[off], dense[off]])


def test_rho_moves_stay_inside_the_bracket():
    from dualnets.solvers.al_schedule import softer, stiffer

    assert stiffer(10.0, 100.0, np.inf) == (100.0, np.inf)
    assert stiffer(10.0, 100.0, 100.0) == (pytest.approx(np.sqrt(1000.0)), 100.0)  # failed
    assert stiffer(10.0, 100.0, 1000.0) == (100.0, 1000.0)
    assert stiffer(60.0, 600.0, 100.0) == (600.0, np.inf)      # closed: 100 is tried again
    assert softer(100.0, 10.0, 0.0) == 10.0
    assert softer(100.0, 10.0, 50.0) == pytest.approx(np.sqrt(5000.0))      # solved at 50
    assert softer(100.0, 10.0, 10.0) == 10.0


def _after(schedule, solved=False, exhausted=False, infeasible=True, violation=1.0,
           last_violation=1.0, score=1.0, last_score=1.0):
    return schedule.after(solved=solved, exhausted=exhausted, softens=True,
                          infeasible=infeasible, violation=violation,
                          last_violation=last_violation, score=score, last_score=last_score)


def test_the_schedule_stiffens_only_solved_infeasible_subproblems_that_stalled():
    from dualnets.solvers.al_schedule import RhoSchedule

    schedule = RhoSchedule(1.0, 1e-3, 1e4, 10.0)
    assert _after(schedule, solved=True) == "stiffen" and schedule.rho == 10.0
    assert _after(schedule, solved=True, violation=0.2) == "keep"       # cut 5x: enough
    assert _after(schedule, solved=True, infeasible=False) == "keep"
    assert _after(schedule) == "keep"                  # unsolved but not out of steps
    assert schedule.rho == 10.0 and schedule.solved_at == 10.0


def test_an_unsolved_subproblem_that_halved_the_score_keeps_rho():
    """The PROGRESS rule: out of steps, unsolved, but its check cut the score 2x or more."""
    from dualnets.solvers.al_schedule import PROGRESS, RhoSchedule

    schedule = RhoSchedule(100.0, 1.0, 1e4, 10.0)
    assert _after(schedule, exhausted=True, score=PROGRESS * 8.0, last_score=8.0) == "keep"
    assert schedule.rho == 100.0 and schedule.failed_at == np.inf
    assert _after(schedule, exhausted=True, score=0.6, last_score=1.0) == "soften"
    assert schedule.rho == 10.0 and schedule.failed_at == 100.0


def test_an_unsolved_subproblem_at_the_softest_rho_restarts_the_schedule_once():
    from dualnets.solvers.al_schedule import RhoSchedule

    schedule = RhoSchedule(10.0, 1.0, 1e4, 10.0)
    assert _after(schedule, solved=True) == "stiffen" and schedule.rho == 100.0
    assert _after(schedule, exhausted=True) == "soften" and schedule.rho == 10.0
    assert _after(schedule, exhausted=True) == "soften" and schedule.rho == 1.0
    assert _after(schedule, exhausted=True) == "restart"
    assert (schedule.rho, schedule.solved_at, schedule.failed_at) == (10.0, 0.0, np.inf)
    assert _after(schedule, exhausted=True) == "soften"
    assert _after(schedule, exhausted=True) == "keep" and schedule.rho == 1.0   # once only


def test_rho_does_not_cycle_between_a_failing_and_a_working_value():
    """v02 of the varied set: rho went 3.3e3 (unsolved) -> 3.3e2 (solved) -> 3.3e3 ... for 22
    multiplier updates before the bracket; now it certifies in a few."""
    problem = varied(2, 2, 2, 0.01, "constant")
    result = get_solver("al", max_seconds=120).solve(problem)
    assert_certified_match(problem, result)
    assert result.info["outer_iterations"] <= 12, result.info["outer_iterations"]



def test_a_warm_start_rho_is_where_the_schedule_starts(monkeypatch):
    """A warm start whose info carries rho starts the schedule there, within the bracket
    [default / MAX_RHO_SOFTENING, default * max_rho_growth]; without one, at the default."""
    from dualnets.solvers.al_schedule import MAX_RHO_SOFTENING

    problem = random_problem(3, seed=2)
    first = []
    original = NewtonInner.set_rho
    monkeypatch.setattr(NewtonInner, "set_rho",
                        lambda self, rho: (first.append(rho), original(self, rho))[1])
    solver = get_solver("al", working_set=False, max_iters=1)
    cold = solver.solve(problem)
    default = first[0]
    for carried, expected in ((default / 30, default / 30), (default * 7, default * 7),
                              (default * 1e-9, default / MAX_RHO_SOFTENING),
                              (default * 1e9, default * NewtonInner.max_rho_growth)):
        first.clear()
        warm = Result("al", "optimal", Z=cold.Z, lam_inner=cold.lam_inner,
                      lam_outer=cold.lam_outer, info={"rho": carried})
        solver.solve(problem, warm_start=warm)
        assert first[0] == pytest.approx(expected, rel=1e-12)


def test_working_set_rounds_pass_their_last_rho_on(monkeypatch):
    """Each working-set round starts at the rho its predecessor ended with."""
    problem = random_problem(2, seed=3, n=40, P=30)
    calls = []
    original = AugmentedLagrangian._iterate

    def recording(self, *args):
        out = original(self, *args)
        calls.append((args[-1], args[6].info["rho"]))      # (warm_rho, the round's last rho)
        return out

    monkeypatch.setattr(AugmentedLagrangian, "_iterate", recording)
    result = get_solver("al").solve(problem)
    assert result.info["working_set_rounds"] >= 2 and len(calls) >= 2
    assert calls[0][0] is None
    for (_, ended), (started, _) in zip(calls, calls[1:]):
        assert started == ended

@pytest.mark.slow
def test_working_set_round_with_stalling_warm_multipliers_restarts_them():
    """v04 of the varied set (features x 1e3, beta = 0.01, m1 = 3): the warm multipliers of a
    working-set round stalled the subproblem at the softest rho for 60 s; dropping them once
    certifies it (~20 s)."""
    problem = varied(4, 2, 3, 0.01, "scaled_up")
    result = get_solver("al", max_seconds=120).solve(problem)
    assert_certified_match(problem, result)
