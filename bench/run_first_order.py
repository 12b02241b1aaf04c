"""First-order solvers (AL, gated FISTA) against Clarabel and scnn: time to a certified gap.

Planted data, m1 = 2, P sampled patterns; each (n, d, solver) runs in a fresh subprocess so that
its peak resident memory is its own.  Usage::

    python bench/run_first_order.py --grid n --solvers al clarabel --out build/fo_n.json
    python bench/run_first_order.py --n 1600 --d 10 50 200 --solvers al --threads 1
    python bench/run_first_order.py --n 1600 --solvers al --gemm-ratio      # hardware floor
    python bench/run_first_order.py --n 400 1600 --scnn                     # depth-2 peer
    python bench/run_first_order.py --dataset breast_cancer --P 500 --solvers al clarabel
    python bench/run_first_order.py --n 64000 --device cuda --dtype float32  # (bench/gpu_check.sh)

Reported per run: time to certified relative gap (and relative violation) 1e-4 and 1e-6 read
from the solver's trace (AL; the trace's device certificate is the formula of certify()), or
the solve time with the final certificate (Clarabel, scnn); peak RSS.  ``--gemm-ratio`` times
AL iterations against two plain GEMMs of the same shapes (``Z X^T`` into (G, n), ``W X``).
``--scnn`` solves the depth-2 program over the same gates with scnn's AL (unitize_data=False,
lambda = beta / n) and with ours, and compares times at scnn's achieved accuracy (objective
relative to our certified optimum, and violation).  Threads are pinned to --threads.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

GRIDS = {"n": [(n, 10) for n in (400, 1600, 16000, 64000)],
         "d": [(1600, d) for d in (10, 50, 200)],
         "large": [(n, 10) for n in (64000, 256000)],
         "gpu": [(n, 10) for n in (16000, 64000, 256000, 1000000)]}
LEVELS = (1e-4, 1e-6)


def planted_problem(n: int, d: int, m1: int, P: int, beta: float, seed: int, depth: int = 3,
                    dataset: str = "planted"):
    """Planted data (n, d), or every training row of a real ``dataset`` (n, d ignored)."""
    from dualnets.datasets import load_dataset
    from dualnets.patterns import sample_patterns
    from dualnets.problem import Problem

    if dataset == "planted":
        data = load_dataset("planted", n=n, d=d, seed=seed)
    else:
        data = load_dataset(dataset, seed=seed)
    name = f"planted{n}x{d}" if dataset == "planted" else dataset
    problem = Problem(data.X_train, data.y_train, beta, m1, depth=depth, name=name)
    return problem.with_patterns(sample_patterns(problem.X, m1, P, seed, depth))


def first_time(trace, level: float):
    """Seconds of the first trace row with |relative gap| and violation <= level (None if never;
    a negative gap, at an infeasible point, counts only within the level)."""
    for seconds, _it, _obj, gap, viol in trace:
        if abs(gap) <= level and viol <= level:
            return seconds
    return None


def run_solver(args, n: int, d: int, solver: str) -> dict:
    """One solve in this (child) process."""
    import torch
    from threadpoolctl import threadpool_limits

    from dualnets.metrics import evaluate
    from dualnets.registry import get_solver

    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        problem = planted_problem(n, d, args.m1, args.P, args.beta, args.seed, args.depth,
                                  args.dataset)
        n, d = problem.n, problem.d
        base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        options = {"clarabel": dict(direct_solve_method=args.clarabel_method,
                                    max_threads=args.threads),
                   "al": dict(max_seconds=args.limit, threads=args.threads, device=args.device,
                              dtype=args.dtype, working_set=not args.no_working_set),
                   "ipm": dict(max_seconds=args.limit, threads=args.threads, device=args.device),
                   "gated-fista": dict(max_seconds=args.limit, threads=args.threads)}[solver]
        start = time.perf_counter()
        result = get_solver(solver, **options).solve(problem)
        wall = time.perf_counter() - start
        row = evaluate(problem, result, prune=False)
    out = dict(solver=solver, dataset=args.dataset, model=result.model, n=n, d=d,
               P=problem.n_patterns, inner=result.info.get("inner", ""),
               device=args.device if solver in ("al", "ipm") else "cpu",
               dtype=args.dtype if solver == "al" else "float64",
               working_set_patterns=result.info.get("working_set_patterns"),
               threads=args.threads, status=result.status, iterations=result.iterations,
               setup_seconds=result.setup_seconds, warmup_seconds=result.warmup_seconds,
               solve_seconds=result.solve_seconds, wall_seconds=wall,
               objective=row.get("objective"), relative_gap=row.get("relative_gap"),
               violation=row.get("constraint_violation", 0.0),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               base_rss_mb=base_mb)
    for level in LEVELS:
        key = f"seconds_to_{level:.0e}"
        if result.trace:
            out[key] = first_time(result.trace, level)
        else:   # no trace: the final point counts only if it meets the level
            ok = out["relative_gap"] is not None and out["relative_gap"] <= level and \
                out["violation"] <= level
            out[key] = result.solve_seconds if ok else None
    return out


def gemm_ratio(args, n: int, d: int, repeats: int = 20) -> dict:
    """Seconds per AL iteration (gradient + FISTA step) over seconds of two plain GEMMs, and
    the same for one Newton step (``inner="newton"``, a full step: ``eta = 0``) at
    multipliers ``lam = 1``."""
    import torch

    from dualnets.lifting import Lifting
    from dualnets.solvers.al_newton import NewtonInner
    from dualnets.solvers.torch_ops import Fista, TorchLifting

    torch.set_num_threads(args.threads)
    problem = planted_problem(n, d, args.m1, args.P, args.beta, args.seed, args.depth)
    ops = TorchLifting(Lifting.from_problem(problem), problem.y)
    ws = ops.workspace()
    Z = torch.randn(ops.G, d, dtype=torch.float64) * 0.01
    lam_i, lam_o = ops.zeros_inner(), ops.zeros_outer()
    fista = Fista(Z)

    def al_iteration():
        fista.step(ops.al_gradient(fista.y, lam_i, lam_o, 1.0, ws), 1e6, problem.beta)

    U, g = torch.empty(ops.G, n, dtype=torch.float64), torch.empty(ops.G, d, dtype=torch.float64)

    def two_gemms():
        torch.matmul(Z, ops.Xt, out=U)
        torch.matmul(U, ops.X, out=g)

    newton = NewtonInner(ops) if ops.G * d <= 5000 else None
    ones_i, ones_o = torch.ones_like(lam_i), torch.ones_like(lam_o)

    def newton_step():
        newton.step(Z, ones_i, ones_o, 1.0, problem.beta, 0.0, ws)

    timings = {}
    plan = [("gemm", two_gemms), ("al", al_iteration), ("gemm2", two_gemms),
            ("al2", al_iteration)] + ([("newton", newton_step)] if newton else [])
    for name, fn in plan:
        fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        timings[name] = (time.perf_counter() - start) / repeats
    gemm, it = min(timings["gemm"], timings["gemm2"]), min(timings["al"], timings["al2"])
    step = timings.get("newton", float("nan"))
    return dict(n=n, d=d, G=ops.G, threads=args.threads, al_iteration_seconds=it,
                two_gemm_seconds=gemm, ratio=it / gemm, newton_step_seconds=step,
                newton_ratio=step / gemm)


def run_scnn(args, n: int, d: int) -> list[dict]:
    """scnn's AL and ours on the same depth-2 program (gates -> masks), equal-accuracy times."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    from dualnets.certificate import certify
    from dualnets.datasets import load_dataset
    from dualnets.lifting import Lifting
    from dualnets.problem import Patterns, Problem
    from dualnets.solvers.al import AugmentedLagrangian

    torch.set_num_threads(args.threads)
    data = load_dataset("planted", n=n, d=d, seed=args.seed)
    X, y = data.X_train, data.y_train
    gates = np.random.default_rng(args.seed).standard_normal((d, args.P * args.m1))
    inner = (X @ gates >= 0).T.reshape(args.P, args.m1, n)
    patterns = Patterns(inner, np.ones((args.P, args.m1), np.int8), np.ones((args.P, n), bool))
    problem = Problem(X, y, args.beta, args.m1, depth=2, patterns=patterns)
    lift = Lifting.from_problem(problem)
    rows = []
    with threadpool_limits(args.threads):
        ours = AugmentedLagrangian(max_seconds=args.limit).solve(problem)
        ref = certify(lift, y, args.beta, ours.Z, ours.lam_inner, ours.lam_outer)
        rows.append(dict(solver="al", n=n, d=d, seconds=ours.solve_seconds,
                         status=ours.status, objective=ref.objective,
                         relative_gap=ref.relative_gap, violation=ref.constraint_violation))
        for tol in args.scnn_tols:
            Z, seconds = _scnn_solve(X, y, gates, args.beta, tol)
            cert = certify(lift, y, args.beta, Z)
            err = (cert.objective - ref.objective) / ref.objective
            acc = max(abs(err), cert.constraint_violation)
            ours_t = next((s for s, _i, obj, _g, viol in ours.trace
                           if abs(obj - ref.objective) / ref.objective <= acc and viol <= acc),
                          None)
            rows.append(dict(solver="scnn-al", n=n, d=d, tol=tol, seconds=seconds,
                             objective=cert.objective, objective_rel_err=err,
                             violation=cert.constraint_violation, accuracy=acc,
                             al_seconds_at_accuracy=ours_t,
                             ratio_scnn_over_al=None if not ours_t else seconds / ours_t,
                             reference_gap=ref.relative_gap))
    return rows


def _scnn_solve(X, y, gates, beta: float, tol: float):
    """scnn's AL on ConvexReLU with the given gates; returns our Z layout and seconds."""
    import numpy as np
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    n, p = X.shape[0], gates.shape[1]
    model = ConvexReLU(gates, c=1)
    solver = AL(model, tol=tol, constraint_tol=tol)
    start = time.perf_counter()
    model, _ = optimize_model(model, solver, Metrics(), X, y, regularizer=NeuronGL1(beta / n),
                              unitize_data=False, return_convex=True, dtype="float64",
                              verbose=False)
    seconds = time.perf_counter() - start
    v, w = (np.asarray(a)[0] for a in model.parameters)     # (p', d) each
    # scnn re-extracts (and may reorder or deduplicate) its gates: match masks to ours.
    # our groups: block b = sigma * P + c, group b * m1 + j; mask index c * m1 + j
    masks = list(enumerate((X @ gates >= 0).T))
    ours = {np.packbits(col).tobytes(): k for k, col in reversed(masks)}
    Z = np.zeros((2 * p, X.shape[1]))
    for k, col in enumerate((X @ np.asarray(model.G) >= 0).T):
        mine = ours[np.packbits(col).tobytes()]
        Z[mine] += v[k]
        Z[p + mine] += w[k]
    return Z, seconds


def child(args) -> None:
    n, d = args.n[0], args.d[0]
    if args.gemm_ratio:
        rows = [gemm_ratio(args, n, d)]
    elif args.scnn:
        rows = run_scnn(args, n, d)
    else:
        rows = [run_solver(args, n, d, args.solvers[0])]
    print("ROWS " + json.dumps(rows))


def spawn(argv: list[str], n: int, d: int, extra: list[str], timeout: float) -> list[dict]:
    cmd = [sys.executable, __file__, *argv, "--child", "--n", str(n), "--d", str(d), *extra]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [dict(n=n, d=d, extra=" ".join(extra), status="killed (timeout)")]
    for line in done.stdout.splitlines():
        if line.startswith("ROWS "):
            return json.loads(line[5:])
    return [dict(n=n, d=d, extra=" ".join(extra), status="crashed",
                 error=done.stderr.strip().splitlines()[-1:] or "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), help="a predefined (n, d) grid")
    parser.add_argument("--n", type=int, nargs="+", default=[1600])
    parser.add_argument("--d", type=int, nargs="+", default=[10])
    parser.add_argument("--solvers", nargs="+", default=["al"],
                        help="registered solvers: al, ipm, gated-fista, clarabel")
    parser.add_argument("--m1", type=int, default=2)
    parser.add_argument("--P", type=int, default=50)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per solve")
    parser.add_argument("--clarabel-method", choices=["qdldl", "faer"], default="qdldl",
                        help="Clarabel's direct_solve_method (faer was 1.4x faster at n = 1600)")
    parser.add_argument("--dataset", default="planted",
                        help="planted (n, d as given) or a real dataset (all training rows)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="al's and ipm's device")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--no-working-set", action="store_true",
                        help="al over every block at once (working_set=False)")
    parser.add_argument("--gemm-ratio", action="store_true")
    parser.add_argument("--scnn", action="store_true")
    parser.add_argument("--scnn-tols", type=float, nargs="+", default=[1e-4, 1e-6])
    parser.add_argument("--out", help="write rows as .json or .csv")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = GRIDS[args.grid] if args.grid else [(n, d) for n in args.n for d in args.d]
    common = ["--m1", str(args.m1), "--P", str(args.P), "--depth", str(args.depth), "--beta",
              str(args.beta), "--seed", str(args.seed), "--threads", str(args.threads),
              "--limit", str(args.limit), "--clarabel-method", args.clarabel_method,
              "--dataset", args.dataset, "--device", args.device, "--dtype", args.dtype,
              *(["--no-working-set"] if args.no_working_set else []),
              "--scnn-tols", *map(str, args.scnn_tols)]
    jobs = [["--gemm-ratio"]] if args.gemm_ratio else [["--scnn"]] if args.scnn else [
        ["--solvers", s] for s in args.solvers]
    rows = []
    for n, d in sizes:
        for extra in jobs:
            for row in spawn(common, n, d, extra, timeout=3 * args.limit + 120):
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        write(rows, Path(args.out))


def write(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        keys = sorted({k for r in rows for k in r})
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
