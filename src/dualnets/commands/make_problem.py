"""Write a problem file from a dataset, with sampled or enumerated activation patterns."""

from __future__ import annotations

import argparse

from ..datasets import load_dataset
from ..io import load_network, save_problem
from ..outputs import check_file
from ..pattern_specs import SpecContext, apply_spec
from ..problem import LOSSES, Problem
from ..runner import check_loss


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `dualnets datasets`)")
    parser.add_argument("--n", type=int, help="number of training rows")
    parser.add_argument("--d", type=int, help="number of features (synthetic datasets)")
    parser.add_argument("--fold", type=int,
                        help="test fold of a dataset with folds (keel-*: 0-9; default seed %% 10)")
    parser.add_argument("--patterns", default="random:50", metavar="SPEC",
                        help="random:P (or just P), exhaustive, ... (default random:50)")
    parser.add_argument("--m1", type=int, default=2, help="first-layer width (default 2)")
    parser.add_argument("--depth", type=int, default=3, choices=(2, 3))
    parser.add_argument("--beta", type=float, default=1.0, help="regularization (default 1)")
    parser.add_argument("--loss", default="squared", choices=LOSSES,
                        help="training loss (default squared; logistic needs +-1 labels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--networks", nargs="+", metavar="FILE",
                        help="trained networks (.npz) for the `network` pattern strategy")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.npz")


def normalize_spec(spec: str) -> str:
    """A bare integer P means random:P."""
    return f"random:{spec}" if spec.strip().isdigit() else spec


def run(args: argparse.Namespace) -> int:
    check_file(args.output, "--output")
    data = load_dataset(args.dataset, n=args.n, d=args.d, seed=args.seed, fold=args.fold)
    if data.task == "multiclass":
        raise ValueError(f"dataset {args.dataset!r} is multiclass; pick a binary or regression one")
    check_loss(data, args.loss)
    problem = Problem(data.X_train, data.y_train, args.beta, args.m1, depth=args.depth,
                      loss=args.loss, X_test=data.X_test, y_test=data.y_test, name=args.dataset)
    ctx = SpecContext(seed=args.seed,
                      networks=[load_network(f) for f in args.networks or []])
    problem = apply_spec(problem, normalize_spec(args.patterns), ctx)
    save_problem(problem, args.output)
    print(f"wrote {args.output}: n = {problem.n}, d = {problem.d}, m1 = {problem.m1}, "
          f"P = {problem.n_patterns}, beta = {problem.beta:g}, loss = {problem.loss}")
    return 0
