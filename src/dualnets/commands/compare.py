"""Compare convex solvers, first-order solvers and SGD/Adam on one dataset: table + report.

Runs every method on the same problem, the baselines for several seeds and the convex methods
for --convex-seeds draws of random patterns: Clarabel (skipped, with the reason, above the
interior-point size limit), the first-order solvers "al" and "gated-fista", the
baselines "sgd", "adam" and "plain-wd", and the convex program over better patterns
("al+network": the patterns of the best SGD, Adam and plain-wd networks;
"al+network+dual-search": column generation from those patterns; "al+dual-search": column
generation from random patterns alone, no network; all three solved by the certified
first-order solver).  A method that cannot run here is listed as skipped, never dropped.  Prints one table and
writes report.md, objective_vs_time.png, test_accuracy.png and gap_vs_time.png to --out, with
the runs in --out/results (a store that `dualnets report` also reads).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tqdm import tqdm

from .. import validate
from ..datasets import check_name, is_synthetic, load_dataset
from ..method import Method
from ..outputs import check_folder
from ..problem import LOSSES
from ..report import (COMPARE_COLUMNS, FAILED_COLUMNS, compare_report, compare_rows, failed_rows,
                      verdict)
from ..runner import DEFAULT_IP_LIMIT, RunSpec, check_loss
from ..store import ResultStore
from ..sweep import run_local
from .common import print_table

DEFAULT_METHODS = ("clarabel", "al", "gated-fista", "sgd", "adam", "plain-wd", "al+network",
                   "al+network+dual-search", "al+dual-search")
# n, random patterns, baseline seeds, convex seeds (pattern samples), baseline epochs
# and the time budget in seconds per run (every solver's max_seconds; the dual search's is
# checked between its rounds)
FULL = {"n": 200, "patterns": 50, "seeds": 3, "convex_seeds": 1, "epochs": 300, "budget": 15}
QUICK = {"n": 60, "patterns": 10, "seeds": 2, "convex_seeds": 1, "epochs": 60, "budget": 5}
# Column generation: lighter than SearchConfig's defaults, from few random patterns (cheap
# first rounds), with twice the per-run budget; it stops adding rounds at half of it
SEARCH = {"starts": 128, "steps": 80, "max_rounds": 8}
SEARCH_START_PATTERNS = 10
SEARCH_BUDGET_FACTOR = 2
BASELINE_LRS = (0.1, 0.01, 0.001)   # the best lr was 0.1 or 0.01 on every set we tried


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `dualnets datasets`)")
    parser.add_argument("--n", type=int, help="training rows (default 200, or all if fewer)")
    parser.add_argument("--d", type=int, help="features incl. the ones column (synthetic data)")
    parser.add_argument("--fold", type=int,
                        help="test fold of a dataset with folds (keel-*: 0-9; default seed %% 10)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings for a smoke run (n 60, 10 patterns, 2 seeds)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default reports/<dataset>)")
    parser.add_argument("--methods", help=f"comma-separated (default {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--seeds", type=int, help="seeds per baseline (default 3, quick 2)")
    parser.add_argument("--convex-seeds", type=int,
                        help="seeds (random pattern draws) per convex method (default 1)")
    parser.add_argument("--patterns", type=int, help="random patterns P (default 50, quick 10)")
    parser.add_argument("--epochs", type=int, help="baseline epochs (default 300, quick 60)")
    parser.add_argument("--budget", type=float,
                        help="seconds per run for solvers with a time limit (default 15, quick 5)")
    parser.add_argument("--beta", type=float, default=1.0, help="regularization (default 1)")
    parser.add_argument("--m1", type=int, default=2, help="first-layer width (default 2)")
    parser.add_argument("--loss", default="squared", choices=LOSSES,
                        help="training loss of every method (default squared; logistic: "
                             "classification data)")
    parser.add_argument("--ip-limit", type=int, default=DEFAULT_IP_LIMIT,
                        help=f"largest n*(G+B) for Clarabel/ECOS (default {DEFAULT_IP_LIMIT})")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (default 1)")


def settings(args: argparse.Namespace) -> dict:
    base = QUICK if args.quick else FULL
    picked = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    for key, value in picked.items():
        flag = f"--{key.replace('_', '-')}"
        if key == "budget":
            validate.real(flag, value, at_least=1)
        elif value is not None:
            validate.integer(flag, value, minimum=1)
    validate.real("--beta", args.beta, above=0)
    return picked


def specs(args: argparse.Namespace, cfg: dict) -> list[RunSpec]:
    """Baselines first (their networks feed "network"), then the convex methods."""
    names = [m.strip() for m in (args.methods or ",".join(DEFAULT_METHODS)).split(",")]
    methods = [Method.parse(m) for m in names]
    order = sorted(range(len(names)), key=lambda i: (methods[i].model != "network",
                                                     methods[i].uses_networks))
    out = []
    for i in order:
        baseline = methods[i].model == "network"
        opts = {"epochs": cfg["epochs"], "lrs": list(BASELINE_LRS)} if baseline else {}
        seeds = cfg["seeds"] if baseline else cfg["convex_seeds"]
        searched = methods[i].searches
        patterns = SEARCH_START_PATTERNS if searched else cfg["patterns"]
        budget = cfg["budget"] * (SEARCH_BUDGET_FACTOR if searched else 1)
        out += [RunSpec(args.dataset, names[i], seed, n=cfg["n"], d=args.d, fold=args.fold,
                        beta=args.beta, m1=args.m1, loss=args.loss, patterns=patterns,
                        options=opts, search=SEARCH if searched else {}, ip_limit=args.ip_limit,
                        timeout=budget) for seed in range(seeds)]
    return out


def run_all(todo: list[RunSpec], store: ResultStore, threads: int) -> None:
    """Run the specs in order with a progress bar, storing each; print skips as they happen.

    Each run is a forked process killed at 1.5 x budget + 2 s (a solver that overruns its own
    time limit is stored as "timeout"), so the comparison's length is bounded.

    "network" gets the best network (lowest NC objective over seeds) of each baseline."""
    best: dict[str, tuple[float, list]] = {}
    with tqdm(todo, unit="run", dynamic_ncols=True) as bar:
        for spec in bar:
            bar.set_description(f"{spec.method} seed {spec.seed}")
            method = Method.parse(spec.method)
            given = None
            if method.uses_networks and best:
                given = [list(nets) for nets in zip(*(n for _, n in best.values()))]
            outcome = next(run_local([spec], 1, threads, networks=given, keep_networks=True))
            store.write(outcome)
            objective = outcome.row.get("network_objective", float("nan"))
            if method.model == "network" and outcome.networks and objective == objective and \
                    objective < best.get(method.solver, (float("inf"),))[0]:
                best[method.solver] = (objective, outcome.networks)
            if outcome.row["status"] in ("skipped", "error"):
                tqdm.write(f"{outcome.row['status']}: {spec.method} seed {spec.seed}: "
                           f"{outcome.row['message']}")


def run(args: argparse.Namespace) -> int:
    check_name(args.dataset)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.d is not None and not is_synthetic(args.dataset):
        raise ValueError(f"--d: dataset {args.dataset!r} has a fixed d; only synthetic data scale d")
    cfg = settings(args)
    if not is_synthetic(args.dataset) and args.n is None:
        cfg["n"] = min(cfg["n"], load_dataset(args.dataset, fold=args.fold).n)
    # a size or fold error, or targets the loss cannot take, is one line, not N rows
    check_loss(load_dataset(args.dataset, n=cfg["n"], d=args.d, fold=args.fold), args.loss)
    todo = specs(args, cfg)
    out = Path(args.out or f"reports/{args.dataset}")
    check_folder(out, "--out")
    store = ResultStore(out / "results")
    shutil.rmtree(store.root, ignore_errors=True)   # a comparison is always run afresh
    run_all(todo, store, args.threads)
    runs, traces = store.runs(), store.traces()
    order = {name: i for i, name in enumerate(dict.fromkeys(s.method for s in todo))}
    runs = runs.sort_values(["method", "seed"], key=lambda c: c.map(order) if c.name == "method"
                            else c, ignore_index=True)
    first = runs.iloc[0]
    title = f"dualnets compare: {args.dataset}"
    shown = {"n": first["n"], "d": first["d"], "n_test": first["n_test"], "task": first["task"],
             "beta": args.beta, "m1": args.m1, "loss": args.loss,
             "random patterns": cfg["patterns"],
             "baseline seeds": cfg["seeds"], "convex seeds": cfg["convex_seeds"],
             "baseline epochs": cfg["epochs"], "budget s": cfg["budget"],
             "threads": args.threads}
    print_table(compare_rows(runs), COMPARE_COLUMNS,
                title=f"{title} (" + ", ".join(f"{k} {v}" for k, v in shown.items()) + ")")
    failed = failed_rows(runs)
    if failed:
        print_table(failed, FAILED_COLUMNS, title="Failed runs (no result)")
    for line in verdict(runs):
        print(line)
    path = compare_report(runs, traces, out, title, shown)
    print(f"wrote {path} and its figures")
    return 0
