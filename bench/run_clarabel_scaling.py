"""Clarabel on the exact program as n grows: solve time, peak memory, certified gap.

Each size runs in a fresh subprocess, so that its peak resident memory (ru_maxrss) is its own.
Usage::

    python bench/run_clarabel_scaling.py --n 100 400 1600 --d 10 --m1 2 --patterns 20
    python bench/run_clarabel_scaling.py --n 3200 6400 --limit 300     # largest n within 5 min
    python bench/run_clarabel_scaling.py --n 1600 --method auto        # Clarabel's own choice

Threads are pinned (BLAS and torch to --threads, 1 by default) and reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one_size(n: int, d: int, m1: int, patterns: int, beta: float, seed: int, threads: int,
             method: str | None = None) -> dict:
    """Build, solve and certify one problem (run inside the child process)."""
    from threadpoolctl import threadpool_limits
    import torch

    from dualnets.datasets import load_dataset
    from dualnets.metrics import evaluate
    from dualnets.pattern_specs import SpecContext, apply_spec
    from dualnets.problem import Problem
    from dualnets.registry import get_solver

    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        data = load_dataset("planted", n=n, d=d, seed=seed)
        problem = apply_spec(Problem(data.X_train, data.y_train, beta, m1),
                             f"random:{patterns}", SpecContext(seed=seed))
        start = time.perf_counter()
        options = {} if method is None else {"direct_solve_method": method}
        result = get_solver("clarabel", **options).solve(problem)
        wall = time.perf_counter() - start
        row = evaluate(problem, result)
    keep = ("status", "objective", "relative_gap", "constraint_violation", "certified",
            "setup_seconds", "solve_seconds", "iterations", "n_patterns")
    out = {k: row.get(k) for k in keep}
    out.update(n=n, d=d, m1=m1, wall_seconds=wall, threads=threads, method=method or "qdldl",
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--m1", type=int, default=2)
    parser.add_argument("--patterns", type=int, default=20)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per size")
    parser.add_argument("--method", default=None,
                        help="Clarabel direct_solve_method (default: dualnets' default, qdldl)")
    parser.add_argument("--out", help="write the rows as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_size(args.n[0], args.d, args.m1, args.patterns, args.beta,
                                  args.seed, args.threads, args.method)))
        return
    rows = []
    for n in args.n:
        cmd = [sys.executable, __file__, "--child", "--n", str(n), "--d", str(args.d),
               "--m1", str(args.m1), "--patterns", str(args.patterns), "--beta", str(args.beta),
               "--seed", str(args.seed), "--threads", str(args.threads)]
        if args.method:
            cmd += ["--method", args.method]
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit)
            row = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {
                "n": n, "status": "error", "message": done.stderr.strip().splitlines()[-1:]}
        except subprocess.TimeoutExpired:
            row = {"n": n, "status": "time_limit", "wall_seconds": time.perf_counter() - start}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
