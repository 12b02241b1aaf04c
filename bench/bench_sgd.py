"""Non-convex baselines over baseline x n x d: one epoch's time, NC objective vs the convex optimum.

``track_sgd_excess`` is ``(NC(theta) - P_ref) / |P_ref|`` with ``NC(theta)`` the NC objective of
the baseline's best network (``metrics.evaluate``'s ``network_objective``, from the shared solve
cache) and ``P_ref`` the reference optimum of the convex program over the problem's sampled
patterns.  That optimum is an upper bound on the global one, so a negative excess (the network
beats the sampled-pattern program) is possible and is reported as it is.
"""

from __future__ import annotations

from .caches import PROFILE, ProblemGrid, SolvedGrid
from .common import BASELINES, benchmarked, pin_threads, read, warm_up

PARAMS = (BASELINES, list(PROFILE.n), list(PROFILE.d))
NAMES = ("baseline", "n", "d")


class SgdEpoch(ProblemGrid):
    """One training epoch (``PROFILE.sgd_epoch_options``: minibatches, one lr, one seed),
    including the network's initialisation and final NC evaluation."""

    params = PARAMS
    param_names = NAMES
    timeout = PROFILE.timeouts["solve"]
    number = 1
    repeat = PROFILE.repeat
    warmup_time = 0.0

    def setup(self, problems, baseline, n, d):
        pin_threads()
        self.problem = problems[n, d]
        self.solver = benchmarked(baseline, self.problem, PROFILE,
                                  PROFILE.sgd_epoch_options)
        warm_up(baseline, self.solver, PROFILE)

    def time_sgd_epoch(self, problems, baseline, n, d):
        self.solver.solve(self.problem)


class SgdExcess(SolvedGrid):
    """Relative excess of the baseline's NC objective over the convex reference optimum
    (lower is better; negative: the network beats the sampled-pattern convex program)."""

    params = PARAMS
    param_names = NAMES
    unit = "relative excess"

    def setup(self, cache, baseline, n, d):
        where = f"at n={n}, d={d}"
        objective = read(cache["rows"][baseline, n, d], "network_objective", f"{baseline} {where}")
        optimum = read(cache["reference"][n, d], "objective", f"reference {where}")
        self.value = (objective - optimum) / abs(optimum)

    def track_sgd_excess(self, cache, baseline, n, d):
        return self.value
