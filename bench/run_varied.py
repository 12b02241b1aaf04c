"""A varied generated set of ReLU programs: al and Clarabel side by side, per problem.

The set spans depth 2 and 3, m1 = 1..3, beta = 0.01..10 (beta = 10 with unit-scale targets
often makes z = 0 optimal), and degenerate data: duplicate rows, a constant column, features
scaled by 1e-3 and 1e3, y = 0.  Each (problem, solver) runs in this process with one thread;
"certified" is :func:`dualnets.certificate.is_certified` (|relative gap| and violation <= 1e-6)
of the returned point.  Usage::

    python bench/run_varied.py                       # 30 problems, al and clarabel, 60 s each
    python bench/run_varied.py --solvers al --count 12 --limit 15 --out build/varied.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

BETAS = (0.01, 0.1, 1.0, 10.0)


def varied_problem(index: int, n: int = 120, d: int = 6, P: int = 20):
    """Problem ``index`` of the set: its depth, m1, beta and data kind cycle over the grid."""
    from dualnets.patterns import sample_patterns
    from dualnets.problem import Problem
    from dualnets.varied import KINDS, varied_data

    depth, m1 = (2, 3)[index % 2], 1 + (index // 2) % 3
    beta, kind = BETAS[(index // 6) % 4], KINDS[(index + index // 6) % len(KINDS)]
    X, y = varied_data(np.random.default_rng(1000 + index), n, d, kind)
    name = f"v{index:02d}-d{depth}-m{m1}-b{beta:g}-{kind}"
    problem = Problem(X, y, beta, m1, depth=depth, name=name)
    return problem.with_patterns(sample_patterns(X, m1, P, index, depth))


def run_one(problem, solver: str, limit: float) -> dict:
    """Status, time and certificate of one solve."""
    from dualnets.metrics import evaluate
    from dualnets.registry import get_solver

    options = {"al": dict(max_seconds=limit, threads=1),
               "ipm": dict(max_seconds=limit, threads=1),
               "clarabel": dict(max_threads=1)}[solver]
    start = time.perf_counter()
    try:
        result = get_solver(solver, **options).solve(problem)
    except Exception as exc:        # noqa: BLE001  a crash is a row, not the end of the run
        return dict(problem=problem.name, solver=solver, status="crashed", error=repr(exc))
    wall = time.perf_counter() - start
    row = evaluate(problem, result, prune=False)
    return dict(problem=problem.name, solver=solver, status=result.status, seconds=wall,
                certified=bool(row.get("certified")), objective=row.get("objective"),
                relative_gap=row.get("relative_gap"), violation=row.get("constraint_violation"),
                inner=result.info.get("inner", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--solvers", nargs="+", default=["al", "clarabel"])
    parser.add_argument("--limit", type=float, default=60.0, help="al's and ipm's max_seconds")
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--d", type=int, default=6)
    parser.add_argument("--P", type=int, default=20)
    parser.add_argument("--out", help="write the rows as JSON")
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    rows, totals = [], {s: 0.0 for s in args.solvers}
    with threadpool_limits(1):
        for index in range(args.first, args.first + args.count):
            problem = varied_problem(index, args.n, args.d, args.P)
            line = [f"{problem.name:32s}"]
            for solver in args.solvers:
                row = run_one(problem, solver, args.limit)
                rows.append(row)
                totals[solver] += row.get("seconds", 0.0)
                line.append(f"{solver} {row['status']:>14s} cert={row.get('certified')!s:5s} "
                            f"{row.get('seconds', float('nan')):7.2f}s "
                            f"gap={row.get('relative_gap', float('nan')):+.1e}")
            print(" | ".join(line), flush=True)
    print("total seconds: " + ", ".join(f"{s} {t:.1f}" for s, t in totals.items()))
    for solver in args.solvers:
        mine = [r for r in rows if r["solver"] == solver]
        print(f"{solver}: {sum(r.get('certified', False) for r in mine)} of {len(mine)} certified")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
