"""What the asv benchmarks share: thread pinning, the problems of the grid, skipping, running.

A grid point a method cannot take is skipped the asv way (``NotImplementedError`` in ``setup``),
with the reason: a method not registered in the benchmarked commit (the history predates it), a
size above the method's limit in the profile, or ``supports(problem)`` saying no.  Anything else
that goes wrong is an error, and the benchmark fails.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import threadpoolctl
import torch
import torch._dynamo  # noqa: F401 - the first optimizer step imports it lazily (~2 s per process)

from dualnets.datasets import load_dataset
from dualnets.metrics import evaluate
from dualnets.patterns import sample_patterns
from dualnets.problem import Problem
from dualnets.registry import available_solvers, get_solver, solver_class

from .params import THREADS, Profile



def benchmarked_methods(network: bool) -> list[str]:
    """Registered classes that declare ``benchmarked`` (default True): the baselines (model
    "network") or the convex solvers.  Importing them here also means that, with asv's
    forkserver, every solver is imported once, in the server, instead of in each forked
    benchmark (cvxpy alone takes ~2.5 s to import here)."""
    return [name for name in available_solvers()
            if getattr(solver_class(name), "benchmarked", True)
            and (solver_class(name).model == "network") == network]


SOLVERS = benchmarked_methods(network=False)
BASELINES = benchmarked_methods(network=True)


def pin_threads(threads: int = THREADS) -> None:
    """One BLAS/OpenMP pool size and one torch intra-op pool size for every benchmark.

    The threadpoolctl limit is process-wide and stays in force (it is never restored here).
    """
    torch.set_num_threads(threads)
    threadpoolctl.threadpool_limits(limits=threads)


def make_problem(profile: Profile, n: int, d: int) -> Problem:
    """The planted classification problem of grid point (n, d) with sampled patterns.

    ``beta = profile.beta_per_sample * n``; ``profile.n_patterns`` patterns of width
    ``profile.m1_solve``; data and patterns seeded by ``profile.seed``.
    """
    m1 = profile.m1_solve
    data = load_dataset("planted", n=n, d=d, seed=profile.seed, classification=True)
    problem = Problem(data.X_train, data.y_train, profile.beta_per_sample * n, m1,
                      X_test=data.X_test, y_test=data.y_test, name=f"planted-n{n}-d{d}")
    return problem.with_patterns(sample_patterns(problem.X, m1, profile.n_patterns,
                                                 seed=profile.seed))


def make_problems(profile: Profile) -> dict[tuple[int, int], Problem]:
    """Every (n, d) problem of the profile's grid."""
    return {(n, d): make_problem(profile, n, d) for n in profile.n for d in profile.d}


_warm: set[str] = set()


def warm_up(name: str, solver, profile: Profile) -> None:
    """Solve a tiny problem once per process, so that first-call costs (lazy imports and
    initialisation in torch and cvxpy) stay off the clock of the benchmark that follows."""
    if name not in _warm:
        tiny = make_problem(replace(profile, n_patterns=4), 20, 3)
        solver.solve(tiny)
        _warm.add(name)


def require(name: str, problem: Problem, options: dict, max_nd: int | None = None,
            max_d: int | None = None):
    """An instance of method ``name`` with ``options`` for ``problem``; NotImplementedError
    (asv: skip) if the method is not registered, ``n * d`` is above ``max_nd``, ``d`` above
    ``max_d``, or it does not support the problem."""
    if name not in available_solvers():
        raise NotImplementedError(f"{name!r} is not registered in this version of dualnets")
    if max_nd is not None and problem.n * problem.d > max_nd:
        raise NotImplementedError(
            f"{name} skipped at n*d = {problem.n * problem.d}: above its limit {max_nd}")
    if max_d is not None and problem.d > max_d:
        raise NotImplementedError(f"{name} skipped at d = {problem.d}: above its limit {max_d}")
    solver = get_solver(name, **options)
    ok, why = solver.supports(problem)
    if not ok:
        raise NotImplementedError(f"{name} does not support this problem: {why}")
    return solver


def benchmarked(name: str, problem: Problem, profile: Profile, options: dict | None = None):
    """:func:`require` with the profile's options (or ``options``) and size limit for ``name``."""
    return require(name, problem, profile.solver_options.get(name, {}) if options is None
                   else options, profile.max_nd.get(name))


def model_of(name: str) -> str | None:
    """What the method's weights mean ("relu", "gated" or "network"); None if unregistered."""
    return solver_class(name).model if name in available_solvers() else None


def run(name: str, problem: Problem, options: dict, max_nd: int | None = None,
        max_d: int | None = None) -> dict:
    """``metrics.evaluate`` of one solve, or ``{"skipped": reason}`` / ``{"error": message}``.

    Errors are recorded, not raised, so that one failing method fails only its own benchmarks.
    """
    try:
        solver = require(name, problem, options, max_nd, max_d)
    except NotImplementedError as exc:
        return {"skipped": str(exc)}
    try:
        result = solver.solve(problem)
    except Exception as exc:  # noqa: BLE001 - reported by the benchmarks that read this row
        return {"error": f"{type(exc).__name__}: {exc}"}
    row = evaluate(problem, result)
    if result.status in ("error", "infeasible"):
        row["error"] = f"status {result.status}: {result.message}"
    return row


def reference(problem: Problem, profile: Profile) -> dict:
    """The high-accuracy optimum of the convex program: the first usable entry of
    ``profile.references``, or ``{"skipped": ...}`` when none can take the problem.

    The reference must be certified (``metrics.evaluate``) with ``|relative gap|`` at most
    ``profile.reference_gap``; otherwise the row carries an error.
    """
    reasons = []
    for ref in profile.references:
        name = ref.name
        row = run(name, problem, ref.options, ref.max_nd, ref.max_d)
        if "skipped" in row:
            reasons.append(row["skipped"])
            continue
        gap = row.get("relative_gap", math.inf)
        if "error" not in row and not (row.get("certified") and abs(gap) <= profile.reference_gap):
            row["error"] = (f"reference {name} not certified to {profile.reference_gap}: relative "
                            f"gap {gap}, violation {row.get('constraint_violation')}")
        return row
    return {"skipped": "no reference solver: " + "; ".join(reasons)}


def read(row: dict, key: str, what: str, optional: bool = False) -> float:
    """``row[key]`` as a float, after turning a skipped or failed row into skip or error.

    A missing or NaN value is an error, or a skip when ``optional`` (a metric the method's
    model lacks, e.g. the gated model's test accuracy).
    """
    if "skipped" in row:
        raise NotImplementedError(row["skipped"])
    if "error" in row:
        raise RuntimeError(f"{what} failed: {row['error']}")
    value = row.get(key)
    if optional and (value is None or not np.isfinite(value)):
        raise NotImplementedError(f"{what}: metrics.evaluate gives no {key} for this model")
    if value is None or not np.isfinite(value):
        raise RuntimeError(f"{what}: expected a finite {key}, got {value!r}")
    return float(value)
