"""Exact pricing (dualnets.pricing), the global lower bound and the `solve --json` global keys."""

import json

import numpy as np
import pytest
from conftest import tiny_problem

from dualnets.certificate import certify
from dualnets.cli import main
from dualnets.dual_search import dual_search
from dualnets.exhaustive import TooLargeToEnumerate
from dualnets.io import save_problem
from dualnets.lifting import Lifting
from dualnets.metrics import GLOBAL_KEYS, evaluate, global_certificate
from dualnets.network import ParallelNet, nc_objective
from dualnets.pattern_specs import SpecContext, apply_spec
from dualnets.pricing import build_pricing_set, cone_projection_norm, price_all
from dualnets.problem import Problem
from dualnets.registry import get_solver


def exhaustive_optimum(p: Problem) -> float:
    """The reference: Clarabel over every enumerated pattern."""
    ex = apply_spec(p, "exhaustive")
    res = get_solver("clarabel").solve(ex)
    return certify(Lifting.from_problem(ex), p.y, p.beta, res.Z).objective


def search_from_random(p: Problem, seed: int):
    start = apply_spec(p, "random:5", SpecContext(seed=seed))
    out = dual_search(start, get_solver("clarabel"), seed=seed)
    found = certify(Lifting.from_problem(out.problem), p.y, p.beta, out.result.Z).objective
    return out, found


def check_reaches_and_certifies(pid: int, seed: int, n: int) -> None:
    p = tiny_problem(pid, n=n, d=2)
    best = exhaustive_optimum(p)
    out, found = search_from_random(p, seed)
    assert abs(found - best) <= 1e-6 * best, (pid, seed, found, best)
    assert out.pricing == "exact"
    assert out.global_lower_bound <= best * (1 + 1e-9)
    row = evaluate(out.problem, out.result)
    glob = global_certificate(out.problem, out.result, row["network_objective"])
    assert glob["globally_certified"] and glob["global_lower_bound"] <= best * (1 + 1e-9)


@pytest.mark.parametrize("pid", range(10))
def test_random_five_dual_search_reaches_and_certifies_the_exhaustive_optimum(pid):
    """The fast subset: 10 problems (n = 6), one seed each (the seeds cycle through 0..4)."""
    check_reaches_and_certifies(pid, pid % 5, 6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("pid", range(10))
def test_random_five_dual_search_reaches_the_optimum_all_fifty(pid, seed):
    """The full 10 problems x 5 seeds of issue 13, at n = 8 (about 2 minutes)."""
    check_reaches_and_certifies(pid, seed, 8)


def _unit_subnetworks(rng, count: int, d: int, m1: int):
    W1 = rng.standard_normal((count, d, m1))
    W1 /= np.linalg.norm(W1.reshape(count, -1), axis=1)[:, None, None]
    w2 = rng.standard_normal((count, m1))
    w2 /= np.linalg.norm(w2, axis=1, keepdims=True)
    return W1, w2


@pytest.mark.parametrize("m1, depth, d", [(2, 3, 2), (1, 3, 2), (2, 2, 2), (3, 2, 2), (2, 3, 3)])
def test_prices_bracket_every_unit_subnetwork(m1, depth, d):
    """lower <= upper, and no unit sub-network (of 20000 random ones, with their best output
    sign) is worth more than the upper price; depth 2 prices single neurons."""
    p = tiny_problem(7, n=6 if d == 2 else 5, d=d, m1=m1, depth=depth)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(p.n)
    prices = price_all(build_pricing_set(p), v, p.beta, 5)
    W1, w2 = _unit_subnetworks(rng, 20000, d, m1 if depth == 3 else 1)
    outputs = ParallelNet(W1, w2, np.ones(20000), depth=depth).subnetwork_outputs(p.X)
    sampled = np.abs(outputs @ v).max()
    assert prices.lower <= prices.upper * (1 + 1e-9)
    assert sampled <= prices.upper * (1 + 1e-9)
    assert prices.upper - prices.lower <= 1e-6 * prices.upper


def test_cone_projection_norm_is_the_max_over_the_cone():
    G = np.array([[1.0, 0.0], [0.0, 1.0]])            # the positive quadrant
    assert cone_projection_norm(G, np.array([3.0, -4.0]))[0] == pytest.approx(3.0)
    assert cone_projection_norm(G, np.array([-1.0, -1.0]))[0] == pytest.approx(0.0, abs=1e-12)
    assert cone_projection_norm(np.zeros((0, 2)), np.array([3.0, 4.0]))[0] == pytest.approx(5.0)


def test_enumeration_refuses_what_it_cannot_price():
    with pytest.raises(TooLargeToEnumerate, match="exact pricing supports m1 <= 2 at depth 3, "
                                                  "got m1 = 3"):
        build_pricing_set(tiny_problem(0, n=6, d=2, m1=3))
    with pytest.raises(TooLargeToEnumerate, match="too many activation regions"):
        build_pricing_set(tiny_problem(0, n=60, d=5))


def _solve_json(tmp_path, p: Problem, spec: str, seed: int = 0) -> dict:
    save_problem(p, tmp_path / "p.npz")
    out = tmp_path / "out.json"
    assert main(["solve", str(tmp_path / "p.npz"), "--patterns", spec, "--seed", str(seed),
                 "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("m1, depth", [(2, 3), (1, 3), (2, 2), (3, 2)])
def test_solve_json_is_globally_certified_on_tiny_problems(tmp_path, m1, depth):
    p = tiny_problem(3, n=6, d=2, m1=m1, depth=depth)
    data = _solve_json(tmp_path, p, "random:5,dual-search", seed=1)
    assert data["globally_certified"] is True and data["global_gap"] <= 1e-6
    assert all(r["pricing"] == "exact" for r in data["pattern_log"])
    if m1 <= 2:
        assert data["global_lower_bound"] <= exhaustive_optimum(p) * (1 + 1e-9)
    assert data["global_lower_bound"] <= data["network_objective"]


def test_solve_json_global_keys_are_null_without_exact_pricing(tmp_path):
    rng = np.random.default_rng(0)
    X = np.hstack([rng.standard_normal((40, 9)), np.ones((40, 1))])
    p = Problem(X, np.sin(X[:, 0]), 0.1, 2)
    data = _solve_json(tmp_path, p, "random:5")
    assert all(data[k] is None for k in GLOBAL_KEYS)
    m1_three = _solve_json(tmp_path, tiny_problem(0, n=6, d=2, m1=3), "random:5")
    assert all(m1_three[k] is None for k in GLOBAL_KEYS)


def test_sampled_patterns_give_a_valid_but_loose_bound(tmp_path):
    """Over 3 random patterns the convex optimum is not global: the bound stays below the
    exhaustive optimum and certifies nothing."""
    p = tiny_problem(1, n=6, d=2)
    data = _solve_json(tmp_path, p, "random:3")
    best = exhaustive_optimum(p)
    assert data["global_lower_bound"] <= best
    assert data["globally_certified"] is False and data["global_gap"] > 1e-6


@pytest.mark.parametrize("pid", range(3))
def test_no_adam_network_beats_a_global_lower_bound(pid):
    p = tiny_problem(pid, n=6, d=2)
    bounds = []
    for spec in ("random:3", "random:5,dual-search"):
        q = apply_spec(p, spec, SpecContext(seed=pid))
        res = get_solver("clarabel").solve(q)
        bounds.append(global_certificate(q, res, evaluate(q, res)["network_objective"])
                      ["global_lower_bound"])
    adam = get_solver("adam", K=8, lrs=(1e-1, 1e-2), epochs=300, seed=pid).solve(p)
    nc = nc_objective(adam.network, p.X, p.y, p.beta)
    assert max(bounds) <= nc * (1 + 1e-12)


@pytest.mark.parametrize("kind", ["duplicate rows", "constant column"])
def test_degenerate_data_is_priced_and_certified(kind):
    p = tiny_problem(4, n=6, d=2)
    if kind == "duplicate rows":
        X, y = np.vstack([p.X, p.X[:2]]), np.concatenate([p.y, p.y[:2] + 0.05])
    else:
        X, y = np.hstack([p.X[:, :1], np.full((p.n, 1), 0.5), p.X[:, 1:]]), p.y
    q = Problem(X, y, p.beta, 2)
    best = exhaustive_optimum(q)
    out, found = search_from_random(q, 0)
    assert abs(found - best) <= 1e-6 * best
    assert out.pricing == "exact" and out.global_lower_bound <= best * (1 + 1e-9)
    assert out.rounds[-1]["global_gap"] <= 1e-7
