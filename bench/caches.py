"""The two ``setup_cache`` bases of the suite, computed once per ``asv run`` and shared.

asv keys a cache by the function that builds it, so every benchmark class that inherits from
one of these bases reads the same cache: problems are built once for the timing benchmarks,
and every method is solved (and its result evaluated) once for all the ``track_*`` benchmarks.
"""

from __future__ import annotations

from .common import BASELINES, SOLVERS, make_problems, pin_threads, reference, run
from .params import current_profile

PROFILE = current_profile()


class ProblemGrid:
    """Base of the timing benchmarks: the cache is ``{(n, d): Problem}`` of the profile."""

    def setup_cache(self):
        pin_threads()
        return make_problems(PROFILE)

    setup_cache.timeout = PROFILE.timeouts["cache"]


class SolvedGrid:
    """Base of the quality benchmarks: every method solved once on every grid point.

    The cache holds ``{"reference": {(n, d): row}, "rows": {(method, n, d): row}}`` where a
    row is ``dualnets.metrics.evaluate`` of one solve (or a skip reason or an error message).
    """

    timeout = PROFILE.timeouts["track"]
    rounds = 1

    def setup_cache(self):
        pin_threads()
        problems = make_problems(PROFILE)
        methods = SOLVERS + BASELINES
        return {
            "reference": {key: reference(p, PROFILE) for key, p in problems.items()},
            "rows": {(m, *key): run(m, p, PROFILE.solver_options.get(m, {}),
                                    PROFILE.max_nd.get(m))
                     for m in methods for key, p in problems.items()},
        }

    setup_cache.timeout = PROFILE.timeouts["cache"]
