"""Convex program with random, network and dual-search patterns against projected SGD / Adam.

Regenerates the tables of issues 4 and 13: for each dataset (planted n = 200, d = 10;
breast_cancer n = 300; wine, class 0 against the rest; diabetes, regression; spirals n = 200,
binary), m1 = 2, beta = 1, rows

- sgd / adam best and median over seeds, each seed's best over the learning-rate grid;
- convex (Clarabel) over random P = 50, 200, 1000 patterns;
- convex over random 50 + the patterns of the best SGD and Adam networks;
- convex with dual-search from 5 random patterns (convex on its own: no network seeds, the
  `random:5,dual-search` spec, its rounds solved by the default solver of
  ``dual_search.default_search_solver``); from the SEED_TOP largest sub-networks of
  one Adam run (one seed over its lr grid, the training time counted: the `network:adam:20,
  dual-search` spec); and, extra, from random 50 + the best SGD/Adam patterns;

columns NC objective (of the network: trained, or rebuilt from the convex solution), the
certificate's relative gap over the row's own patterns, train/test accuracy, seconds (and for
dual-search the seconds until its objective first beat the best SGD/Adam network).  Every
number comes from dualnets.metrics.evaluate.  Threads are pinned to 1 (torch and BLAS).

With ``--search-only`` only the baselines and the first two dual-search rows run.

Usage: python bench/run_patterns_vs_sgd.py [--seeds 10] [--epochs 500] [--datasets ...]
       [--out build/bench/patterns_vs_sgd] [--p-max 1000] [--solve-limit 600] [--search-only]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dualnets.commands.common import jsonable
from dualnets.datasets import load_dataset
from dualnets.dual_search import SearchConfig, dual_search
from dualnets.metrics import evaluate
from dualnets.pattern_specs import SpecContext, apply_spec
from dualnets.problem import Problem
from dualnets.registry import get_solver

SEED_TOP = 20   # sub-networks of the seeding adam run: the first restricted program stays small
DATASETS = {"planted": dict(n=200, d=10), "breast_cancer": dict(n=300), "wine": {},
            "diabetes": {}, "spirals": dict(n=200)}
COLUMNS = ("method", "n_patterns", "nc_objective", "relative_gap", "vs_best_sgd_adam",
           "train_accuracy", "test_accuracy", "seconds", "seconds_to_beat_sgd_adam")


def make_problem(name: str, beta: float) -> Problem:
    data = load_dataset(name, **DATASETS[name])
    return Problem(data.X_train, data.y_train, beta, 2, X_test=data.X_test, y_test=data.y_test,
                   name=name)


def baseline_rows(problem: Problem, name: str, seeds: int, epochs: int):
    """Best and median over seeds (each seed: best over the lr grid) and the best network."""
    per_seed = []
    for seed in range(seeds):
        res = get_solver(name, seed=seed, seeds=1, epochs=epochs).solve(problem)
        per_seed.append((evaluate(problem, res), res))
    ok = [(row, res) for row, res in per_seed if res.network is not None]
    objs = np.array([row["network_objective"] for row, _ in ok])
    best_row, best_res = ok[int(np.argmin(objs))]
    total = sum(res.solve_seconds for _, res in per_seed)
    diverged = sum(r["status"] == "diverged" for _, res in per_seed for r in res.info["runs"])
    med = lambda key: float(np.median([row[key] for row, _ in ok]))  # noqa: E731
    rows = [
        {"method": f"{name} best of {seeds} seeds x {len(best_res.info['lrs'])} lrs",
         "nc_objective": best_row["network_objective"],
         "train_accuracy": best_row["train_accuracy"], "test_accuracy": best_row["test_accuracy"],
         "seconds": total,
         "best_lr": best_res.info["best_lr"], "diverged_runs": diverged},
        {"method": f"{name} median seed (its lr grid)", "nc_objective": med("network_objective"),
         "train_accuracy": med("train_accuracy"), "test_accuracy": med("test_accuracy"),
         "seconds": float(np.median([res.solve_seconds for _, res in per_seed]))},
    ]
    return rows, best_res.network


def convex_row(method: str, problem: Problem, result, seconds: float) -> dict:
    row = evaluate(problem, result)
    return {"method": method, "n_patterns": problem.n_patterns, "status": result.status,
            "nc_objective": row.get("network_objective", float("nan")),
            "convex_objective": row.get("objective", float("nan")),
            "relative_gap": row.get("relative_gap", float("nan")),
            "train_accuracy": row.get("train_accuracy", float("nan")),
            "test_accuracy": row.get("test_accuracy", float("nan")), "seconds": seconds}


def solve_row(method: str, problem: Problem, spec: str, networks=(), solve_limit=None) -> dict:
    start = time.perf_counter()
    problem = apply_spec(problem, spec, SpecContext(seed=0, networks=list(networks)))
    opts = {} if solve_limit is None else {"max_seconds": float(solve_limit)}
    result = get_solver("clarabel", **opts).solve(problem)
    return convex_row(method, problem, result, time.perf_counter() - start)


def search_row(method: str, problem: Problem, config: SearchConfig, seed_spec: str,
               networks=()) -> dict:
    """Dual-search from the patterns of ``seed_spec``; its time (e.g. training) is counted."""
    start = time.perf_counter()
    problem = apply_spec(problem, seed_spec, SpecContext(seed=0, networks=list(networks)))
    seeding = time.perf_counter() - start
    out = dual_search(problem, None, config, seed=0)      # the rounds' default solver
    row = convex_row(method, out.problem, out.result, seeding + out.seconds)
    row["rounds"], row["seeding_seconds"], row["pricing"] = out.rounds, seeding, out.pricing
    return row


def seconds_to_reach(rounds: list[dict], target: float, spent: float = 0.0) -> float:
    """Seconds of dual-search (solves and searches, after ``spent`` seconds of seeding) until
    a round's objective <= target."""
    for r in rounds:
        spent += r["solve_seconds"]
        if r["objective"] <= target:
            return spent
        spent += r["search_seconds"]
    return float("nan")


def run_dataset(name: str, args, rows: list[dict], save) -> None:
    """Append the dataset's rows to ``rows``, calling ``save()`` after each (the largest
    random-pattern solve comes last: it is the one that may run out of time or memory)."""
    problem = make_problem(name, args.beta)
    nets, best = [], []

    def add(row: dict) -> None:
        row["dataset"] = name
        row["vs_best_sgd_adam"] = (row["nc_objective"] - min(best)) / min(best)
        if "rounds" in row:
            row["seconds_to_beat_sgd_adam"] = seconds_to_reach(
                row["rounds"], min(best), row["seeding_seconds"])
        rows.append(row)
        print(f"  {name}: {row['method']}: {row['nc_objective']:.6g} ({row['seconds']:.1f} s)",
              flush=True)
        save()

    trained = []
    for baseline in ("sgd", "adam"):
        brows, net = baseline_rows(problem, baseline, args.seeds, args.epochs)
        trained += brows
        nets.append(net)
        best.append(brows[0]["nc_objective"])
    for row in trained:
        add(row)
    if not args.search_only:
        for P in (50, 200):
            add(solve_row(f"convex, random P = {P}", problem, f"random:{P}"))
        add(solve_row("convex, random 50 + best sgd/adam nets' patterns (training time not "
                      "counted)", problem, "random:50,network", nets))
    config = SearchConfig(max_seconds=args.search_limit)
    add(search_row("convex + dual-search from random 5 (no network)", problem, config,
                   "random:5"))
    add(search_row(f"convex + dual-search from one adam run's {SEED_TOP} largest sub-networks "
                   "(adam's lr grid, 1 seed; training time counted)", problem, config,
                   f"network:adam:{SEED_TOP}"))
    if args.search_only:
        return
    add(search_row("convex + dual-search from random 50 + best sgd/adam patterns (training "
                   "time not counted)", problem, config, "random:50,network", nets))
    if args.p_max not in (50, 200):
        add(solve_row(f"convex, random P = {args.p_max}", problem, f"random:{args.p_max}",
                      solve_limit=args.solve_limit))


def markdown(rows: list[dict]) -> str:
    lines = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        lines += [f"\n### {name}\n", "| " + " | ".join(COLUMNS) + " |",
                  "|" + "---|" * len(COLUMNS)]
        for r in (r for r in rows if r["dataset"] == name):
            lines.append("| " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--p-max", type=int, default=1000)
    parser.add_argument("--solve-limit", type=float, default=600.0,
                        help="Clarabel time limit (s) of the random-pattern solves")
    parser.add_argument("--search-limit", type=float, default=300.0,
                        help="dual-search time budget (s), checked between rounds")
    parser.add_argument("--search-only", action="store_true",
                        help="only the baselines and the dual-search rows from random 5 and "
                             "from adam's sub-networks")
    parser.add_argument("--out", default="build/bench/patterns_vs_sgd")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: list[dict] = []
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        Path(args.out + ".json").write_text(json.dumps(
            jsonable({"args": vars(args), "threads": 1, "rows": rows}), indent=1))
        Path(args.out + ".md").write_text(markdown(rows))

    with threadpool_limits(1):
        for name in args.datasets:
            run_dataset(name, args, rows, save)
    print(markdown(rows))


if __name__ == "__main__":
    main()
