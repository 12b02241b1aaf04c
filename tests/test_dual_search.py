"""Dual-search column generation and the `network` / `dual-search` pattern strategies."""

import json

import numpy as np
import pytest
from conftest import cases_dir, tiny_problem

from dualnets.certificate import capped_dual_value, certify
from dualnets.cli import main
from dualnets.dual_search import SearchConfig, dual_search, search_subnetworks
from dualnets.io import load_problem, save_problem
from dualnets.lifting import Lifting
from dualnets.network import ParallelNet
from dualnets.pattern_specs import SpecContext, apply_spec
from dualnets.patterns import patterns_from_network
from dualnets.problem import Problem
from dualnets.registry import get_solver
from dualnets.solvers.base import MIN_SECONDS, Solver

ROUND_KEYS = {"round", "pricing", "patterns", "added", "objective", "max_violation",
              "global_lower_bound", "global_gap", "heuristic_dual_value", "solve_seconds",
              "search_seconds"}


def optimum(problem: Problem) -> float:
    res = get_solver("clarabel").solve(problem)
    return certify(Lifting.from_problem(problem), problem.y, problem.beta, res.Z).objective


@pytest.mark.parametrize("seed, n", [(0, 6), (3, 6), pytest.param(1, 8, marks=pytest.mark.slow),
                                     pytest.param(5, 8, marks=pytest.mark.slow)])
def test_reaches_the_exhaustive_optimum_from_five_random_patterns(seed, n):
    p = tiny_problem(seed, n=n, d=2)
    best = optimum(apply_spec(p, "exhaustive"))
    start = apply_spec(p, "random:5", SpecContext(seed=seed))
    out = dual_search(start, get_solver("clarabel"), seed=seed)
    found = certify(Lifting.from_problem(out.problem), p.y, p.beta, out.result.Z).objective
    assert abs(found - best) <= 1e-6 * best
    last = out.rounds[-1]
    assert last["added"] == 0 and last["pricing"] == "exact"
    assert last["global_lower_bound"] <= best * (1 + 1e-9) and last["global_gap"] <= 1e-7


@pytest.mark.skipif(cases_dir() is None, reason="public cases not available")
def test_reaches_the_public_exhaustive_reference():
    case = load_problem(cases_dir() / "public_tiny_1d.npz")
    ref = float(np.load(cases_dir() / "public_tiny_1d.npz")["ref_exhaustive"])
    start = case.with_patterns(case.patterns.take(np.arange(5)))
    out = dual_search(start, get_solver("clarabel"))
    found = certify(Lifting.from_problem(out.problem), case.y, case.beta, out.result.Z).objective
    assert abs(found - ref) <= 1e-5 * ref


def test_rounds_are_logged_and_objectives_do_not_increase():
    p = tiny_problem(2, n=8, d=2)
    log = []
    out = dual_search(p, get_solver("clarabel"), SearchConfig(max_add=3), seed=1, log=log)
    assert log == out.rounds and len(log) >= 2
    assert all(ROUND_KEYS <= set(r) for r in log)
    assert log[0]["patterns"] == 0 and log[0]["objective"] == pytest.approx(0.5 * p.y @ p.y)
    objectives = [r["objective"] for r in log]
    assert all(b <= a * (1 + 1e-7) for a, b in zip(objectives, objectives[1:]))
    assert all(r["added"] <= 3 for r in log)


def test_budget_stops_and_leaves_a_solved_problem():
    p = tiny_problem(0, n=8, d=2)
    out = dual_search(p, get_solver("clarabel"), SearchConfig(max_rounds=1, max_add=2))
    assert len(out.rounds) == 2 and np.isnan(out.rounds[-1]["max_violation"])
    assert out.result.Z.shape == (2 * 2 * out.problem.n_patterns, 2)


class RecordingSolver(Solver):
    """Clarabel, recording the budget each solve was given (copies share the record)."""

    name = "recording"

    def __init__(self, max_seconds: float = 30.0):
        self.max_seconds, self.budgets = max_seconds, []

    def solve(self, problem, warm_start=None):
        self.budgets.append(self.max_seconds)
        return get_solver("clarabel", max_seconds=self.max_seconds).solve(problem)


def test_solve_by_limits_every_round_solve_to_what_is_left():
    """The budget overrun of the paper sweep: a round's solve may not run past ``solve_by``."""
    p = tiny_problem(0, n=8, d=2)
    solver = RecordingSolver()
    dual_search(p, solver, SearchConfig(max_rounds=3, max_add=1), solve_by=5.0)
    assert len(solver.budgets) >= 2 and solver.budgets[0] <= 5.0
    assert all(b < a for a, b in zip(solver.budgets, solver.budgets[1:]))
    dual_search(p, solver, SearchConfig(max_rounds=1), solve_by=1e-9)
    assert solver.budgets[-1] == MIN_SECONDS and solver.max_seconds == 30.0


def test_search_values_are_those_of_unit_subnetworks():
    rng = np.random.default_rng(0)
    X, v = rng.standard_normal((15, 3)), rng.standard_normal(15)
    found = search_subnetworks(X, v, 2, SearchConfig(starts=64, steps=30, data_starts=0.0), seed=0)
    assert np.allclose(np.linalg.norm(found.W1.reshape(64, -1), axis=1), 1.0)
    assert np.allclose(np.linalg.norm(found.w2, axis=1), 1.0)
    net = ParallelNet(found.W1, found.w2, found.sign)
    assert np.allclose(found.value, net.subnetwork_outputs(X) @ v)
    # the ascent improves on random unit sub-networks
    W1 = rng.standard_normal((2000, 3, 2))
    W1 /= np.linalg.norm(W1.reshape(2000, -1), axis=1)[:, None, None]
    w2 = rng.standard_normal((2000, 2))
    w2 /= np.linalg.norm(w2, axis=1, keepdims=True)
    random_best = np.abs(ParallelNet(W1, w2, np.ones(2000)).subnetwork_outputs(X) @ v).max()
    assert found.value.max() >= random_best


def test_capped_dual_value_is_the_best_scaling_within_the_cap():
    v, y = np.array([1.0, -2.0]), np.array([-1.0, 1.5])      # unconstrained best t = 4/5
    dual = lambda t: -t * v @ y - 0.5 * t * t * v @ v          # noqa: E731
    assert capped_dual_value(v, y, 1.0, 0.5) == pytest.approx(dual(0.8))
    # with 0.5 v the best t is 8/5, capped at 1
    assert capped_dual_value(0.5 * v, y, 1.0, 0.5) == pytest.approx(-v @ y / 2 - v @ v / 8)
    assert capped_dual_value(v, y, 1.0, 4.0) == pytest.approx(dual(0.25))
    assert capped_dual_value(v, y, 2.0, 8.0) == pytest.approx(dual(0.25))


def test_heuristic_rounds_name_their_value_and_give_no_bound():
    p = tiny_problem(2, n=8, d=2)
    out = dual_search(p, get_solver("clarabel"), SearchConfig(pricing="heuristic", max_rounds=2,
                                                               starts=64, steps=30), seed=1)
    priced = [r for r in out.rounds if not np.isnan(r["max_violation"])]
    assert out.pricing == "heuristic" and priced
    assert all(r["pricing"] == "heuristic" and r["global_lower_bound"] is None
               and np.isfinite(r["heuristic_dual_value"]) for r in priced)
    assert out.global_lower_bound is None


@pytest.mark.parametrize("options, match", [
    (dict(starts=0), r"starts must be an integer >= 1, got 0"),
    (dict(lr=-1.0), r"lr must be > 0, got -1.0"),
    (dict(max_rounds=2.5), r"max_rounds must be an integer >= 1, got 2.5"),
    (dict(max_seconds=0.0), r"max_seconds must be > 0 or None, got 0.0"),
    (dict(local_starts=-2), r"local_starts must be >= 0, got -2"),
    (dict(pricing="exactly"), r"pricing must be one of \('auto', 'heuristic'\), got 'exactly'"),
    (dict(near=1.0), r"near must be in \[0, 1\), got 1.0"),
    (dict(data_starts=2.0), r"data_starts must be in \[0, 1\], got 2.0"),
    (dict(gap_tol=0.0), r"gap_tol must be > 0, got 0.0"),
])
def test_bad_search_config(options, match):
    with pytest.raises(ValueError, match=match):
        SearchConfig(**options)


def _net(p: Problem) -> ParallelNet:
    return get_solver("adam", K=6, lrs=(1e-2,), epochs=60).solve(p).network


def test_network_strategy_uses_given_networks():
    p = tiny_problem(1, n=10, d=3)
    net = _net(p)
    got = apply_spec(p, "network", SpecContext(networks=[net]))
    expected = patterns_from_network(net, p.X)
    assert got.n_patterns == expected.n_patterns
    assert np.array_equal(got.patterns.inner, expected.inner)
    bad = ParallelNet(np.ones((1, 5, 2)), np.ones((1, 2)), np.ones(1))
    with pytest.raises(ValueError, match=r"need W1 of shape \(K, 3, 2\), got \(1, 5, 2\)"):
        apply_spec(p, "network", SpecContext(networks=[bad]))



def test_network_top_keeps_the_largest_subnetworks():
    p = tiny_problem(1, n=10, d=3)
    W1 = np.random.default_rng(0).standard_normal((4, 3, 2))
    w2 = np.abs(np.random.default_rng(1).standard_normal((4, 2)))   # every outer mask active
    net = ParallelNet(W1, w2, np.array([0.0, 3.0, 0.1, 1.0]))
    size = np.linalg.norm(net.subnetwork_outputs(p.X), axis=1)
    assert size[0] == 0 and np.all(size[1:] > 0)
    big = np.argsort(-size)[:2]
    assert np.array_equal(
        patterns_from_network(net, p.X, top=2).inner,
        patterns_from_network(ParallelNet(W1[big], w2[big], net.w3[big]), p.X).inner)
    # a sub-network with zero output never counts, however large top is
    assert patterns_from_network(net, p.X, top=10).n_patterns == \
        patterns_from_network(ParallelNet(W1[1:], w2[1:], net.w3[1:]), p.X).n_patterns
    got = apply_spec(p, "network:2", SpecContext(networks=[net]))
    assert np.array_equal(got.patterns.inner, patterns_from_network(net, p.X, top=2).inner)
    with pytest.raises(ValueError, match="network:TOP needs TOP >= 1, got 0"):
        apply_spec(p, "network:adam:0", SpecContext(networks=[net]))

@pytest.mark.slow
def test_network_strategy_trains_the_default_baseline_when_none_given():
    p = tiny_problem(2, n=10, d=3)
    ctx = SpecContext(seed=0)
    got = apply_spec(p, "random:2,network:sgd", ctx)
    assert len(ctx.networks) == 1 and got.n_patterns > 2


def test_spec_chain_with_dual_search_logs_rounds():
    p = tiny_problem(4, n=8, d=2)
    ctx = SpecContext(seed=0)
    got = apply_spec(p, "random:5,dual-search:clarabel", ctx)
    assert ctx.log and all(r["strategy"] == "dual-search" for r in ctx.log)
    assert got.n_patterns >= 5
    with pytest.raises(ValueError, match="unknown solver 'nope'"):
        apply_spec(p, "dual-search:nope")


def test_solve_command_with_networks_and_dual_search(tmp_path):
    p = tiny_problem(5, n=6, d=2)
    save_problem(p.with_patterns(apply_spec(p, "random:3").patterns), tmp_path / "p.npz")
    _net(p).save(tmp_path / "net.npz")
    out = tmp_path / "out.json"
    code = main(["solve", str(tmp_path / "p.npz"), "--patterns", "random:5,network,dual-search",
                 "--networks", str(tmp_path / "net.npz"), "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["pattern_log"] and data["relative_gap"] <= 1e-6
    best = optimum(apply_spec(p, "exhaustive"))
    assert data["objective"] == pytest.approx(best, rel=1e-5)


def test_make_problem_with_networks_missing_file(tmp_path, capsys):
    code = main(["make-problem", "--dataset", "wine", "--patterns", "random:3,network",
                 "--networks", str(tmp_path / "absent.npz"), "-o", str(tmp_path / "p.npz")])
    assert code == 2 and "absent.npz" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["clarabel+dual-search", "al+dual-search:clarabel"])
def test_method_search_takes_the_runs_search_settings(method):
    """``dual-search`` and ``dual-search:SOLVER`` honour the same [search] settings."""
    from dualnets.runner import RunSpec, run

    spec = RunSpec("wine", method, n=30, patterns=3, timeout=60,
                   search={"max_rounds": 1, "starts": 16, "steps": 10})
    row = run(spec).row
    assert row["status"] == "optimal", row["message"]
    rounds = int(row["message"].split("dual-search: ")[1].split(" rounds")[0])
    assert 1 <= rounds <= 2      # round 0, then at most max_rounds = 1 searched rounds


def test_method_parse_errors():
    from dualnets.method import Method

    parsed = Method.parse("al+network:adam:20+dual-search:clarabel")
    assert (parsed.solver, parsed.search_solver, parsed.uses_networks) == ("al", "clarabel", True)
    assert Method.parse("al+dual-search").search_solver == "al"
    with pytest.raises(ValueError, match="dual-search must be its last strategy"):
        Method.parse("al+dual-search+network")
    with pytest.raises(ValueError, match="unknown solver 'nope'"):
        Method.parse("al+dual-search:nope")
    with pytest.raises(ValueError, match="takes no pattern strategies"):
        Method.parse("adam+network")


def test_rounds_default_to_clarabel_when_exact_or_small_and_to_al_otherwise():
    """dual_search(solver=None) picks the rounds' solver once it knows the pricing: Clarabel
    for exact pricing (its global gap is checked to 1e-7) and below SMALL_N rows, al above."""
    from dualnets.dual_search import SMALL_N, default_search_solver
    rng = np.random.default_rng(0)
    X = np.hstack([rng.standard_normal((SMALL_N, 4)), np.ones((SMALL_N, 1))])
    big = Problem(X, rng.standard_normal(SMALL_N), 1.0, 2)
    assert default_search_solver(big) == "al"
    assert default_search_solver(big, exact=True) == "clarabel"
    small = Problem(X[:SMALL_N - 1], big.y[:SMALL_N - 1], 1.0, 2)
    assert default_search_solver(small) == "clarabel"
    out = dual_search(apply_spec(big, "random:3"), config=SearchConfig(max_rounds=1, max_add=2))
    assert out.pricing == "heuristic" and out.result.solver == "al"
    tiny = apply_spec(tiny_problem(0, n=6, d=2), "random:3")
    out = dual_search(tiny, config=SearchConfig(max_rounds=1))
    assert out.pricing == "exact" and out.result.solver == "clarabel"


def test_local_starts_perturb_only_the_largest_subnetworks():
    """local_max bounds the ascent's size: perturbed copies of the largest |w3| ||w2|| only."""
    import torch

    from dualnets.dual_search import _starts
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    W1, w2 = rng.standard_normal((10, 3, 2)), rng.standard_normal((10, 2))
    w3 = np.arange(1.0, 11.0) * np.where(np.arange(10) % 2 == 0, 1.0, -1.0)
    net = ParallelNet(W1, w2, w3)
    config = SearchConfig(starts=8, local_starts=2, local_max=3)
    W, w, sign = _starts(torch.tensor(X), 2, config, net, torch.Generator().manual_seed(0))
    assert W.shape == (8 + 3 * 2, 3, 2) and w.shape == (14, 2) and sign.shape == (14,)
    largest = np.argsort(-np.abs(w3) * np.linalg.norm(w2, axis=1))[:3]
    unit = W1[largest] / np.linalg.norm(W1[largest].reshape(3, -1), axis=1)[:, None, None]
    first_copies = W[8::2].numpy()                           # the smallest perturbation, 1e-3
    assert np.allclose(first_copies, unit, atol=1e-2)
    assert np.array_equal(sign[8:].numpy(), np.repeat(np.sign(w3[largest]), 2))
    with pytest.raises(ValueError, match="local_max"):
        SearchConfig(local_max=0)


def test_heuristic_search_at_depth_two_with_two_neurons_runs():
    """The depth-2 rebuild gives one-neuron sub-networks: no local starts for m1 = 2 (their
    concatenation with the m1 = 2 starts raised a RuntimeError)."""
    rng = np.random.default_rng(3)
    X = np.hstack([rng.standard_normal((30, 4)), np.ones((30, 1))])
    p = apply_spec(Problem(X, rng.standard_normal(30), 0.01, 2, depth=2), "random:5")
    out = dual_search(p, get_solver("clarabel"),
                      SearchConfig(pricing="heuristic", max_rounds=2, max_add=3, starts=64,
                                   steps=20))
    assert out.pricing == "heuristic" and len(out.rounds) >= 2
    from dualnets.metrics import evaluate
    assert evaluate(out.problem, out.result)["certified"]       # with Clarabel's multipliers
