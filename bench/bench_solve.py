"""Solver benchmarks over solver x n x d: time, peak memory, certified gap, excess, accuracy.

Every number a ``track_*`` benchmark reports comes from ``dualnets.metrics.evaluate`` of one
solve made in the shared ``setup_cache`` (:class:`bench.caches.SolvedGrid`); ``setup`` only
looks it up.  Threads are pinned to ``bench.params.THREADS`` (1) in every process.
"""

from __future__ import annotations

from .caches import PROFILE, ProblemGrid, SolvedGrid
from .common import BASELINES, SOLVERS, benchmarked, model_of, pin_threads, read, warm_up

SOLVE_PARAMS = (SOLVERS, list(PROFILE.n), list(PROFILE.d))
METHOD_PARAMS = (SOLVERS + BASELINES, list(PROFILE.n), list(PROFILE.d))
NAMES = ("solver", "n", "d")


class Solve(ProblemGrid):
    """Wall time and peak memory of ``solver.solve(problem)`` (model building included).

    ``setup`` first solves a tiny problem once per process (:func:`bench.common.warm_up`), so
    the clock sees a steady-state solve.  Peak memory is the process's maximum RSS, which
    includes the ~300 MB of imported libraries (torch, cvxpy, scikit-learn).
    """

    params = SOLVE_PARAMS
    param_names = NAMES
    timeout = PROFILE.timeouts["solve"]
    number = 1
    repeat = PROFILE.repeat
    rounds = PROFILE.rounds
    warmup_time = 0.0

    def setup(self, problems, solver, n, d):
        pin_threads()
        self.problem = problems[n, d]
        self.solver = benchmarked(solver, self.problem, PROFILE)
        warm_up(solver, self.solver, PROFILE)

    def time_solve(self, problems, solver, n, d):
        self.solver.solve(self.problem)

    def peakmem_solve(self, problems, solver, n, d):
        self.solver.solve(self.problem)


class RelativeGap(SolvedGrid):
    """Certified relative duality gap (P - D) / P of the returned solution (lower is better)."""

    params = SOLVE_PARAMS
    param_names = NAMES
    unit = "relative gap"

    def setup(self, cache, solver, n, d):
        self.value = read(cache["rows"][solver, n, d], "relative_gap",
                          f"{solver} at n={n}, d={d}", optional=model_of(solver) != "relu")

    def track_relative_gap(self, cache, solver, n, d):
        return self.value


class ObjectiveExcess(SolvedGrid):
    """(P - P_ref) / |P_ref|: objective above a high-accuracy reference optimum (lower is
    better; slightly negative when the solution violates the constraints a little)."""

    params = SOLVE_PARAMS
    param_names = NAMES
    unit = "relative excess"

    def setup(self, cache, solver, n, d):
        row, ref = cache["rows"][solver, n, d], cache["reference"][n, d]
        where = f"at n={n}, d={d}"
        objective = read(row, "objective", f"{solver} {where}")
        if model_of(solver) != "relu":
            raise NotImplementedError(f"{solver} solves another program (model "
                                      f"{model_of(solver)!r}): no excess over the ReLU optimum")
        optimum = read(ref, "objective", f"reference {where}")
        self.value = (objective - optimum) / abs(optimum)

    def track_objective_excess(self, cache, solver, n, d):
        return self.value


class TestAccuracy(SolvedGrid):
    """Test accuracy of the (rebuilt or trained) network, in percent: HIGHER is better, so a
    rise that `asv compare` marks as a regression is an improvement."""

    params = METHOD_PARAMS
    param_names = ("method", "n", "d")
    unit = "%"
    pretty_name = "test accuracy, % (higher is better)"

    def setup(self, cache, method, n, d):
        self.value = 100.0 * read(cache["rows"][method, n, d], "test_accuracy",
                                  f"{method} at n={n}, d={d}", optional=model_of(method) == "gated")

    def track_test_accuracy(self, cache, method, n, d):
        return self.value
