"""Solve the convex program of a problem file and certify the answer.

Prints a short table and, with --json, writes objective, dual_objective, gap, relative_gap,
constraint_violation, certified, status, network_objective, active_subnetworks, n_patterns,
solve_seconds, solver and the global certificate: global_lower_bound, global_gap,
globally_certified (null when the realizable patterns are too many to price exactly).  Exit
status 1 when the solver returned no solution.
"""

from __future__ import annotations

import argparse

from ..io import load_network, load_problem
from ..metrics import GLOBAL_KEYS, evaluate, global_certificate
from ..pattern_specs import SpecContext, apply_spec
from ..options import parse_pairs, typed_options
from ..outputs import check_file
from ..registry import available_solvers, get_solver, solver_class
from .common import print_table, write_json

JSON_KEYS = ("objective", "dual_objective", "gap", "relative_gap", "constraint_violation",
             "certified", "status", "network_objective", "active_subnetworks", "n_patterns",
             "solve_seconds", "solver") + GLOBAL_KEYS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", help="problem file (.npz, docs/design.md section 5)")
    parser.add_argument("--solver", default="clarabel",
                        help=f"one of {', '.join(available_solvers())} (default clarabel)")
    parser.add_argument("--patterns", metavar="SPEC",
                        help="replace the stored patterns: random:P, exhaustive, ...")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampled patterns")
    parser.add_argument("--networks", nargs="+", metavar="FILE",
                        help="trained networks (.npz, e.g. from `dualnets train --save-network`) "
                             "for the `network` pattern strategy")
    parser.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    parser.add_argument("--solver-option", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter of the solver, repeatable: tol=1e-9, max_iters=200, "
                             "direct_solve_method=qdldl (Clarabel), ...")


def make_solver(name: str, pairs: list[str]):
    """The solver with its ``--solver-option`` values parsed into the types its class takes."""
    options = typed_options(solver_class(name), parse_pairs(pairs), f"solver {name!r}", text=True)
    try:
        return get_solver(name, **options)   # its range checks raise their own ValueError
    except TypeError as exc:
        raise ValueError(f"bad --solver-option for {name!r}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    solver = make_solver(args.solver, args.solver_option)
    check_file(args.json, "--json")
    problem = load_problem(args.problem)
    ctx = SpecContext(seed=args.seed, networks=[load_network(f) for f in args.networks or []])
    if args.patterns:
        problem = apply_spec(problem, args.patterns, ctx)
    problem.require_patterns()
    solver.check_supported(problem)
    result = solver.solve(problem)
    solved = result.Z is not None or result.network is not None
    row = evaluate(problem, result)
    if "network_objective" in row:
        row |= global_certificate(problem, result, row["network_objective"],
                                  row.get("norm_violation", 0.0))
    if solver.objective_kind:
        row["objective_kind"] = solver.objective_kind
    if ctx.log:
        row["pattern_log"] = ctx.log   # e.g. the dual-search rounds
    for key in JSON_KEYS:
        row.setdefault(key, None if key in GLOBAL_KEYS else
                       float("nan") if key != "certified" else False)
    print_table([row], ["solver", "model", "status", "objective", "dual_objective", "relative_gap",
                        "constraint_violation", "certified", "network_objective",
                        "active_subnetworks", "n_patterns", "solve_seconds"])
    if args.json:
        write_json(args.json, row)
    return 0 if solved and row["status"] != "error" else 1
