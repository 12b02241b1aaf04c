"""Train a non-convex baseline (sgd, adam, plain-wd, ...) on a problem file's X, y, beta and m1.

Stored patterns are ignored.  Prints one row per (learning rate, seed) run and the best
network's numbers; --json writes nc_objective (the best network's NC objective, computed by
dualnets.metrics like the solvers' network_objective), runs (one entry per seed and learning
rate: objective, nc_objective, seconds, lr, status), seconds (all runs) and the accuracies.
A baseline whose objective is not NC (plain-wd: every layer penalized) says so in a note:
compare it on accuracy only.
"""

from __future__ import annotations

import argparse

from ..baselines.common import DEFAULT_LRS
from ..io import load_problem
from ..metrics import evaluate
from ..outputs import atomic_open, check_file
from ..registry import available_solvers, get_solver
from .common import print_table, write_json

def _lrs(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated learning rates such as 1,0.1,0.01, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", help="problem file (.npz, docs/design.md section 5)")
    parser.add_argument("--baseline", default="adam", choices=available_solvers(model="network"))
    parser.add_argument("--K", type=int, default=50, help="number of sub-networks (default 50)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per learning rate (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--epochs", type=int, default=500, help="epochs per run (default 500)")
    parser.add_argument("--time-limit", type=float, help="seconds of training per run")
    parser.add_argument("--lrs", type=_lrs, default=None, metavar="LR,LR,...",
                        help="learning-rate grid (default 1,0.1,0.01,0.001,0.0001)")
    parser.add_argument("--batch-size", type=int, help="minibatch size (default: full batch)")
    parser.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    parser.add_argument("--save-network", metavar="FILE.npz", help="save the best network")


def run(args: argparse.Namespace) -> int:
    check_file(args.json, "--json")
    check_file(args.save_network, "--save-network")
    problem = load_problem(args.problem)
    lrs = DEFAULT_LRS if args.lrs is None else args.lrs
    options = dict(K=args.K, seeds=args.seeds, seed=args.seed, epochs=args.epochs, lrs=lrs,
                   batch_size=args.batch_size)
    if args.time_limit is not None:   # per run; the baseline's budget covers the whole grid
        options["max_seconds"] = args.time_limit * len(lrs) * args.seeds
    baseline = get_solver(args.baseline, **options)
    result = baseline.solve(problem.with_patterns(None))
    runs = result.info["runs"]
    print_table([{"method": args.baseline, **r} for r in runs],
                ["method", "lr", "seed", "status", "objective", "nc_objective", "seconds",
                 "epochs"])
    row = evaluate(problem.with_patterns(None), result)
    summary = {
        "baseline": args.baseline, "status": result.status, "message": result.message,
        "nc_objective": row.get("network_objective", float("nan")),
        "norm_violation": row.get("norm_violation", float("nan")),
        "train_accuracy": row.get("train_accuracy", float("nan")),
        "test_accuracy": row.get("test_accuracy", float("nan")),
        "seconds": result.solve_seconds, "best_lr": result.info.get("best_lr"),
        "best_seed": result.info.get("best_seed"), "K": args.K, "n": problem.n, "d": problem.d,
        "m1": problem.m1, "beta": problem.beta, "runs": runs,
    }
    if baseline.objective_kind:
        summary["note"] = f"{args.baseline}: {baseline.objective_kind}"
        print(summary["note"])
    print_table([summary], ["baseline", "status", "nc_objective", "train_accuracy",
                            "test_accuracy", "seconds", "best_lr", "best_seed"])
    if args.json:
        write_json(args.json, summary)
    if args.save_network and result.network is not None:
        with atomic_open(args.save_network, "wb") as fh:
            result.network.save(fh)
    return 0 if result.network is not None else 1
