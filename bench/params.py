"""The benchmark grids, one per profile: grids are data, and nothing else lives here.

``DUALNETS_ASV_PROFILE`` picks the profile when asv imports the suite:

- ``fast`` (the default): the CI smoke profile, seconds per benchmark, a few minutes in all;
- ``full``: real measurement, n up to 16000 and d up to 200 (hours on 2 cores).

The methods are the registry's (``bench.common.SOLVERS`` and ``BASELINES``: every registered
class with ``benchmarked`` set), so a new plugin file is benchmarked with no edit here; its
hyperparameters may be given in ``solver_options``.  Every problem is the planted classification data of ``dualnets.datasets.planted`` (labels +1/-1,
so accuracy is defined) with ``beta = beta_per_sample * n`` (a fixed per-sample regularization
as n grows), first-layer width ``m1_solve`` and ``n_patterns`` sampled patterns.  Changing what
an existing grid point measures invalidates its history: add points, do not edit them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROFILE_VARIABLE = "DUALNETS_ASV_PROFILE"
DEFAULT_PROFILE = "fast"

# BLAS/OpenMP/torch threads inside every benchmark (dualnets' CPUs are shared; see README).
THREADS = 1


@dataclass(frozen=True)
class Profile:
    """One benchmark grid.

    Parameters
    ----------
    n, d : grid of training rows and columns (d counts the ones column).
    m1 : first-layer widths of the pattern-sampling benchmark.
    m1_solve : first-layer width of every solved problem.
    n_patterns : sampled activation patterns per problem.
    beta_per_sample : beta = beta_per_sample * n.
    solver_options : hyperparameters per registry name (the benchmarked settings).
    references : :class:`Reference` entries tried in order for the high-accuracy reference
        optimum; the first one registered and within its size limits is used.
    reference_gap : the reference must certify this relative gap, or excess benchmarks fail.
    max_nd : per registry name, the largest n * d benchmarked (larger points are skipped).
    sgd_epoch_options : baseline options of ``time_sgd_epoch`` (one epoch).
    timeouts : seconds, per benchmark kind ("solve", "cache", "track", "sampling").
    repeat, rounds : asv's sampling of ``time_solve`` (``--quick`` runs everything once).
    """

    name: str
    n: tuple[int, ...]
    d: tuple[int, ...]
    m1: tuple[int, ...]
    m1_solve: int
    n_patterns: int
    beta_per_sample: float
    solver_options: dict
    references: tuple[Reference, ...]
    reference_gap: float
    max_nd: dict
    sgd_epoch_options: dict
    timeouts: dict
    repeat: tuple[int, int, float]
    rounds: int
    seed: int = 0  # seeds the data and the sampled patterns


@dataclass(frozen=True)
class Reference:
    """A solver of the high-accuracy reference optimum, used up to ``n * d <= max_nd`` and
    ``d <= max_d`` (None: no limit): the sizes where it certifies ``reference_gap``."""

    name: str
    options: dict
    max_nd: int | None = None
    max_d: int | None = None


# Clarabel: ~85 s and 1.3 GB at n = 1600, d = 10, P = 50 here; n = 3200 does not finish in 200 s.
CLARABEL_MAX_ND = 16_000
# The reference optimum: Clarabel at 1e-10 up to its limit, else (full profile) the AL solver
# at 1e-8; either must certify REFERENCE_GAP in dualnets' own certificate.  Where no reference
# runs, the excess benchmarks are skipped.  Here AL certified 1e-8 at d = 10 in 10 s (n = 4000)
# and 53 s (n = 16000), and at d = 50 only for n = 400 (20 s; n = 1600: gap 1e-3 after 60 s), so
# the AL reference stops at d = 10, with a 600 s budget.  Wide problems are hard for every
# solver: at bench/run_first_order.py's n = 1600, d = 50 (beta = 1) 170 of the 200 groups are
# nonzero, and Clarabel stopped "inaccurate" at gap 8e-6 after 336 s.
CLARABEL_REFERENCE = Reference("clarabel", {"tol": 1e-10}, max_nd=CLARABEL_MAX_ND)
AL_REFERENCE = Reference("al", {"gap_tol": 1e-8, "violation_tol": 1e-8, "max_seconds": 600},
                         max_d=10)
REFERENCE_GAP = 1e-7
# Every solve of the full profile has this budget (seconds): where a solver stops on it,
# time_solve reads the budget and track_relative_gap how far it got.  The profile's uncertified
# points (d = 50 and 200, n >= 1600) would otherwise run for hours each.
FULL_BUDGET = 20.0

PROFILES: dict[str, Profile] = {
    "fast": Profile(
        name="fast",
        # d = 64 makes the GEMMs a large part of a first-order iteration, so that a slower
        # iteration shows in time_solve (asv continuous); Clarabel skips it.
        n=(100, 200, 400),
        d=(4, 64),
        m1=(1, 2),
        m1_solve=2,
        n_patterns=20,
        beta_per_sample=0.01,
        solver_options={
            "clarabel": {"tol": 1e-8},
            # an iteration cap (not a wall-clock one) keeps the smoke short while time_solve
            # still scales with the cost of an iteration
            "al": {"max_iters": 2000},
            "gated-fista": {"max_iters": 2000},
            "sgd": {"K": 20, "lrs": (1e-2, 1e-3), "epochs": 200, "seeds": 1},
            "adam": {"K": 20, "lrs": (1e-1, 1e-2), "epochs": 200, "seeds": 1},
        },
        references=(Reference("clarabel", {"tol": 1e-10}, max_nd=1600),),
        reference_gap=REFERENCE_GAP,
        max_nd={"clarabel": 1600},  # Clarabel takes 10-20 s at d = 64 here; skipping is smoked
        sgd_epoch_options={"K": 20, "lrs": (1e-2,), "epochs": 1, "seeds": 1, "batch_size": 64},
        timeouts={"solve": 120, "cache": 600, "track": 60, "sampling": 60},
        repeat=(3, 10, 20.0),
        rounds=2,
    ),
    "full": Profile(
        name="full",
        n=(400, 1600, 4000, 16000),
        d=(10, 50, 200),
        m1=(1, 2, 4),
        m1_solve=2,
        n_patterns=50,
        beta_per_sample=0.01,
        solver_options={
            "clarabel": {"tol": 1e-8},
            "al": {"max_seconds": FULL_BUDGET},
            "ipm": {"max_seconds": FULL_BUDGET},
            "gated-fista": {"max_seconds": FULL_BUDGET},
            "sgd": {"K": 50, "lrs": (1e-2, 1e-3, 1e-4), "epochs": 500, "seeds": 1},
            "adam": {"K": 50, "lrs": (1e-1, 1e-2, 1e-3), "epochs": 500, "seeds": 1},
        },
        references=(CLARABEL_REFERENCE, AL_REFERENCE),
        reference_gap=REFERENCE_GAP,
        max_nd={"clarabel": CLARABEL_MAX_ND},
        sgd_epoch_options={"K": 50, "lrs": (1e-2,), "epochs": 1, "seeds": 1, "batch_size": 256},
        timeouts={"solve": 1800, "cache": 6 * 3600, "track": 60, "sampling": 300},
        repeat=(1, 3, 600.0),
        rounds=1,
    ),
}


def current_profile() -> Profile:
    """The profile named by ``DUALNETS_ASV_PROFILE`` (default "fast")."""
    name = os.environ.get(PROFILE_VARIABLE, DEFAULT_PROFILE)
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"{PROFILE_VARIABLE} must be one of {sorted(PROFILES)}, got {name!r}") \
            from None
