"""The structured interior-point solver: its cone algebra, and agreement with Clarabel to 1e-6
over depth x m1 x beta and on degenerate data, every answer certified by dualnets' own gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualnets.certificate import certify
from dualnets.lifting import Lifting
from dualnets.patterns import sample_patterns
from dualnets.problem import Problem
from dualnets.registry import get_solver
from dualnets.solvers.ipm import SecondOrderScaling, orthant_step, soc_divide, soc_product, \
    soc_step
from dualnets.varied import varied_data

TOL = 1e-6


def random_cone_points(G: int = 5, d: int = 4, seed: int = 0):
    """Two points strictly inside G second-order cones of dimension d + 1."""
    rng = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        v = torch.randn((G, d), generator=rng, dtype=torch.float64)
        out += [v.norm(dim=1) + torch.rand(G, generator=rng, dtype=torch.float64) + 0.1, v]
    return out


def test_the_nesterov_todd_scaling_maps_s_and_lambda_to_one_point():
    s0, s1, l0, l1 = random_cone_points()
    W = SecondOrderScaling(s0, s1, l0, l1)
    for a, b in zip(W.apply_inverse(s0, s1), W.apply(l0, l1)):       # W^{-1} s = W lam
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    u0, u1 = random_cone_points(seed=1)[:2]
    for a, b in zip(W.apply(*W.apply_inverse(u0, u1)), (u0, u1)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    tt, tz, schur = W.theta_blocks()                           # W^{-2} by parts, t eliminated
    zz = schur + tz[:, :, None] * tz[:, None, :] / tt[:, None, None]
    t0, t1 = W.theta(u0, u1)
    torch.testing.assert_close(tt * u0 + (tz * u1).sum(1), t0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(tz * u0[:, None] + (zz @ u1[:, :, None]).squeeze(2), t1,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gap", [1e-5, 1e-8, 1e-11])
def test_the_eliminated_scaling_keeps_its_radial_eigenvalue_near_the_boundary(gap):
    """Late iterations: s and lam both near the boundary and nearly complementary (lam_1 ~ -k
    s_1).  The Schur complement S of W^{-2} over t has the radial eigenvalue
    1 / (eta^2 (1 + c |w_1|^2)), c = 4 (1 + |w|^2), which zz - tz tz' / tt loses (relative
    error 1.4 at c |w_1|^2 = 1e8, a negative eigenvalue at 1e11)."""
    rng = torch.Generator().manual_seed(5)
    z = torch.randn((4, 5), generator=rng, dtype=torch.float64)
    lam = -3.0 * z + gap * torch.randn((4, 5), generator=rng, dtype=torch.float64)
    W = SecondOrderScaling(z.norm(dim=1) * (1 + gap), z, lam.norm(dim=1) * (1 + gap), lam)
    _, _, schur = W.theta_blocks()
    r2 = (W.w1 * W.w1).sum(1)
    c = 4 * (1 + W.w0 * W.w0 + r2)
    assert float((c * r2).min()) > 1e-2 / gap                 # the regime of the cancellation
    u = W.w1 / r2.sqrt()[:, None]
    radial = ((u[:, None, :] @ schur @ u[:, :, None]).flatten() * W.eta ** 2 * (1 + c * r2))
    torch.testing.assert_close(radial, torch.ones(4, dtype=torch.float64), rtol=1e-4, atol=0)
    assert float(torch.linalg.eigvalsh(schur).min()) > 0


def test_the_jordan_division_inverts_the_product():
    l0, l1, d0, d1 = random_cone_points(seed=2)
    for a, b in zip(soc_product(l0, l1, *soc_divide(l0, l1, d0, d1)), (d0, d1)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_the_longest_steps_end_on_the_cone_boundaries():
    u0, u1, d0, d1 = random_cone_points(seed=3)
    d0 = -d0                                   # a direction that leaves every cone
    alpha = soc_step(u0, u1, d0, d1)
    v0, v1 = u0 + alpha * d0, u1 + alpha * d1
    assert float((v0 - v1.norm(dim=1)).min()) == pytest.approx(0.0, abs=1e-9)
    assert soc_step(u0, u1, u0, u1) == float("inf")                 # along the cone itself
    u, d = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-2.0, 1.0, -1.0])
    assert orthant_step(u, d) == pytest.approx(0.5)
    assert orthant_step(u, d.abs()) == float("inf")


def assert_matches_clarabel(problem: Problem, **options) -> None:
    assert_result_matches_clarabel(
        problem, get_solver("ipm", max_seconds=60, **options).solve(problem))


def assert_result_matches_clarabel(problem: Problem, result) -> None:
    """``result`` is optimal, certified at TOL, and has Clarabel's objective to TOL."""
    assert result.status == "optimal", result.message
    lift = Lifting.from_problem(problem)
    cert = certify(lift, problem.y, problem.beta, result.Z, result.lam_inner, result.lam_outer,
                   gap_tol=TOL, violation_tol=TOL)
    assert cert.certified, cert
    if not np.any(problem.y):          # y = 0: the optimum is 0 exactly, at z = 0
        assert cert.objective == 0.0
        return
    ref = get_solver("clarabel", tol=1e-10).solve(problem)
    ref_cert = certify(lift, problem.y, problem.beta, ref.Z, ref.lam_inner, ref.lam_outer)
    assert abs(cert.objective - ref_cert.objective) <= TOL * abs(ref_cert.objective), \
        (cert.objective, ref_cert.objective)


@pytest.mark.parametrize("beta", [0.01, 1.0, 10.0])
@pytest.mark.parametrize("m1", [1, 2, 3])
@pytest.mark.parametrize("depth", [2, 3])
def test_ipm_matches_clarabel_over_depth_width_and_beta(depth, m1, beta):
    rng = np.random.default_rng(10 * depth + m1)
    X, y = varied_data(rng, 40, 4, "plain")
    problem = Problem(X, y, beta, m1, depth=depth, name=f"ipm-d{depth}-m{m1}-b{beta}")
    assert_matches_clarabel(problem.with_patterns(sample_patterns(X, m1, 8, seed=m1,
                                                                  depth=depth)))


@pytest.mark.parametrize("kind", ["duplicates", "constant", "scaled_down", "scaled_up",
                                  "zero_y"])
@pytest.mark.parametrize("depth", [2, 3])
def test_ipm_certifies_degenerate_data(depth, kind):
    X, y = varied_data(np.random.default_rng(7), 40, 4, kind)
    problem = Problem(X, y, 0.1, 2, depth=depth, name=f"ipm-{kind}")
    assert_matches_clarabel(problem.with_patterns(sample_patterns(X, 2, 8, seed=3,
                                                                  depth=depth)))


def test_a_budget_stop_returns_the_best_checked_point_with_its_status():
    X, y = varied_data(np.random.default_rng(8), 60, 4, "plain")
    problem = Problem(X, y, 0.1, 2, depth=3).with_patterns(sample_patterns(X, 2, 8, seed=0))
    result = get_solver("ipm", max_iters=3).solve(problem)
    assert result.status == "max_iterations" and result.iterations == 3
    best = min(result.trace, key=lambda row: max(abs(row[3]), row[4]))
    assert result.trace[-1][2:] == best[2:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_ipm_on_cuda_certifies_the_cpu_optimum():
    X, y = varied_data(np.random.default_rng(9), 60, 4, "plain")
    problem = Problem(X, y, 0.1, 2, depth=3).with_patterns(sample_patterns(X, 2, 8, seed=0))
    assert_matches_clarabel(problem, device="cuda")


def small_problem(depth: int = 3) -> Problem:
    X, y = varied_data(np.random.default_rng(11), 50, 4, "plain")
    problem = Problem(X, y, 0.1, 2, depth=depth)
    return problem.with_patterns(sample_patterns(X, 2, 8, seed=0, depth=depth))


def test_al_auto_takes_ipm_within_its_size_and_the_al_above(monkeypatch):
    from dualnets.solvers import ipm

    problem = small_problem()
    result = get_solver("al").solve(problem)
    assert result.solver == "al" and result.info["inner"] == "ipm"
    assert result.status == "optimal"
    monkeypatch.setattr(ipm, "MAX_CONE_ROWS", problem.n * 24 - 1)     # n (G + B) = 24 n
    assert get_solver("al").solve(problem).info["inner"] == "newton"
    float32 = get_solver("al", dtype="float32", max_iters=50).solve(small_problem())
    assert float32.info["inner"] == "newton"          # ipm runs in float64 only


def test_an_uncertified_ipm_hands_the_rest_of_its_budget_to_the_al(monkeypatch):
    from dualnets.solvers import ipm

    monkeypatch.setattr(ipm, "MAX_ITERS", 2)
    problem = small_problem()
    result = get_solver("al", max_seconds=60).solve(problem)
    assert result.info["ipm_status"] == "max_iterations" and result.info["ipm_iterations"] == 2
    assert result.info["inner"] == "newton" and result.status == "optimal"
    seconds = [row[0] for row in result.trace]
    assert seconds == sorted(seconds) and result.iterations > 2
    lift = Lifting.from_problem(problem)
    assert certify(lift, problem.y, problem.beta, result.Z, result.lam_inner,
                   result.lam_outer).certified


def test_inner_ipm_refuses_the_logistic_loss():
    X, y = varied_data(np.random.default_rng(12), 30, 3, "plain")
    problem = Problem(X, np.where(y > 0, 1.0, -1.0), 0.1, 2, loss="logistic")
    problem = problem.with_patterns(sample_patterns(X, 2, 4, seed=0))
    with pytest.raises(ValueError, match="inner='ipm' solves the squared loss only"):
        get_solver("al", inner="ipm").solve(problem)


def test_inner_ipm_refuses_a_program_above_its_size(monkeypatch):
    from dualnets.solvers import ipm

    monkeypatch.setattr(ipm, "MAX_UNKNOWNS", 10)
    monkeypatch.setattr(ipm, "MAX_WOODBURY_ENTRIES", 10)
    with pytest.raises(ValueError, match=r"inner='ipm': the Newton system fits neither the "
                                         r"fold \(G d / 2 = 64 unknowns, above MAX_UNKNOWNS = "
                                         r"10\) nor Woodbury"):
        get_solver("al", inner="ipm").solve(small_problem())


def wide_problem(depth: int) -> Problem:
    """n small against G d, so that the Newton system is solved by Woodbury."""
    X, y = varied_data(np.random.default_rng(13), 14, 5, "plain")
    problem = Problem(X, y, 0.1, 3, depth=depth)
    return problem.with_patterns(sample_patterns(X, 3, 8, seed=1, depth=depth))


@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("depth", [2, 3])
def test_the_woodbury_solve_is_the_folded_one(depth, clamp, monkeypatch):
    """Plain, and clamped (the unclamped factorization made to fail): the conjugate gradients
    it preconditions reach the folded solve either way."""
    from dualnets.solvers.ipm import NewtonSystem
    from dualnets.solvers.torch_ops import TorchLifting

    problem = wide_problem(depth)
    ops = TorchLifting(Lifting.from_problem(problem), problem.y)
    system = NewtonSystem(ops)
    assert system.route == "woodbury"
    if clamp:
        built = []
        plain = NewtonSystem._low_rank

        def only_clamped(self, p, q, C, clamped):
            built.append(clamped)
            return plain(self, p, q, C, clamped) if clamped else None

        monkeypatch.setattr(NewtonSystem, "_low_rank", only_clamped)
    rng = torch.Generator().manual_seed(depth)
    rand = lambda *shape: torch.rand(shape, generator=rng, dtype=torch.float64)  # noqa: E731
    theta_i = rand(ops.G, ops.n) + 0.1
    theta_o = rand(ops.B, ops.n) + 0.1 if depth == 3 else None
    s0, s1, l0, l1 = random_cone_points(ops.G, ops.d, seed=depth)
    soc = SecondOrderScaling(s0, s1, l0, l1)
    rhs_z, rhs_t = rand(ops.G, ops.d) - 0.5, rand(ops.G) - 0.5
    system.route = "fold"
    folded = system.factorize(theta_i, theta_o, soc)(rhs_z, rhs_t)
    system.route = "woodbury"
    system.fold.factorize = lambda *args: (lambda rhs: None)    # Woodbury alone, no fallback
    woodbury = system.factorize(theta_i, theta_o, soc)(rhs_z, rhs_t)
    if clamp:
        assert built[-2:] == [False, True]
    for a, b in zip(woodbury, folded):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("depth", [2, 3])
def test_ipm_with_woodbury_matches_clarabel(depth):
    assert_matches_clarabel(wide_problem(depth))


@pytest.mark.parametrize("depth", [2, 3])
def test_ipm_by_woodbury_alone_matches_clarabel(depth, monkeypatch):
    """Above the fold's size only Woodbury (and the conjugate gradients it preconditions)
    solves: d = 200 at n = 1600 has G d / 2 = 20000 unknowns."""
    from dualnets.solvers import ipm

    monkeypatch.setattr(ipm, "MAX_UNKNOWNS", 0)
    problem = wide_problem(depth)
    assert ipm.newton_route(problem.n, 2 * problem.n_patterns * problem.m1, problem.d) \
        == "woodbury"
    assert_matches_clarabel(problem)


@pytest.mark.parametrize("n, pieces", [(7, 1), (10, 3), (64, 4)])
def test_the_lower_gram_is_the_product(n, pieces):
    from dualnets.solvers.ipm import lower_gram

    Q = torch.randn((n, 9), generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    torch.testing.assert_close(lower_gram(Q, pieces), Q @ Q.T, rtol=1e-13, atol=1e-13)


def test_ridged_cholesky_ridges_only_the_blocks_that_fail():
    from dualnets.solvers.al_newton import ridged_cholesky

    def block_cholesky(M):                       # as ipm takes it: each block by its own top
        return ridged_cholesky(M, M.diagonal(dim1=1, dim2=2).amax(1))

    rng = torch.Generator().manual_seed(5)
    good = torch.randn((3, 4), generator=rng, dtype=torch.float64)
    singular = torch.randn((4, 2), generator=rng, dtype=torch.float64)
    M = torch.stack([good.T @ good + torch.eye(4, dtype=torch.float64),
                     singular @ singular.T])                   # rank 2 of 4
    L = block_cholesky(M.clone())
    torch.testing.assert_close(L[0] @ L[0].T, M[0], rtol=1e-12, atol=1e-12)
    shift = (L[1] @ L[1].T - M[1]).diagonal()
    assert bool((shift > 0).all()) and float(shift.max()) <= 1e-6 * float(M[1].diagonal().max())
    assert block_cholesky(-torch.eye(3, dtype=torch.float64)[None].clone()) is None


def test_preconditioned_cg_corrects_a_rough_preconditioner(monkeypatch):
    from dualnets.solvers import ipm

    rng = torch.Generator().manual_seed(6)
    F = torch.randn((30, 30), generator=rng, dtype=torch.float64)
    H = F @ F.T + 30 * torch.eye(30, dtype=torch.float64)
    r = torch.randn(30, generator=rng, dtype=torch.float64)
    rough = torch.diag(1.0 / H.diagonal())                    # Jacobi: far from H^{-1}
    with monkeypatch.context() as patch:
        patch.setattr(ipm, "CG_STEPS", 3)
        assert ipm.preconditioned_cg(lambda v: H @ v, lambda v: rough @ v, r) is None
    x = ipm.preconditioned_cg(lambda v: H @ v, lambda v: torch.linalg.solve(
        H + 3 * torch.eye(30, dtype=torch.float64), v), r)     # a shifted inverse: a few steps
    torch.testing.assert_close(H @ x, r, rtol=0, atol=ipm.LOW_RANK_RESIDUAL * float(r.norm()))


def test_refinement_recovers_the_dual_residual_from_inexact_solves(monkeypatch):
    """Every Newton solve made inexact (each entry off by a relative 1e-8, as the normal
    equations' round-off at n = 64000): without refinement the dual residual stalls and the
    run ends uncertified; with it the run certifies the Clarabel optimum."""
    from dualnets.solvers import ipm

    X, y = varied_data(np.random.default_rng(11), 60, 4, "plain")
    problem = Problem(X, y, 0.1, 2, depth=3).with_patterns(sample_patterns(X, 2, 8, seed=0))
    exact = ipm.NewtonSystem.factorize

    def inexact(self, theta_i, theta_o, soc):
        solve = exact(self, theta_i, theta_o, soc)
        rng = torch.Generator().manual_seed(0)
        off = lambda v: v * (1 + 1e-8 * torch.randn(v.shape, generator=rng,  # noqa: E731
                                                     dtype=v.dtype))

        def perturbed(rhs_z, rhs_t, correction=False):
            out = solve(rhs_z, rhs_t, correction)
            return None if out is None else (off(out[0]), off(out[1]))
        return None if solve is None else perturbed

    monkeypatch.setattr(ipm.NewtonSystem, "factorize", inexact)
    with monkeypatch.context() as patch:
        patch.setattr(ipm, "REFINEMENTS", 0)
        plain = get_solver("ipm", max_iters=100).solve(problem)
    assert plain.status != "optimal" and abs(plain.trace[-1][3]) > TOL
    refined = get_solver("ipm", max_iters=100).solve(problem)
    assert refined.info["refinements"] >= 1
    assert_result_matches_clarabel(problem, refined)


def test_ridged_cholesky_of_one_matrix_grows_its_ridge_to_the_scale_and_no_further():
    from dualnets.solvers.al_newton import RIDGE, ridged_cholesky

    singular = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    L = ridged_cholesky(singular.clone(), 1.0)
    shift = (L @ L.T - singular).diagonal()
    assert float(shift.min()) >= RIDGE and float(shift.max()) <= 1e-6
    torch.testing.assert_close(ridged_cholesky(torch.eye(2, dtype=torch.float64), 1.0, 0.5),
                               (1.5 ** 0.5) * torch.eye(2, dtype=torch.float64))
    assert ridged_cholesky(-torch.eye(2, dtype=torch.float64), 1.0) is None
    assert ridged_cholesky(torch.zeros((2, 2), dtype=torch.float64), 0.0) is None
