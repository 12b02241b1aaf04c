"""How far is a trained network from the best of its architecture?

Takes a problem file and a trained network (`dualnets train --save-network`, same d and m1)
and reports the network's NC objective and two certified convex optima: over the network's own
activation patterns (the convex program seeded by it, docs/design.md section 2: never above
the network's NC objective), and after column generation (dual-search) from those patterns.
A network of the same architecture (enough sub-networks) attains each optimum, so the
differences say how much lower its objective can go.  --json writes network_objective,
seeded_objective, seeded_certified, seeded_relative_gap, searched_objective,
searched_certified, searched_relative_gap, searched_patterns, improvement (relative, from the
network to the searched optimum) and seconds.
"""

from __future__ import annotations

import argparse
import time

from ..dual_search import SearchConfig, default_search_solver, dual_search
from ..io import load_problem
from ..metrics import evaluate
from ..network import ParallelNet, nc_objective
from ..pattern_specs import SpecContext, apply_spec
from ..registry import convex_solvers, get_solver
from .common import print_table, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("problem", help="problem file (.npz, docs/design.md section 5)")
    parser.add_argument("--network", required=True, metavar="FILE.npz",
                        help="the trained network (dualnets train --save-network)")
    parser.add_argument("--solver", choices=convex_solvers(),
                        help="convex solver (default: that of dual-search's rounds, "
                             "dual_search.default_search_solver: clarabel on the squared loss "
                             "when the pricing is exact or below 200 rows, else al)")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds for the column generation (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    parser.add_argument("--json", metavar="OUT.json", help="write the result as JSON")


def run(args: argparse.Namespace) -> int:
    if not args.budget > 0:
        raise ValueError(f"--budget must be > 0 seconds, got {args.budget}")
    start = time.perf_counter()
    problem = load_problem(args.problem)
    net = ParallelNet.load(args.network)
    if net.depth != problem.depth:
        raise ValueError(f"the network has depth {net.depth}, the problem depth {problem.depth}")
    seeded = apply_spec(problem, "network", SpecContext(seed=args.seed, networks=[net]))
    solver = get_solver(args.solver or default_search_solver(seeded))
    solver.check_supported(seeded)
    first = evaluate(seeded, solver.solve(seeded))
    rounds = solver if args.solver else None    # None: dual_search's default, which knows
    #                                             whether the pricing is exact
    found = dual_search(seeded, rounds, SearchConfig(max_seconds=args.budget), seed=args.seed)
    last = evaluate(found.problem, found.result)
    network = nc_objective(net, problem.X, problem.y, problem.beta, problem.loss)
    row = {"network_objective": network,
           "seeded_objective": first.get("objective"),
           "seeded_certified": first.get("certified", False),
           "seeded_relative_gap": first.get("relative_gap"),
           "seeded_patterns": seeded.n_patterns,
           "searched_objective": last.get("objective"),
           "searched_certified": last.get("certified", False),
           "searched_relative_gap": last.get("relative_gap"),
           "searched_patterns": found.problem.n_patterns,
           "improvement": (network - last["objective"]) / abs(network) if network else 0.0,
           "solver": found.result.solver, "seconds": time.perf_counter() - start}
    print_table([row], ["network_objective", "seeded_objective", "seeded_certified",
                        "searched_objective", "searched_certified", "improvement", "seconds"])
    print(f"a network of this architecture can reach NC = {row['searched_objective']:.6g}, "
          f"{100 * row['improvement']:.3g}% below this one's {network:.6g}"
          + ("" if row["searched_certified"] else " (not certified: see the relative gap)"))
    if args.json:
        write_json(args.json, row)
    return 0
