"""Solve the convex program of a problem file and certify the answer.

Prints a short table and, with --json, writes objective, dual_objective, gap, relative_gap,
constraint_violation, certified, status, network_objective, active_subnetworks, n_patterns,
solve_seconds and solver.  Exit status 1 when the solver returned no solution.
"""

from __future__ import annotations

import argparse

from ..io import load_problem
from ..metrics import evaluate
from ..pattern_specs import SpecContext, apply_spec
from ..registry import available_solvers, get_solver
from .common import print_table, write_json

JSON_KEYS = ("objective", "dual_objective", "gap", "relative_gap", "constraint_violation",
             "certified", "status", "network_objective", "active_subnetworks", "n_patterns",
             "solve_seconds", "solver")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", help="problem file (.npz, DESIGN.md section 5)")
    parser.add_argument("--solver", default="clarabel",
                        help=f"one of {', '.join(available_solvers())} (default clarabel)")
    parser.add_argument("--patterns", metavar="SPEC",
                        help="replace the stored patterns: random:P, exhaustive, ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampled patterns")
    parser.add_argument("--json", metavar="OUT.json", help="write the result as JSON")


def run(args: argparse.Namespace) -> int:
    solver = get_solver(args.solver)
    problem = load_problem(args.problem)
    if args.patterns:
        problem = apply_spec(problem, args.patterns, SpecContext(seed=args.seed))
    problem.require_patterns()
    ok, why = solver.supports(problem)
    if not ok:
        raise ValueError(f"solver {args.solver!r} cannot solve this problem: {why}")
    row = evaluate(problem, solver.solve(problem))
    for key in JSON_KEYS:
        row.setdefault(key, float("nan") if key not in ("certified",) else False)
    print_table([row], ["solver", "status", "objective", "dual_objective", "relative_gap",
                        "constraint_violation", "certified", "network_objective",
                        "active_subnetworks", "n_patterns", "solve_seconds"])
    if args.json:
        write_json(args.json, row)
    return 0 if row.get("status") != "error" and "relative_gap" in row else 1
