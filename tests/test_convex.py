"""The exact program: brute force, rebuild, solver agreement, certificate, seeding, public cases."""

import json

import numpy as np
import pytest
import torch
from conftest import best_projected_adam, cases_dir, tiny_problem

from dualnets.certificate import certify, violation_scale, zero_is_optimal
from dualnets.io import load_problem
from dualnets.lifting import Lifting
from dualnets.metrics import evaluate
from dualnets.network import ParallelNet, ParallelReLUNet, nc_objective, norm_violation
from dualnets.pattern_specs import apply_spec
from dualnets.problem import Problem
from dualnets.patterns import patterns_from_network, sample_patterns
from dualnets.rebuild import rebuild_network
from dualnets.registry import available_solvers, get_solver

TINY = [dict(seed=s, n=n, depth=depth) for s, n, depth in
        [(0, 6, 3), (1, 6, 3), (2, 7, 3), (3, 7, 3), (4, 8, 3), (5, 7, 2)]]


@pytest.fixture(scope="module")
def tiny_solutions():
    out = []
    for spec in TINY:
        problem = apply_spec(tiny_problem(spec["seed"], n=spec["n"], depth=spec["depth"]),
                             "exhaustive")
        out.append((problem, evaluate(problem, get_solver("clarabel").solve(problem))))
    return out


def test_brute_force_exhaustive_optimum_never_beaten(tiny_solutions):
    """Projected training of real networks never beats the exhaustive convex optimum, and the
    rebuilt network attains it, so the optimum is exactly the best NC value."""
    for problem, row in tiny_solutions:
        assert row["certified"], row
        best = best_projected_adam(problem, restarts=48, steps=1500)
        assert row["objective"] <= best * (1 + 1e-6), (problem.name, row["objective"], best)
        assert row["network_objective"] == pytest.approx(row["objective"], rel=1e-6)
        assert row["norm_violation"] <= 1e-9


def test_rebuilt_network_attains_objective(tiny_solutions):
    for problem, row in tiny_solutions:
        assert abs(row["network_objective"] / row["objective"] - 1) <= 1e-6


def test_rebuild_algebra_on_random_feasible_point():
    """For any feasible z (here: patterns of random networks, z scaled from those networks),
    rebuild gives a network with ||W1_k||_F = 1, ||w2_k|| = |w3_k| and NC = convex objective."""
    problem = apply_spec(tiny_problem(3, n=20, d=3), "random:15")
    lift = Lifting.from_problem(problem)
    rng = np.random.default_rng(0)
    sol = get_solver("clarabel").solve(problem)
    Z = sol.Z * rng.uniform(0.5, 1.5, size=(lift.n_blocks, 1)).repeat(lift.m1, axis=0)
    net = rebuild_network(lift, Z)
    np.testing.assert_allclose(net.first_layer_norms(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(net.w2, axis=1), np.abs(net.w3), rtol=1e-12)
    cert = certify(lift, problem.y, problem.beta, Z)
    assert cert.constraint_violation < 1e-8
    assert nc_objective(net, problem.X, problem.y, problem.beta) == pytest.approx(
        cert.objective, rel=1e-9)


@pytest.fixture(scope="module")
def agreement_problem():
    return apply_spec(tiny_problem(7, n=40, d=4, beta=0.2), "random:12")


@pytest.mark.parametrize("solver, rel", [("ecos", 1e-6), ("scs", 1e-4)])
def test_solvers_agree_with_clarabel(agreement_problem, solver, rel):
    ref = evaluate(agreement_problem, get_solver("clarabel").solve(agreement_problem))
    row = evaluate(agreement_problem, get_solver(solver).solve(agreement_problem))
    assert row["objective"] == pytest.approx(ref["objective"], rel=rel)
    assert row["network_objective"] == pytest.approx(ref["objective"], rel=rel)


def test_mosek_skipped_with_reason():
    ok, why = get_solver("mosek").supports(tiny_problem(0))
    if ok:
        pytest.skip("MOSEK is licensed here")
    assert "MOSEK" in why


def test_certificate_at_optimum_and_perturbed(agreement_problem):
    problem = agreement_problem
    lift = Lifting.from_problem(problem)
    sol = get_solver("clarabel").solve(problem)
    cert = certify(lift, problem.y, problem.beta, sol.Z, sol.lam_inner, sol.lam_outer)
    assert 0 <= cert.relative_gap <= 1e-6 and cert.certified
    # scaling blocks keeps every cone constraint: a feasible, suboptimal point
    for factor in (0.9, 1.1):
        pert = certify(lift, problem.y, problem.beta, factor * sol.Z, sol.lam_inner,
                       sol.lam_outer)
        assert pert.constraint_violation <= cert.constraint_violation * 1.2 + 1e-12
        assert pert.relative_gap > 1e-4 and not pert.certified
    # without multipliers the gap is still a valid (larger) bound
    loose = certify(lift, problem.y, problem.beta, sol.Z)
    assert loose.relative_gap >= cert.relative_gap - 1e-12


@pytest.mark.parametrize("depth", [2, 3])
def test_clarabel_returns_the_exact_zero_where_y_is_zero(depth):
    base = tiny_problem(2, n=12, depth=depth)
    problem = Problem(base.X, np.zeros(base.n), 0.1, 2, depth=depth)
    problem = problem.with_patterns(sample_patterns(problem.X, 2, 6, seed=1, depth=depth))
    lift = Lifting.from_problem(problem)
    assert zero_is_optimal(lift, problem.y, problem.beta)
    result = get_solver("clarabel").solve(problem)
    assert result.status == "optimal" and "before the solve" in result.message
    assert not np.any(result.Z)
    cert = certify(lift, problem.y, problem.beta, result.Z)
    assert cert.certified and cert.objective == 0.0 and cert.relative_gap == 0.0


def test_zero_is_not_optimal_on_a_fitted_target(agreement_problem):
    problem = agreement_problem
    assert not zero_is_optimal(Lifting.from_problem(problem), problem.y, problem.beta)
    assert "before the solve" not in get_solver("clarabel").solve(problem).message


def test_violations_are_absolute_where_y_is_zero():
    """Without targets there is no scale: a violation of 1e-11 reads 1e-11, not 1e289."""
    base = tiny_problem(3, n=10)
    problem = Problem(base.X, np.zeros(base.n), 0.1, 2, depth=3)
    problem = problem.with_patterns(sample_patterns(problem.X, 2, 5, seed=0, depth=3))
    lift = Lifting.from_problem(problem)
    Z = np.zeros((lift.n_groups, problem.d))
    Z[0] = 1e-11 * np.random.default_rng(0).standard_normal(problem.d)  # off its pattern
    worst = -min(lift.inner_values(lift.activations(Z)).min(), 0.0)
    assert worst > 0
    assert violation_scale(problem.y) == 1.0
    assert certify(lift, problem.y, problem.beta, Z).constraint_violation == worst
    assert violation_scale(2.0 * np.ones(3)) == violation_scale(np.array([-2.0, 1.0])) == 2.0


def test_small_feasible_moves_never_lower_objective(agreement_problem):
    """Perturbation check: convex combinations with other feasible points, and block rescalings,
    never beat the reported optimum."""
    problem = agreement_problem
    lift = Lifting.from_problem(problem)
    sol = get_solver("clarabel").solve(problem)
    best = certify(lift, problem.y, problem.beta, sol.Z).objective
    rng = np.random.default_rng(1)
    for _ in range(30):
        other = sol.Z * rng.uniform(0, 2, size=(lift.n_blocks, 1)).repeat(lift.m1, axis=0)
        for eps in (1e-3, 1e-2):
            moved = (1 - eps) * sol.Z + eps * other
            cert = certify(lift, problem.y, problem.beta, moved)
            assert cert.objective >= best * (1 - 1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_seeding_with_network_patterns(seed):
    """Over patterns that include a random network's, the optimum is <= that network's NC."""
    problem = tiny_problem(seed, n=25, d=3, beta=0.3)
    g = torch.Generator().manual_seed(seed)
    net = ParallelReLUNet.random(5, problem.d, problem.m1, generator=g).to_net()
    assert norm_violation(net) == 0.0
    pats = sample_patterns(problem.X, problem.m1, 5, seed).concat(
        patterns_from_network(net, problem.X))
    seeded = problem.with_patterns(pats)
    row = evaluate(seeded, get_solver("clarabel").solve(seeded))
    nc = nc_objective(net, problem.X, problem.y, problem.beta)
    assert row["certified"]
    assert row["objective"] <= nc * (1 + 1e-7) + 1e-9


def test_depth2_matches_two_layer_problem():
    """Depth 2 is the Pilanci-Ergen program: its rebuilt network is a two-layer net whose
    weight-decay objective equals the convex optimum."""
    problem = apply_spec(tiny_problem(2, n=30, d=3, m1=1, depth=2), "random:20")
    row = evaluate(problem, get_solver("clarabel").solve(problem))
    assert row["certified"]
    assert row["network_objective"] == pytest.approx(row["objective"], rel=1e-6)


def _public_cases():
    root = cases_dir()
    return sorted(root.glob("*.npz")) if root else []


@pytest.mark.skipif(cases_dir() is None, reason="public cases not available")
@pytest.mark.parametrize("path", _public_cases(), ids=lambda p: p.stem)
def test_public_cases(path):
    refs = {r["name"]: r for r in json.loads((path.parent / "references.json").read_text())}
    problem = load_problem(path)
    row = evaluate(problem, get_solver("clarabel").solve(problem))
    assert row["objective"] == pytest.approx(refs[path.stem]["ref_objective"], rel=1e-5)
    assert 0 <= row["relative_gap"] <= 1e-6 and row["certified"]
    if "ref_exhaustive" in refs[path.stem]:
        exh = apply_spec(problem, "exhaustive")
        row = evaluate(exh, get_solver("clarabel").solve(exh))
        assert row["objective"] == pytest.approx(refs[path.stem]["ref_exhaustive"], rel=1e-5)


def test_registry_lists_cvxpy_solvers():
    assert {"clarabel", "ecos", "scs", "mosek"} <= set(available_solvers())
    with pytest.raises(ValueError, match="unknown solver 'nope'; choose one of"):
        get_solver("nope")


def test_parallel_net_shapes_checked():
    with pytest.raises(ValueError, match=r"expected W1 \(K, d, m1\)"):
        ParallelNet(np.ones((2, 3)), np.ones((2, 1)), np.ones(2))
