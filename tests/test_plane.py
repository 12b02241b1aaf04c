"""Rank-2 geometry (dualnets.plane): its enumeration against the LP one of dualnets.exhaustive,
its prices against the general exact pricing and against sampled sub-networks."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import best_projected_adam, tiny_problem

from dualnets.cli import main
from dualnets.dual_search import dual_search
from dualnets.exhaustive import arrangement_cells, mixed_sign_patterns
from dualnets.io import save_problem
from dualnets.metrics import evaluate, global_certificate
from dualnets.network import ParallelNet
from dualnets.pattern_specs import SpecContext, apply_spec
from dualnets.plane import golden_min, plane_of, sector_max
from dualnets.pricing import build_pricing_set, price_all
from dualnets.problem import Problem
from dualnets.registry import get_solver


def planar_data(kind: str, n: int, seed: int) -> np.ndarray:
    """Rank-2 rows of several kinds, degenerate ones included."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    ones = np.stack([x, np.ones(n)], axis=1)
    if kind == "ones":
        return ones
    if kind == "gaussian":
        return rng.standard_normal((n, 2))
    if kind == "duplicates":
        return np.vstack([ones, ones[:3]])
    if kind == "antiparallel_and_zero":
        return np.vstack([ones, -2.5 * ones[:2], np.zeros((1, 2))])
    if kind == "rank2_in_3d":                    # a third column that is a combination
        return np.hstack([ones, (2 * x + 1)[:, None]])
    if kind == "scaled":
        return ones * np.array([1e3, 1e-3])
    raise ValueError(kind)


KINDS = ["ones", "gaussian", "duplicates", "antiparallel_and_zero", "rank2_in_3d", "scaled"]


def as_set(rows: np.ndarray) -> set:
    return {r.tobytes() for r in rows}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_cells_and_blocks_match_the_lp_enumeration(kind, seed):
    X = planar_data(kind, 7, seed)
    plane = plane_of(X)
    cells = arrangement_cells(X)
    assert as_set(plane.cells) == as_set(cells) and plane.cells.shape[0] == cells.shape[0]
    mixed = mixed_sign_patterns(X, cells)
    reference = as_set(np.concatenate([mixed.inner.reshape(mixed.n_patterns, -1), mixed.outer],
                                      axis=1))
    listed = []
    for k1 in range(plane.M):
        for k2, c, _ in zip(*plane.blocks_from(k1)):
            listed.append(np.concatenate([plane.cells[k1], plane.cells[k2],
                                          plane.outer_mask(k1, k2, c)]))
    assert len(listed) == len(reference) and as_set(np.array(listed)) == reference


def test_plane_of_is_only_for_rank_two():
    rng = np.random.default_rng(0)
    assert plane_of(rng.standard_normal((8, 3))) is None
    assert plane_of(np.outer(rng.standard_normal(8), [1.0, 2.0])) is None
    assert plane_of(rng.standard_normal((8, 2))) is not None


def test_sector_max_is_the_max_over_the_arc():
    rng = np.random.default_rng(1)
    for _ in range(200):
        start, width = rng.uniform(0, 2 * np.pi), rng.uniform(0.01, np.pi)
        c = rng.standard_normal(2)
        grid = start + np.linspace(0, width, 20001)
        brute = max(0.0, (np.stack([np.cos(grid), np.sin(grid)], 1) @ c).max())
        p, q = (np.array([np.cos(a), np.sin(a)]) for a in (start, start + width))
        value, best = sector_max(c, p, q)
        assert brute <= value + 1e-12 and value <= brute + 1e-6
        assert best @ c == pytest.approx(value, abs=1e-12)


def test_golden_min_finds_the_minimizers_of_a_batch():
    centres = np.array([-0.5, 0.0, 0.3, 2.0, 5.0])
    found = golden_min(lambda t: np.abs(t - centres), np.zeros(5), np.full(5, 3.0), 40)
    assert found == pytest.approx(np.clip(centres, 0, 3), abs=1e-7)


def general_prices(p: Problem):
    """The pricing set with the planar geometry removed: LP-enumerated blocks."""
    pset = build_pricing_set(p)
    mixed = mixed_sign_patterns(p.X, pset.cells) if pset.pairs_mixed else pset.mixed
    return dataclasses.replace(pset, plane=None, mixed=mixed)


@pytest.mark.parametrize("m1, depth", [(2, 3), (1, 3), (2, 2), (3, 2)])
@pytest.mark.parametrize("pid", range(4))
def test_planar_prices_equal_the_general_exact_prices(pid, m1, depth):
    p = tiny_problem(pid, n=9, d=2, m1=m1, depth=depth)
    v = np.random.default_rng(pid).standard_normal(p.n)
    planar, general = price_all(build_pricing_set(p), v, 0.0, 5), price_all(general_prices(p), v,
                                                                            0.0, 5)
    assert planar.upper == pytest.approx(general.upper, rel=1e-8)
    assert planar.lower == pytest.approx(general.lower, rel=1e-8)
    assert planar.values.max() <= planar.upper


@pytest.mark.parametrize("kind", ["ones", "duplicates", "antiparallel_and_zero", "scaled"])
def test_no_subnetwork_beats_the_planar_upper_price(kind):
    X = planar_data(kind, 40, 3)
    rng = np.random.default_rng(4)
    p = Problem(X, rng.standard_normal(X.shape[0]), 0.1, 2)
    v = rng.standard_normal(p.n)
    prices = price_all(build_pricing_set(p), v, 0.0, 5)
    count = 40000
    W1 = rng.standard_normal((count, 2, 2))
    W1 /= np.linalg.norm(W1.reshape(count, -1), axis=1)[:, None, None]
    w2 = rng.standard_normal((count, 2))
    w2 /= np.linalg.norm(w2, axis=1, keepdims=True)
    outputs = ParallelNet(W1, w2, np.ones(count), depth=3).subnetwork_outputs(p.X)
    assert np.abs(outputs @ v).max() <= prices.upper * (1 + 1e-9)
    assert prices.upper - prices.lower <= 1e-6 * prices.upper


def test_dual_search_certifies_beyond_the_lp_enumeration():
    """n = 30 (the LP enumeration stops at n = 15): globally certified, and no Adam network
    does better than the bound."""
    p = tiny_problem(5, n=30, d=2, m1=2, beta=0.05)
    out = dual_search(apply_spec(p, "random:5", SpecContext(seed=0)), get_solver("clarabel"))
    assert out.pricing == "exact"
    row = evaluate(out.problem, out.result)
    glob = global_certificate(out.problem, out.result, row["network_objective"])
    assert glob["globally_certified"], glob
    assert best_projected_adam(p, restarts=8, steps=1500) >= glob["global_lower_bound"]


def test_solve_json_certifies_a_logistic_classifier_on_one_dimensional_data(tmp_path):
    """The CLI at n = 30 (beyond the LP enumeration), logistic loss, solved by al (Clarabel
    leaves the exp-cone program inaccurate): a global certificate that no Adam run beats."""
    rng = np.random.default_rng(30)
    x = rng.uniform(-1, 1, 30)
    y = np.where(np.sin(4 * x) + 0.3 * rng.standard_normal(30) > 0, 1.0, -1.0)
    p = Problem(np.stack([x, np.ones(30)], 1), y, 0.1, 2, loss="logistic")
    save_problem(p, tmp_path / "p.npz")
    assert main(["solve", str(tmp_path / "p.npz"), "--solver", "al", "--patterns",
                 "random:5,dual-search", "--json", str(tmp_path / "out.json")]) == 0
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["globally_certified"] is True and data["global_gap"] <= 1e-6
    assert all(r["pricing"] == "exact" for r in data["pattern_log"])
    assert best_projected_adam(p, restarts=8, steps=1500) >= data["global_lower_bound"]
