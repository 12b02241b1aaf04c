"""The logistic loss end to end (issue 14): its formulas, the certificate, brute force on tiny
problems, agreement of ``al`` with a conic solver, the Newton pieces, baselines, search, and
the edges (labels, problem files, CLI, runs, sweeps).

Reference formulas here are written independently of :mod:`dualnets.losses` (autograd, a
numerical supremum, a dense grid), so that the tests check the module, not copy it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from conftest import best_projected_adam
from test_al import assert_folded_solve_is_the_dense_one, assert_newton_matrix_is_the_jacobian
from dualnets.certificate import certify, dual_point, scaled_dual
from dualnets.cli import main
from dualnets.dual_search import SearchConfig, default_search_solver, dual_search
from dualnets.io import load_problem, save_problem
from dualnets.lifting import Lifting
from dualnets.losses import LOSSES, get_loss
from dualnets.metrics import evaluate, global_certificate
from dualnets.network import nc_objective
from dualnets.pattern_specs import SpecContext, apply_spec
from dualnets.patterns import sample_patterns
from dualnets.problem import Problem
from dualnets.registry import get_solver
from dualnets.result import Result
from dualnets.runner import RunSpec, run
from dualnets.solvers.al_newton import NewtonInner
from dualnets.solvers.cvxpy_solver import ClarabelSolver
from dualnets.solvers.torch_ops import TorchLifting
from dualnets.sweep import load_config, parse_config

TOL = 1e-6


def logistic_problem(seed: int, n: int = 6, d: int = 2, m1: int = 2, depth: int = 3,
                     beta: float = 0.1, P: int | None = None) -> Problem:
    """Gaussian data with a ones column and noisy labels sign(sin 2 x_0); exhaustive patterns
    when ``P`` is None, else ``P`` sampled ones."""
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    y = np.where(np.sin(2 * X[:, 0]) + 0.3 * rng.standard_normal(n) >= 0, 1.0, -1.0)
    problem = Problem(X, y, beta, m1, depth=depth, loss="logistic", name=f"logistic{seed}")
    if P is None:
        return apply_spec(problem, "exhaustive")
    return problem.with_patterns(sample_patterns(X, m1, P, seed, depth))


def conic(problem: Problem):
    """The conic reference: SCS at 1e-9 (Clarabel stalls on the tiny exp-cone programs)."""
    return get_solver("scs", tol=1e-9).solve(problem)


def certificate(problem: Problem, result, **kwargs):
    return certify(Lifting.from_problem(problem), problem.y, problem.beta, result.Z,
                   result.lam_inner, result.lam_outer, loss=problem.loss, **kwargs)


# the formulas -------------------------------------------------------------------------------
def _targets(name: str, rng, n: int = 9) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, -1.0, 1.0) if name == "logistic" else \
        rng.standard_normal(n)


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradient_and_hessian_are_the_derivatives_of_the_value(name):
    loss, rng = get_loss(name), np.random.default_rng(0)
    y = torch.tensor(_targets(name, rng))
    yhat = torch.tensor(3 * rng.standard_normal(y.numel()), requires_grad=True)
    (grad,) = torch.autograd.grad(loss.value(yhat, y), yhat, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), yhat)      # the Hessian is diagonal
    torch.testing.assert_close(loss.gradient(yhat.detach(), y), grad.detach(), rtol=1e-12,
                               atol=1e-15)
    torch.testing.assert_close(loss.hessian_diagonal(yhat.detach(), y), second, rtol=1e-12,
                               atol=1e-15)
    assert float(second.max()) <= loss.curvature
    assert float(loss.value(yhat.detach().numpy(), y.numpy())) == pytest.approx(
        float(loss.value(yhat.detach(), y)), rel=1e-15)


@pytest.mark.parametrize("name", list(LOSSES))
def test_fenchel_young_holds_with_equality_at_the_gradient_only(name):
    """``L(u) + L*(v) >= v'u``, with equality iff ``v = grad L(u)``."""
    loss, rng = get_loss(name), np.random.default_rng(1)
    y = _targets(name, rng)
    u = 2 * rng.standard_normal(y.size)
    v = loss.gradient(u, y)
    assert float(loss.value(u, y)) - loss.dual_value(v, y, 1.0) == pytest.approx(
        float(v @ u), rel=1e-13, abs=1e-13)
    for t in (0.3, 0.9):
        w = 2 * rng.standard_normal(y.size)
        assert float(loss.value(w, y)) - loss.dual_value(v, y, t) >= t * float(v @ w)


def test_logistic_conjugate_is_the_supremum():
    """``-L*(t v) = -sup_u (t v'u - L(u))``, coordinate by coordinate, numerically."""
    loss, rng = get_loss("logistic"), np.random.default_rng(2)
    y = _targets("logistic", rng, 6)
    v = loss.gradient(2 * rng.standard_normal(6), y)
    for t in (0.2, 0.7, 1.0):
        sup = sum(-minimize_scalar(
            lambda u, i=i: -(t * v[i] * u - np.logaddexp(0.0, -y[i] * u)),
            bounds=(-60, 60), method="bounded", options={"xatol": 1e-12}).fun for i in range(6))
        assert loss.dual_value(v, y, t) == pytest.approx(-sup, rel=1e-9)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("t_max", [0.05, 0.6, 1.0, 20.0])
def test_best_scale_beats_every_point_of_a_grid(name, t_max):
    loss, rng = get_loss(name), np.random.default_rng(3)
    y = _targets(name, rng)
    v = loss.gradient(2 * rng.standard_normal(y.size), y)
    cap = min(t_max, loss.scale_cap(v, y))
    t = loss.best_scale(v, y, cap)
    assert 0 <= t <= cap
    grid = [loss.dual_value(v, y, s) for s in np.linspace(0, cap, 20001)]
    best = loss.dual_value(v, y, t)
    assert best >= max(grid) - 1e-14 * abs(max(grid))


def test_dual_points_outside_the_domain_are_clipped_before_scaling():
    """A coordinate with ``-y_i v_i < 0`` is outside dom L* at every scale: -inf, never a
    valid bound; the clipped point is in the domain and its scale keeps ``t p_i <= 1``."""
    loss = get_loss("logistic")
    y, v = np.array([1.0, -1.0, 1.0]), np.array([-0.4, -0.2, 1.5])   # p = (0.4, -0.2, -1.5)
    assert loss.dual_value(v, y, 0.5) == -np.inf
    clipped = loss.clip(v, y)
    np.testing.assert_array_equal(-y * clipped, [0.4, 0.0, 0.0])
    dual, t = scaled_dual(clipped, y, 1.0, 1e-3, loss="logistic")
    assert t * 0.4 <= 1.0 and np.isfinite(dual) and dual > 0
    assert loss.scale_cap(clipped, y) * 0.4 <= 1.0


# the certificate, brute force and agreement -------------------------------------------------
BRUTE = [dict(seed=0, m1=1, depth=3), dict(seed=1, m1=2, depth=3), dict(seed=2, m1=2, depth=2)]
BRUTE_SLOW = [dict(seed=s, m1=m1, depth=depth, beta=beta) for s, m1, depth, beta in
              [(3, 2, 3, 0.01), (4, 2, 3, 1.0), (5, 1, 3, 10.0), (6, 1, 2, 0.03),
               (7, 2, 2, 3.0)]]


def _brute_force(case: dict, restarts: int = 32, steps: int = 1000) -> None:
    problem = logistic_problem(**case)
    row = evaluate(problem, conic(problem))
    assert row["certified"] and 0 <= row["relative_gap"] <= TOL, row
    assert row["objective"] <= best_projected_adam(problem, restarts, steps) * (1 + TOL)
    assert row["network_objective"] == pytest.approx(row["objective"], rel=TOL)
    assert row["norm_violation"] <= 1e-9


@pytest.mark.parametrize("case", BRUTE)
def test_brute_force_exhaustive_optimum_is_attained_and_never_beaten(case):
    """The convex optimum over every realizable pattern is <= the best of many restarts of
    projected Adam on the logistic NC objective, and the rebuilt network attains it (fewer
    restarts here than in the slow test below)."""
    _brute_force(case, restarts=16, steps=500)


@pytest.mark.slow
@pytest.mark.parametrize("case", BRUTE_SLOW)
def test_brute_force_over_more_widths_and_betas(case):
    _brute_force(case)


AGREE = [dict(seed=s, m1=m1, depth=depth, beta=beta, n=30, d=3, P=8) for s, m1, depth, beta in
         [(0, 1, 3, 0.01), (1, 2, 3, 0.1), (2, 3, 3, 1.0), (3, 2, 2, 10.0), (4, 3, 2, 0.03),
          (5, 1, 2, 0.3)]]


@pytest.mark.parametrize("case", AGREE)
def test_al_agrees_with_the_conic_solver(case):
    problem = logistic_problem(**case)
    ref, ours = (certificate(problem, solver.solve(problem)) for solver in
                 (get_solver("scs", tol=1e-9), get_solver("al")))
    assert ref.certified and ours.certified, (ref, ours)
    assert ours.objective == pytest.approx(ref.objective, rel=TOL)


@pytest.mark.parametrize("inner, working_set", [("newton", False), ("fista", True)])
def test_al_certifies_with_either_setting_on_an_easy_problem(inner, working_set):
    problem = logistic_problem(1, m1=2, depth=3, beta=1.0, n=30, d=3, P=8)
    result = get_solver("al", inner=inner, working_set=working_set, max_seconds=60).solve(
        problem)
    cert = certificate(problem, result)
    assert result.status == "optimal" and cert.certified, cert
    assert cert.objective == pytest.approx(certificate(problem, conic(problem)).objective,
                                           rel=TOL)


DEVICES = [("cpu", "float32", 1e-4)] + [
    pytest.param("cuda", dtype, tol, marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                              reason="no GPU"))
    for dtype, tol in (("float64", TOL), ("float32", 1e-4))]


@pytest.mark.parametrize("device, dtype, tol", DEVICES)
def test_al_certifies_the_logistic_program_in_each_dtype_and_device(device, dtype, tol):
    problem = logistic_problem(2, m1=3, depth=2, beta=0.03, n=30, d=3, P=8)
    result = get_solver("al", device=device, dtype=dtype, max_seconds=60).solve(problem)
    cert = certificate(problem, result, gap_tol=tol, violation_tol=tol)
    assert result.info["device"] == device and result.status == "optimal" and cert.certified
    assert cert.objective == pytest.approx(certificate(problem, conic(problem)).objective,
                                           rel=tol)


@pytest.fixture(scope="module")
def solved():
    problem = logistic_problem(1, m1=2, depth=3, beta=0.3, n=30, d=3, P=8)
    return problem, conic(problem)


def test_certificate_is_tight_at_the_optimum(solved):
    problem, result = solved
    cert = certificate(problem, result)
    assert 0 <= cert.relative_gap <= TOL and cert.constraint_violation <= TOL


def test_certificate_is_positive_away_from_the_optimum(solved):
    """Feasible moves (each block rescaled by a positive factor, some dropped) and random
    multipliers: the gap stays >= 0 (weak duality), and > 0 once the objective is above the
    optimum."""
    problem, result = solved
    lift, rng = Lifting.from_problem(problem), np.random.default_rng(5)
    base = certificate(problem, result)
    optimum = base.objective
    for factor in (0.999, 1.001):
        moved = certificate(problem, Result("scs", "optimal", Z=factor * result.Z,
                                            lam_inner=result.lam_inner,
                                            lam_outer=result.lam_outer))
        assert moved.objective > optimum and moved.relative_gap > 0
    for _ in range(20):
        scale = np.repeat(rng.uniform(0, 2, lift.n_blocks) * (rng.random(lift.n_blocks) < 0.8),
                          lift.m1)
        lam_i = rng.random((lift.n_groups, problem.n)) * rng.uniform(0, 2)
        lam_o = rng.random((lift.n_blocks, problem.n)) * rng.uniform(0, 2)
        for lams in ((None, None), (lam_i, lam_o), (result.lam_inner, result.lam_outer)):
            cert = certify(lift, problem.y, problem.beta, scale[:, None] * result.Z, *lams,
                           loss="logistic")
            # rescaled blocks keep every cone: only SCS's own round-off violation, scaled
            assert cert.constraint_violation <= 2 * base.constraint_violation and \
                cert.gap >= 0, cert
            if cert.objective > optimum * (1 + 1e-9):
                assert cert.relative_gap > 0


def test_squared_and_logistic_certificates_differ_on_the_same_point(solved):
    """The loss is part of the certificate: the same Z read with the squared loss is another
    program's point (and not its optimum)."""
    problem, result = solved
    lift = Lifting.from_problem(problem)
    log = certify(lift, problem.y, problem.beta, result.Z, loss="logistic")
    sq = certify(lift, problem.y, problem.beta, result.Z)
    assert log.objective != pytest.approx(sq.objective, rel=1e-3)


# the Newton pieces ----------------------------------------------------------------------------
def newton_case(depth: int, seed: int = 6, n: int = 20, d: int = 3, P: int = 6, lam=None):
    problem = logistic_problem(seed, m1=2, depth=depth, n=n, d=d, P=P)
    lift = Lifting.from_problem(problem)
    ops = TorchLifting(lift, problem.y, loss="logistic")
    rng = np.random.default_rng(seed)
    Z = torch.as_tensor(rng.standard_normal((lift.n_groups, problem.d)))
    rows = lambda k: torch.as_tensor(rng.random((k, problem.n))) if lam is None else \
        torch.full((k, problem.n), lam, dtype=torch.float64)   # noqa: E731
    lam_o = rows(lift.n_blocks) if depth == 3 else ops.zeros_outer()
    return problem, ops, ops.workspace(), NewtonInner(ops), rng, Z, rows(lift.n_groups), lam_o


@pytest.mark.parametrize("depth", [2, 3])
def test_logistic_newton_matrix_is_the_jacobian_of_the_gradient(depth):
    """``A'WA + rho B_S'B_S +`` the norms' curvature, with ``W = diag(s (1 - s))`` at Z, times
    V equals the central difference of ``grad f + beta z/||z||`` on the nonzero groups."""
    assert_newton_matrix_is_the_jacobian(newton_case(depth), step=1e-6)


@pytest.mark.parametrize("depth", [2, 3])
def test_logistic_low_rank_newton_solve_equals_the_dense_one(depth):
    problem, ops, ws, newton, rng, Z, lam_i, lam_o = newton_case(depth, seed=8, n=12, P=10,
                                                                 lam=1e3)
    Z[[0, 3, 9]] = 0.0
    ops.al_gradient(Z, lam_i, lam_o, 2.0, ws)
    h = ops.loss.hessian_diagonal(ws.yhat, ops.y)
    active = torch.nonzero(torch.linalg.vector_norm(Z, dim=1) > 0).flatten()
    norms = torch.linalg.vector_norm(Z[active], dim=1)
    p, q, C, scale = newton._local_terms(active, Z[active] / norms[:, None], norms, 2.0,
                                         problem.beta, ws, h=h)
    rhs = torch.as_tensor(rng.standard_normal(active.numel() * problem.d))
    assert 2 * problem.n < rhs.numel() and newton.gram is None
    low, accurate = newton._solve_low_rank(active, p, q, C, rhs, scale, h)
    dense = newton._solve(newton._dense(active, p, q, C, h), rhs, scale)
    assert accurate
    torch.testing.assert_close(low, dense, rtol=1e-8, atol=1e-10 * float(dense.abs().max()))


@pytest.mark.parametrize("depth", [2, 3])
def test_logistic_folded_newton_solve_equals_the_dense_one(depth):
    assert_folded_solve_is_the_dense_one(newton_case(depth, seed=9, n=30, d=3, P=8))


# baselines, search, global bound --------------------------------------------------------------
def test_baseline_trains_the_logistic_nc_objective_and_seeds_a_better_program():
    problem = logistic_problem(2, m1=2, depth=3, beta=0.1, n=30, d=3, P=4)
    res = get_solver("adam", K=8, epochs=300, lrs=(1e-2,), seed=0).solve(problem)
    best = min((r for r in res.info["runs"] if r["status"] != "diverged"),
               key=lambda r: r["objective"])
    nc = nc_objective(res.network, problem.X, problem.y, problem.beta, "logistic")
    assert nc == pytest.approx(best["nc_objective"], rel=1e-12)
    assert nc == pytest.approx(best["objective"], rel=1e-12)        # adam minimizes NC itself
    assert nc < 30 * np.log(2)                                       # it learned something
    seeded = apply_spec(problem.with_patterns(None), "network",
                        SpecContext(seed=0, networks=[res.network]))
    cert = certificate(seeded, conic(seeded))
    assert cert.certified and cert.objective <= nc * (1 + TOL)


def test_search_rounds_default_to_al_on_the_logistic_loss():
    """Clarabel's exp-cone solves stall uncertified on small programs (docs/design.md 9)."""
    problem = logistic_problem(0, P=4, n=10)
    assert default_search_solver(problem) == "al"
    squared = Problem(problem.X, problem.y, problem.beta, problem.m1)
    assert default_search_solver(squared) == "clarabel"          # n = 10 < SMALL_N


def test_exact_dual_search_reaches_the_exhaustive_optimum_with_a_global_bound():
    """Column generation from no pattern, priced exactly against the logistic dual point,
    ends at the optimum over every pattern; its global lower bound is below that optimum and
    within gap_tol of the final objective."""
    full = logistic_problem(2, m1=2, depth=2, beta=0.1)
    reference = conic(full)
    optimum = certificate(full, reference).objective
    out = dual_search(full.with_patterns(None), get_solver("scs", tol=1e-9), SearchConfig())
    assert out.pricing == "exact"
    found = certificate(out.problem, out.result).objective
    assert found == pytest.approx(optimum, rel=TOL)
    assert out.global_lower_bound <= optimum * (1 + 1e-9)
    assert (found - out.global_lower_bound) / found <= SearchConfig().gap_tol
    row = evaluate(full, reference)
    bound = global_certificate(full, reference, row["network_objective"])
    assert bound["globally_certified"] and bound["global_lower_bound"] <= optimum * (1 + 1e-9)


# the edges: labels, files, CLI, runs, sweeps ----------------------------------------------------
@pytest.mark.parametrize("labels, field, match", [
    (dict(y=np.array([1.0, 0.0, 2.0, -1.0])), "y",
     r"y must hold labels -1 and \+1 under the logistic loss, got 2 other values \(0, 2\)"),
    (dict(y_test=np.array([1.0, 0.5])), "y_test",
     r"y_test must hold labels -1 and \+1 under the logistic loss, got 1 other value \(0.5\)"),
])
def test_labels_other_than_plus_minus_one_are_refused(labels, field, match):
    X = np.ones((4, 2))
    kwargs = dict(X=X, y=np.array([1.0, -1.0, 1.0, -1.0]), beta=1.0, loss="logistic")
    if field == "y_test":
        kwargs["X_test"] = np.ones((2, 2))
    with pytest.raises(ValueError, match=match):
        Problem(**(kwargs | labels))
    Problem(**(kwargs | labels | {"loss": "squared"}))        # the squared loss takes them


def test_problem_files_keep_the_loss_and_default_to_squared(tmp_path):
    problem = logistic_problem(0, P=4, n=10)
    save_problem(problem, tmp_path / "p.npz")
    assert load_problem(tmp_path / "p.npz").loss == "logistic"
    np.savez(tmp_path / "old.npz", X=problem.X, y=problem.y, beta=1.0, m1=2)
    assert load_problem(tmp_path / "old.npz").loss == "squared"


@pytest.mark.parametrize("write, args, match", [
    (None, ["make-problem", "--dataset", "diabetes", "--loss", "logistic"],
     r"the targets of diabetes must hold labels -1 and \+1 under the logistic loss"),
    ({"y": np.array([1.0, 3.0, -1.0]), "loss": np.array("logistic")}, ["solve"],
     r"y must hold labels -1 and \+1 under the logistic loss, got 1 other value \(3\) \("),
    ({"y": np.array([1.0, 1.0, -1.0]), "loss": np.array("hinge")}, ["solve"],
     r"loss must be one of squared, logistic, got 'hinge' \(key 'loss' of "),
    ({"y": np.array([1.0, 1.0, -1.0]), "loss": np.array([1, 2])}, ["solve"],
     r"loss must be one of squared, logistic, got an array of dtype int64 and shape \(2,\)"),
])
def test_cli_refuses_bad_labels_and_losses_in_one_line(tmp_path, capsys, write, args, match):
    path = tmp_path / "p.npz"
    if write is None:
        argv = args + ["-o", str(path)]
    else:
        np.savez(path, X=np.ones((3, 2)), beta=1.0, m1=1, **write)
        argv = args + [str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(match, err), err


def test_run_ids_of_squared_runs_are_those_from_before_losses():
    """The squared loss is left out of the hashed key (as a default fold is): ids stored by
    earlier sweeps stay valid; a logistic run has its own id."""
    spec = RunSpec("wine", "al", seed=3, n=40)
    legacy = {k: v for k, v in asdict(spec).items()
              if k not in ("timeout", "loss") and not (k in ("fold", "validation") and v is None)}
    assert spec.run_id == hashlib.sha1(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]
    assert RunSpec("wine", "al", seed=3, n=40, loss="logistic").run_id != spec.run_id


def test_runs_on_the_logistic_loss_certify_report_accuracy_and_skip_what_cannot():
    row = run(RunSpec("wine", "al", n=40, patterns=6, loss="logistic")).row
    assert row["loss"] == "logistic" and row["certified"], row
    assert 0 <= row["test_accuracy"] <= 1 and 0 <= row["train_accuracy"] <= 1
    gated = run(RunSpec("wine", "gated-fista", n=40, patterns=6, loss="logistic")).row
    assert gated["status"] == "skipped" and "got 'logistic'" in gated["message"]
    iris = run(RunSpec("iris", "al", n=40, patterns=4, loss="logistic")).row
    assert iris["parts"] == 3 and iris["certified"] and 0 <= iris["test_accuracy"] <= 1


def test_sweep_takes_the_loss_and_refuses_regression_data_under_it(tmp_path):
    config = parse_config({"datasets": ["wine"], "methods": ["al"], "n": [20],
                           "problem": {"loss": "logistic"}})
    assert {spec.loss for spec in config.specs()} == {"logistic"}
    path = tmp_path / "cfg.toml"
    path.write_text('datasets = ["wine"]\nmethods = ["al"]\n[problem]\nloss = "squared"\n')
    assert {s.loss for s in load_config(path, loss="logistic").specs()} == {"logistic"}
    assert {s.loss for s in load_config(path).specs()} == {"squared"}
    with pytest.raises(ValueError, match="the targets of diabetes must hold labels -1 and"):
        parse_config({"datasets": ["diabetes"], "methods": ["al"], "n": [20],
                      "problem": {"loss": "logistic"}})


def test_clarabel_runs_the_exp_cone_program_without_equilibration():
    solver = ClarabelSolver()
    assert solver.backend_options("logistic")["equilibrate_enable"] is False
    assert "equilibrate_enable" not in solver.backend_options("squared")
    assert ClarabelSolver(equilibrate_enable=True).backend_options("logistic")[
        "equilibrate_enable"] is True


def test_dual_point_of_the_logistic_loss_is_minus_y_times_the_sigmoid():
    y, yhat = np.array([1.0, -1.0, 1.0]), np.array([0.0, 2.0, -3.0])
    np.testing.assert_allclose(dual_point(yhat, y, "logistic"),
                               -y / (1 + np.exp(y * yhat)), rtol=1e-15)
