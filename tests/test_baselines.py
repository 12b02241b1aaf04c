"""Non-convex baselines: hyperparameter errors, projection, diverged runs, the exhaustive guard,
network seeding of the convex program, and the `dualnets train` command."""

import json

import numpy as np
import pytest
from conftest import tiny_problem

from dualnets.baselines.common import DIVERGENCE_FACTOR, balanced
from dualnets.certificate import certify
from dualnets.cli import main
from dualnets.io import save_problem
from dualnets.lifting import Lifting
from dualnets.metrics import evaluate
from dualnets.network import ParallelNet, nc_objective
from dualnets.pattern_specs import apply_spec
from dualnets.patterns import patterns_from_network
from dualnets.problem import Problem
from dualnets.registry import available_solvers, get_solver, solver_class

BASELINES = available_solvers(model="network")
FAST = dict(K=8, lrs=(1e-2,), epochs=60, trace_every=20)


def small_problem(seed=0, n=30, d=4, beta=0.5) -> Problem:
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.standard_normal((n, d - 1)), np.ones((n, 1))])
    y = np.maximum(X[:, 0], 0) - 0.5 * np.maximum(X[:, 1], 0) + 0.05 * rng.standard_normal(n)
    return Problem(X, y, beta, 2, X_test=X[:5], y_test=np.sign(y[:5]) + (y[:5] == 0))


@pytest.mark.parametrize("options, match", [
    (dict(lrs=(-0.1,)), r"learning rate must be a number > 0, got -0.1"),
    (dict(lrs=()), r"lrs must hold at least one learning rate, got an empty grid"),
    (dict(epochs=0), r"epochs must be an integer > 0, got 0"),
    (dict(epochs=2.5), r"epochs must be an integer > 0, got 2.5"),
    (dict(epochs=None), r"give epochs or a finite max_seconds \(or both\), got neither"),
    (dict(K=0), r"K must be an integer > 0, got 0"),
    (dict(seeds=-1), r"seeds must be an integer > 0, got -1"),
    (dict(batch_size=0), r"batch_size must be an integer > 0, got 0"),
    (dict(max_seconds=-1.0), r"max_seconds must be > 0, got -1.0"),
    (dict(init_scale=float("nan")), r"init_scale must be a number > 0, got nan"),
])
@pytest.mark.parametrize("name", BASELINES)
def test_bad_hyperparameters(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_solver(name, **options)


def test_bad_momentum():
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        get_solver("sgd", momentum=1.5)


def test_depth_two_is_refused():
    p = Problem(np.eye(3), np.ones(3), 1.0, 1, depth=2)
    with pytest.raises(ValueError, match="adam handles depth 3, got depth 2"):
        get_solver("adam", **FAST).solve(p)


@pytest.mark.parametrize("name", BASELINES)
def test_grid_runs_network_and_trace(name):
    p = small_problem()
    res = get_solver(name, K=8, lrs=(1e-2, 1e-3), seeds=2, epochs=40, trace_every=10).solve(p)
    runs = res.info["runs"]
    assert [(r["lr"], r["seed"]) for r in runs] == [(1e-2, 0), (1e-2, 1), (1e-3, 0), (1e-3, 1)]
    assert res.model == "network" and isinstance(res.network, ParallelNet)
    assert res.solve_seconds == pytest.approx(sum(r["seconds"] for r in runs))
    best = min(runs, key=lambda r: r["objective"])
    assert (res.info["best_lr"], res.info["best_seed"]) == (best["lr"], best["seed"])
    # the returned network is feasible for NC and its NC objective is the one reported
    row = evaluate(p, res)
    assert row["norm_violation"] <= 1e-12
    assert row["network_objective"] == pytest.approx(best["nc_objective"], rel=1e-12)
    assert [t[1] for t in res.trace] == [10, 20, 30, 40] and res.iterations == 40
    if not solver_class(name).objective_kind:      # it minimizes NC itself
        assert best["objective"] == pytest.approx(best["nc_objective"], rel=1e-12)
        assert res.trace[-1][2] == pytest.approx(best["objective"], rel=1e-12)


def test_diverged_runs_are_recorded_not_dropped():
    p = small_problem()
    res = get_solver("sgd", K=8, lrs=(10.0, 1e-3), epochs=50, momentum=0.0).solve(p)
    first, second = res.info["runs"]
    assert first["status"] == "diverged" and np.isnan(first["objective"])
    assert second["status"] == "max_iterations" and np.isfinite(second["objective"])
    assert res.info["best_lr"] == 1e-3
    all_bad = get_solver("sgd", K=8, lrs=(10.0,), epochs=50, momentum=0.0).solve(p)
    assert all_bad.status == "error" and all_bad.network is None
    assert "all 1 runs diverged" in all_bad.message


def test_a_finite_run_whose_objective_exploded_is_diverged():
    """SGD at lr = 1 for 2 epochs ends finite at ~2e4, against 6.8 for the zero network: a
    diverged run (DIVERGENCE_FACTOR), not a candidate for the best of the grid."""
    p = small_problem()
    res = get_solver("sgd", K=8, lrs=(1.0, 1e-3), epochs=2, momentum=0.0).solve(p)
    first, second = res.info["runs"]
    assert first["status"] == "diverged" and np.isnan(first["nc_objective"])
    assert second["status"] == "max_iterations"
    assert second["objective"] <= DIVERGENCE_FACTOR * 0.5 * p.y @ p.y


def test_time_budget_and_minibatch():
    p = small_problem()
    res = get_solver("adam", K=8, lrs=(1e-2,), epochs=None, max_seconds=0.05,
                     batch_size=8).solve(p)
    run = res.info["runs"][0]
    assert run["status"] == "time_limit" and run["seconds"] >= 0.05
    assert run["steps"] == 4 * run["epochs"]          # ceil(30 / 8) steps per epoch


def test_projection_keeps_first_layers_in_the_unit_ball():
    res = get_solver("sgd", K=6, lrs=(1e-2,), epochs=50).solve(small_problem(1))
    assert np.all(res.network.first_layer_norms() <= 1 + 1e-12)


def test_balanced_keeps_the_function_and_lowers_the_penalty():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    net = ParallelNet(3 * rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 2)),
                      rng.standard_normal(4))
    bal = balanced(net)
    assert np.allclose(bal.predict(X), net.predict(X))
    assert np.allclose(bal.first_layer_norms(), 1.0)
    assert np.allclose(np.linalg.norm(bal.w2, axis=1), np.abs(bal.w3))


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(2, marks=pytest.mark.slow)])
def test_no_baseline_beats_the_exhaustive_optimum(seed):
    p = tiny_problem(seed, n=6, d=2)
    ex = apply_spec(p, "exhaustive")
    res = get_solver("clarabel").solve(ex)
    optimum = certify(Lifting.from_problem(ex), ex.y, ex.beta, res.Z).objective
    for name in BASELINES:
        out = get_solver(name, K=6, lrs=(1e-1, 1e-2), seeds=2, epochs=150).solve(p)
        reported = [r["nc_objective"] for r in out.info["runs"] if r["status"] != "diverged"]
        assert reported and min(reported) >= optimum * (1 - 1e-6), name
        assert evaluate(p, out)["network_objective"] >= optimum * (1 - 1e-6), name


@pytest.mark.parametrize("name", ("sgd", "adam"))
def test_convex_seeded_with_network_patterns_is_at_most_its_objective(name):
    p = small_problem(2)
    res = get_solver(name, K=10, lrs=(1e-2,), epochs=300).solve(p)
    nc = nc_objective(res.network, p.X, p.y, p.beta)
    seeded = p.with_patterns(patterns_from_network(res.network, p.X))
    sol = get_solver("clarabel").solve(seeded)
    cert = certify(Lifting.from_problem(seeded), p.y, p.beta, sol.Z, sol.lam_inner, sol.lam_outer)
    assert cert.relative_gap <= 1e-6
    assert cert.objective <= nc * (1 + 1e-7)


def test_train_command(tmp_path):
    p = small_problem(3)
    save_problem(p.with_patterns(apply_spec(p, "random:3").patterns), tmp_path / "p.npz")
    out, net = tmp_path / "out.json", tmp_path / "net.npz"
    code = main(["train", str(tmp_path / "p.npz"), "--baseline", "adam", "--K", "6", "--seeds",
                 "2", "--epochs", "30", "--lrs", "0.01,0.001", "--json", str(out),
                 "--save-network", str(net)])
    assert code == 0
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 4
    assert {"objective", "seconds", "lr", "status", "seed"} <= set(data["runs"][0])
    assert data["nc_objective"] == pytest.approx(min(r["objective"] for r in data["runs"]))
    assert data["seconds"] == pytest.approx(sum(r["seconds"] for r in data["runs"]))
    saved = ParallelNet.load(net)
    assert nc_objective(saved, p.X, p.y, p.beta) == pytest.approx(data["nc_objective"])


@pytest.mark.parametrize("args, match", [
    (["--lrs", "-1"], "learning rate must be a number > 0, got -1.0"),
    (["--epochs", "0"], "epochs must be an integer > 0, got 0"),
    (["--lrs", "a,b"], "expected comma-separated learning rates"),
])
def test_train_command_bad_input(tmp_path, capsys, args, match):
    save_problem(small_problem(), tmp_path / "p.npz")
    assert main(["train", str(tmp_path / "p.npz"), *args]) == 2
    assert match in capsys.readouterr().err
