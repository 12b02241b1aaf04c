"""The working-set AL: agreement with Clarabel over the test grid and on degenerate data, the
pricing step, the growth of the set, and the two-sided certification rule."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from dualnets.certificate import certificate_from, certify
from dualnets.lifting import Lifting
from dualnets.patterns import sample_patterns
from dualnets.problem import Problem
from dualnets.registry import get_solver
from dualnets.result import Result
from dualnets.varied import varied_data
from dualnets.solvers.al import AugmentedLagrangian
from dualnets.solvers.al_pricing import BlockPricer

pytestmark = pytest.mark.usefixtures("al_without_ipm")

TOL = 1e-6


def grid_problem(depth: int, m1: int, beta: float, seed: int = 0, n: int = 12, d: int = 3,
                 P: int = 4, kind: str = "plain") -> Problem:
    """Tiny random data (a target of scale 1), optionally degenerate (``kind``)."""
    X, y = varied_data(np.random.default_rng(seed), n, d, kind)
    problem = Problem(X, y, beta, m1, depth=depth, name=f"grid-{kind}")
    return problem.with_patterns(sample_patterns(X, m1, P, seed, depth))


def clarabel_objective(problem: Problem) -> float:
    res = get_solver("clarabel", tol=1e-10).solve(problem)
    return certify(Lifting.from_problem(problem), problem.y, problem.beta, res.Z).objective


def full_certificate(problem: Problem, result: Result):
    return certify(Lifting.from_problem(problem), problem.y, problem.beta, result.Z,
                   result.lam_inner, result.lam_outer)


def assert_matches_clarabel(problem: Problem, result: Result) -> None:
    """Certified on the full problem (both sides of the gap), and Clarabel's objective."""
    cert = full_certificate(problem, result)
    assert cert.certified, cert
    ref = clarabel_objective(problem)
    # 1e-10 absolute: Clarabel's own accuracy (tol=1e-10) where the optimum is 0 (y = 0)
    assert abs(cert.objective - ref) <= TOL * abs(ref) + 1e-10, (cert.objective, ref)


@pytest.mark.parametrize("inner", ["newton", "fista", "ipm"])
@pytest.mark.parametrize("beta", [0.01, 1.0, 10.0])
@pytest.mark.parametrize("m1", [1, 2, 3])
@pytest.mark.parametrize("depth", [2, 3])
def test_al_matches_clarabel_over_the_grid(depth, m1, beta, inner):
    problem = grid_problem(depth, m1, beta, seed=depth * 10 + m1)
    result = AugmentedLagrangian(max_seconds=60, inner=inner).solve(problem)
    assert result.status == "optimal"
    assert_matches_clarabel(problem, result)


@pytest.mark.parametrize("kind", ["duplicates", "constant", "scaled_down", "scaled_up",
                                  "zero_y"])
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("inner", ["auto", "fista", "ipm"])
def test_al_certifies_degenerate_data(depth, kind, inner, request):
    if inner == "fista" and kind == "scaled_up":
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "measured: first-order steps on features x1e3 with beta = 0.1 (as beta = 1e-4 on "
            "unit features; Lipschitz bound 1.3e9 at depth 2, 5e8 at depth 3) end at "
            "max_iters (50000) uncertified, at gap 0.47 and 1.6e-3; at depth 2, 828000 "
            "iterations reach 1e-2, where the polish certifies (53 s). newton and ipm "
            "certify both in under 0.1 s")))
    problem = grid_problem(depth, 2, 0.1, seed=3, kind=kind)
    result = AugmentedLagrangian(max_seconds=60, inner=inner).solve(problem)
    assert result.status == "optimal"
    assert_matches_clarabel(problem, result)


def test_zero_is_certified_without_a_solve_when_beta_is_large():
    problem = grid_problem(3, 2, 1e3, seed=1)
    result = AugmentedLagrangian(max_seconds=60).solve(problem)
    assert result.status == "optimal" and result.iterations == 0
    assert not np.any(result.Z)
    assert full_certificate(problem, result).certified


@pytest.mark.parametrize("m1", [1, 2])
@pytest.mark.parametrize("depth", [2, 3])
def test_working_set_equals_the_full_solve(depth, m1):
    problem = grid_problem(depth, m1, 0.2, seed=7, n=30, d=4, P=40)
    tight = dict(max_seconds=60, gap_tol=1e-10, violation_tol=1e-10)
    ws = AugmentedLagrangian(**tight).solve(problem)
    full = AugmentedLagrangian(working_set=False, **tight).solve(problem)
    assert ws.status == full.status == "optimal"
    assert ws.info["working_set_patterns"] < problem.n_patterns   # it did restrict
    a, b = full_certificate(problem, ws), full_certificate(problem, full)
    assert abs(a.objective - b.objective) <= 1e-8 * abs(b.objective)
    lift = Lifting.from_problem(problem)
    np.testing.assert_allclose(lift.predict(ws.Z), lift.predict(full.Z), atol=1e-4)


def cvxpy_price(lift: Lifting, v: np.ndarray, b: int) -> float:
    """``min_{lam >= 0} max_j ||(A_b'v - B_b'lam)_j||`` of block ``b`` with Clarabel."""
    P, m1, (n, _) = lift.n_patterns, lift.m1, lift.X.shape
    c, sigma, X = b % P, (1.0 if b < P else -1.0), lift.X
    lam_i = cp.Variable((m1, n), nonneg=True)
    lam_o = cp.Variable(n, nonneg=True)
    E = lift.outer[c]
    t = cp.Variable()
    constraints = []
    for j in range(m1):
        D, s = lift.inner[c * m1 + j], lift.coef_sign[c * m1 + j]
        row = X.T @ (s * D * sigma * E * v) - X.T @ cp.multiply(np.where(D, 1.0, -1.0),
                                                               lam_i[j])
        if lift.depth == 3:
            row = row - X.T @ cp.multiply(s * D * np.where(E, 1.0, -1.0), lam_o)
        constraints.append(cp.norm(row) <= t)
    cp.Problem(cp.Minimize(t), constraints).solve(solver="CLARABEL")
    return float(t.value)


@pytest.mark.parametrize("m1", [1, 2, 3])
@pytest.mark.parametrize("depth", [2, 3])
def test_pricing_matches_cvxpy(depth, m1):
    problem = grid_problem(depth, m1, 0.1, seed=m1, n=20, d=3, P=4)
    lift = Lifting.from_problem(problem)
    pricer = BlockPricer(lift)
    v = np.random.default_rng(0).standard_normal(problem.n)
    for b in range(lift.n_blocks):
        # threshold NaN: never decided early, all Lawson steps run
        price = pricer.price(v, b, float("nan"), lawson_steps=60)
        ref = cvxpy_price(lift, v, b)
        assert price.lower - 1e-7 <= ref <= price.upper + 1e-7
        assert price.upper == pytest.approx(ref, rel=1e-4, abs=1e-7)
        # its multipliers attain the upper bound (they are what the certificate uses)
        rows = pricer.residuals(b, pricer.targets(v, b), price.lam_inner, price.lam_outer)
        assert np.linalg.norm(rows, axis=1).max() == pytest.approx(price.upper, rel=1e-12)
        assert np.all(price.lam_inner >= 0)


def test_a_needed_block_left_out_is_added():
    problem = grid_problem(3, 2, 0.05, seed=4, n=30, d=4, P=10)
    full = AugmentedLagrangian(max_seconds=60, working_set=False).solve(problem)
    lift = Lifting.from_problem(problem)
    P, m1 = lift.n_patterns, lift.m1
    used = np.flatnonzero(np.linalg.norm(full.Z, axis=1).reshape(2, P, m1).max(axis=(0, 2)))
    assert used.size >= 2
    # warm start with every used pattern but one: the pricing must bring it back
    Z = full.Z.copy().reshape(2, P, m1, -1)
    left_out = used[0]
    Z[:, left_out] = 0.0
    warm = Result("al", "optimal", Z=Z.reshape(full.Z.shape), info={"patterns": problem.patterns})
    result = AugmentedLagrangian(max_seconds=60).solve(problem, warm_start=warm)
    assert left_out in result.info["working_set"]
    assert result.status == "optimal"
    assert_matches_clarabel(problem, result)


def test_certification_is_two_sided():
    """An infeasible point whose objective is below the optimum has a gap below -tol; it is
    not certified, and neither is a point whose violation exceeds tol."""
    problem = grid_problem(3, 2, 0.05, seed=5, n=30, d=4, P=10)
    lift = Lifting.from_problem(problem)
    opt = AugmentedLagrangian(max_seconds=60, working_set=False).solve(problem)
    gated = get_solver("gated-fista", max_seconds=60).solve(problem)     # infeasible, lower
    found = None
    for s in np.linspace(0.01, 1.0, 100):
        Z = (1 - s) * opt.Z + s * gated.Z
        cert = certify(lift, problem.y, problem.beta, Z, opt.lam_inner, opt.lam_outer)
        if cert.relative_gap < -TOL:
            found = cert
            break
    assert found is not None and found.constraint_violation > 0
    assert not found.certified
    v = lift.predict(opt.Z) - problem.y
    exact = full_certificate(problem, opt)
    assert exact.certified
    worse = certificate_from(v, problem.y, problem.beta, exact.objective, problem.beta,
                             violation=10 * TOL)
    assert not worse.certified and abs(worse.relative_gap) <= TOL


def test_depth3_m1_1_with_newton_and_fista():
    problem = grid_problem(3, 1, 0.1, seed=2, n=20, P=8)
    for inner in ("newton", "fista"):
        result = AugmentedLagrangian(max_seconds=60, inner=inner).solve(problem)
        assert result.status == "optimal"
        assert_matches_clarabel(problem, result)


def test_budget_returns_the_best_checked_point():
    problem = grid_problem(3, 2, 0.01, seed=6, n=40, d=4, P=20)
    result = AugmentedLagrangian(max_iters=30).solve(problem)
    assert result.status == "max_iterations"
    cert = full_certificate(problem, result)
    _, _, objective, gap, violation = result.trace[-1]
    assert cert.objective == pytest.approx(objective, rel=1e-12)
    assert cert.relative_gap == pytest.approx(gap, rel=1e-9, abs=1e-12)
    assert min(abs(row[3]) for row in result.trace) >= abs(gap) or violation > TOL


def test_dual_search_style_warm_start_with_new_patterns():
    """New patterns are new blocks, priced by the same rule; the old ones keep their point."""
    problem = grid_problem(3, 2, 0.05, seed=8, n=30, d=4, P=6)
    first = AugmentedLagrangian(max_seconds=60).solve(problem)
    extra = sample_patterns(problem.X, 2, 10, seed=99, depth=3)
    grown = problem.with_patterns(extra.concat(problem.patterns))
    warm = AugmentedLagrangian(max_seconds=60).solve(grown, warm_start=first)
    cold = AugmentedLagrangian(max_seconds=60).solve(grown)
    assert warm.status == cold.status == "optimal"
    assert_matches_clarabel(grown, warm)
    assert warm.info["patterns"] is grown.patterns


def test_column_generation_nnls_equals_lawson_hanson():
    """Column generation on a wide matrix reaches the full NNLS optimum and says so."""
    from scipy.optimize import nnls

    from dualnets.solvers.al_pricing import column_nnls
    rng = np.random.default_rng(3)
    for k, N, shift in [(4, 300, 0.0), (12, 2000, 0.0), (12, 2000, 1.0), (20, 5000, 1.0)]:
        # shift > 0: nonnegative columns and a target pointing away, a nonzero residual
        M = np.abs(rng.standard_normal((k, N))) if shift else rng.standard_normal((k, N))
        b = rng.standard_normal(k) * 5 - 5 * shift
        x, rnorm, exact = column_nnls(M, b)
        ref = nnls(M, b)[1]
        assert exact and np.all(x >= 0)
        assert rnorm == pytest.approx(ref, rel=1e-9, abs=1e-12)
        assert np.linalg.norm(b - M @ x) == pytest.approx(rnorm, rel=1e-12, abs=1e-12)


def test_the_reported_stall_is_gone():
    """A warm start that left out a needed pattern stalled at gap 0.9 (Newton declared
    subproblems solved when its line search failed and rho grew to 2e8); it now certifies in
    a few hundred steps."""
    problem = grid_problem(3, 2, 0.05, seed=4, n=30, d=4, P=10)
    full = AugmentedLagrangian(max_seconds=60, working_set=False).solve(problem)
    used = np.linalg.norm(full.Z, axis=1).reshape(2, problem.n_patterns, 2).max(axis=(0, 2))
    Z = full.Z.copy().reshape(2, problem.n_patterns, 2, -1)
    Z[:, np.flatnonzero(used)[0]] = 0.0
    warm = Result("al", "optimal", Z=Z.reshape(full.Z.shape), info={"patterns": problem.patterns})
    result = AugmentedLagrangian(max_iters=2000).solve(problem, warm_start=warm)
    assert result.status == "optimal"
    assert full_certificate(problem, result).certified
