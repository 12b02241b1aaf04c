"""Globally certified three-layer networks on 1-D regression and tiny d = 3 data (issue 13).

For each case, ``random:5,dual-search`` with exact pricing (dualnets.pricing: every realizable
pattern priced, automatic under the enumeration guard), then the global certificate of
dualnets.metrics.global_certificate: a lower bound on the NC objective of every network of any
width, and the gap of the rebuilt network to it.  Seconds count the enumeration, every solve
and every pricing round.  Projected SGD (5 seeds x 5 learning rates, K = 20, 1000 epochs) is
trained on the same problems; its best NC objective must stay above the bound.  Threads are
pinned to 1.  The figure shows the certified networks' fits over the data, SGD's best and
median-seed fits beside them.

Usage: python bench/run_global_certificate.py [--out reports/global_certificate]
       [--sgd-epochs 1000] [--sgd-seeds 5]
"""

if __name__ == "__main__":
    import argparse
    import json
    import time
    from pathlib import Path

    import matplotlib
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dualnets.certificate import certify
    from dualnets.commands.common import jsonable
    from dualnets.dual_search import dual_search
    from dualnets.lifting import Lifting
    from dualnets.metrics import evaluate, global_certificate
    from dualnets.network import nc_objective
    from dualnets.pattern_specs import SpecContext, apply_spec
    from dualnets.problem import Problem
    from dualnets.rebuild import prune_blocks, rebuild_network
    from dualnets.registry import get_solver

    # (n, d, m1): 1-D regression (d = 2 with the ones column) and tiny d = 3 problems
    CASES = [(10, 2, 1), (20, 2, 1), (50, 2, 1), (100, 2, 1), (10, 2, 2), (15, 2, 2),
             (30, 2, 2), (50, 2, 2), (100, 2, 2), (5, 3, 2), (10, 3, 1), (20, 3, 1)]
    FIGURE_CASES = [(100, 2, 1), (100, 2, 2)]
    BETA = 0.05

    def make_problem(n: int, d: int, m1: int) -> Problem:
        """x uniform in [-1, 1]^(d-1), y = sin(2.5 sum x) + 0.1 noise, a ones column."""
        rng = np.random.default_rng(1000 + n + 10 * d)
        x = rng.uniform(-1, 1, size=(n, d - 1))
        y = np.sin(2.5 * x.sum(axis=1)) + 0.1 * rng.standard_normal(n)
        return Problem(np.hstack([x, np.ones((n, 1))]), y, BETA, m1, name=f"n{n}d{d}m{m1}")

    def certified(problem: Problem) -> tuple[dict, object]:
        start = time.perf_counter()
        seeded = apply_spec(problem, "random:5", SpecContext(seed=0))
        out = dual_search(seeded, get_solver("clarabel"), seed=0)
        seconds = time.perf_counter() - start
        row = evaluate(out.problem, out.result)
        glob = global_certificate(out.problem, out.result, row["network_objective"],
                                  row["norm_violation"])
        lift = Lifting.from_problem(out.problem)
        net = rebuild_network(lift, prune_blocks(lift, problem.y, problem.beta, out.result.Z))
        cert = certify(lift, problem.y, problem.beta, out.result.Z)
        return {"pricing": out.pricing, "rounds": len(out.rounds),
                "final_patterns": out.problem.n_patterns, "network_objective":
                row["network_objective"], "convex_objective": cert.objective,
                "active_subnetworks": row["active_subnetworks"], "seconds": seconds} | glob, net

    def sgd_runs(problem: Problem, seeds: int, epochs: int):
        nets, objs, secs = [], [], 0.0
        for seed in range(seeds):
            res = get_solver("sgd", K=20, seeds=1, epochs=epochs, seed=seed).solve(problem)
            secs += res.solve_seconds
            if res.network is not None:
                nets.append(res.network)
                objs.append(nc_objective(res.network, problem.X, problem.y, problem.beta))
        order = np.argsort(objs)
        return [nets[i] for i in order], [objs[i] for i in order], secs

    def draw(panels: list, path: Path) -> None:
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), dpi=90)
        for ax, (problem, row, net, sgd_nets, sgd_objs) in zip(np.atleast_1d(axes), panels):
            x = problem.X[:, 0]
            grid = np.linspace(x.min() - 0.1, x.max() + 0.1, 400)
            G = np.column_stack([grid, np.ones_like(grid)])
            ax.scatter(x, problem.y, s=12, color="0.3", label="data", zorder=3)
            ax.plot(grid, net.predict(G), color="C0", lw=2.2, zorder=4,
                    label=f"convex, certified: {row['network_objective']:.4f}")
            mid = len(sgd_nets) // 2
            ax.plot(grid, sgd_nets[0].predict(G), color="C3", lw=1.2, ls="--",
                    label=f"SGD best of grid: {sgd_objs[0]:.4f}")
            ax.plot(grid, sgd_nets[mid].predict(G), color="C1", lw=1.0, ls=":",
                    label=f"SGD median seed: {sgd_objs[mid]:.4f}")
            ax.set_title(f"n = {problem.n}, m1 = {problem.m1}: lower bound "
                         f"{row['global_lower_bound']:.4f}, gap {row['global_gap']:.0e}",
                         fontsize=9)
            ax.set_xlabel("x")
            ax.legend(fontsize=7, loc="best")
        axes_list = np.atleast_1d(axes)
        axes_list[0].set_ylabel("y (NC objectives in the legend)")
        fig.tight_layout()
        fig.savefig(path)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/global_certificate")
    parser.add_argument("--sgd-epochs", type=int, default=1000)
    parser.add_argument("--sgd-seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, panels = [], []
    with threadpool_limits(1):
        for n, d, m1 in CASES:
            problem = make_problem(n, d, m1)
            row, net = certified(problem)
            sgd_nets, sgd_objs, sgd_secs = sgd_runs(problem, args.sgd_seeds, args.sgd_epochs)
            row |= {"n": n, "d": d, "m1": m1, "beta": BETA, "sgd_best": sgd_objs[0],
                    "sgd_median": sgd_objs[len(sgd_objs) // 2], "sgd_seconds": sgd_secs,
                    "sgd_above_bound": bool(min(sgd_objs) >= row["global_lower_bound"])}
            rows.append(row)
            print(json.dumps(jsonable({k: row[k] for k in (
                "n", "d", "m1", "pricing", "seconds", "rounds", "network_objective",
                "global_lower_bound", "global_gap", "globally_certified", "sgd_best",
                "sgd_seconds")})), flush=True)
            if (n, d, m1) in FIGURE_CASES:
                panels.append((problem, row, net, sgd_nets, sgd_objs))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(jsonable({"threads": 1, "rows": rows}),
                                                   indent=1))
    draw(panels, out.with_suffix(".png"))
