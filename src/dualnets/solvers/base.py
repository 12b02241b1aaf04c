"""The one contract of every solver and every network baseline.

A plugin is one module in ``src/dualnets/solvers/`` or ``baselines/`` (or an entry point, see
:mod:`dualnets.registry`) with a class that subclasses :class:`Solver`, sets ``name`` and is
decorated with ``@register``.  Callers (runner, dual-search, CLI, asv, tests) read only what is
declared here; none of them inspects signatures or class hierarchies.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar, Literal

from ..problem import Problem
from ..result import Result

Model = Literal["relu", "gated", "network"]


MIN_SECONDS = 0.05   # the least budget :meth:`Solver.within` gives (a solve past its deadline
#                      still returns a point, with its status)


class Solver:
    """``__init__`` stores hyperparameters; ``solve(problem, warm_start=None) -> Result``.

    Every ``__init__`` takes ``max_seconds`` (the wall-clock budget of one ``solve``, default
    no limit), and the classes that declare ``seeded`` take ``seed`` and those that declare
    ``interior_point`` take ``max_cone_rows``.

    Capabilities (class attributes):

    - ``model``: what the result's weights mean: "relu" (the exact convex program), "gated"
      (the gated relaxation, a different model) or "network" (a trained non-convex network);
    - ``losses``, ``depths``, ``devices``: what it can take (checked by :meth:`supports`);
    - ``warm_starts``: whether ``solve`` uses ``warm_start`` (all accept it);
    - ``honours_budget``: whether ``solve`` stops within about ``max_seconds`` (a backend
      without a time limit of its own, such as ECOS, says False);
    - ``seeded``: whether ``__init__`` takes ``seed`` (its randomness);
    - ``interior_point``: a conic interior-point method whose cost grows with the cone rows
      ``n (G + B)``; ``supports`` refuses problems above ``max_cone_rows``;
    - ``benchmarked``: whether the asv suite times it (a backend that duplicates another can
      opt out);
    - ``objective_kind``: "" when its objective is the exact one (the ReLU program, or NC for
      a network), else what it minimizes instead (reports label it and compare it on
      accuracy only).
    """

    name: ClassVar[str] = "solver"
    model: ClassVar[Model] = "relu"
    losses: ClassVar[tuple[str, ...]] = ("squared",)
    depths: ClassVar[tuple[int, ...]] = (2, 3)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    warm_starts: ClassVar[bool] = False
    honours_budget: ClassVar[bool] = True
    seeded: ClassVar[bool] = False
    interior_point: ClassVar[bool] = False
    benchmarked: ClassVar[bool] = True
    objective_kind: ClassVar[str] = ""

    max_seconds: float = math.inf

    def supports(self, problem: Problem) -> tuple[bool, str]:
        """``(True, "")``, or ``(False, why)`` when this solver cannot take ``problem``."""
        if problem.loss not in self.losses:
            return False, (f"{self.name} handles the {' and '.join(self.losses)} loss, got "
                           f"{problem.loss!r}")
        if problem.depth not in self.depths:
            return False, (f"{self.name} handles depth {' and '.join(map(str, self.depths))}, "
                           f"got depth {problem.depth}")
        return True, ""

    def check_supported(self, problem: Problem) -> None:
        """Raise ValueError with the reason when :meth:`supports` refuses ``problem``."""
        ok, why = self.supports(problem)
        if not ok:
            raise ValueError(f"{self.name} cannot solve this problem: {why}")

    def solve(self, problem: Problem, warm_start: Result | None = None) -> Result:
        """Solve within ``max_seconds``; solvers with ``warm_starts`` start from a previous
        Result (same or more patterns, another beta), the others ignore it."""
        raise NotImplementedError

    def within(self, seconds: float) -> Solver:
        """A copy whose ``max_seconds`` is at most ``seconds`` (floored at ``MIN_SECONDS``): the
        same solver for a solve that must end by a deadline."""
        limited = copy.copy(self)
        limited.max_seconds = max(min(self.max_seconds, float(seconds)), MIN_SECONDS)
        return limited


def check_budget(max_seconds: float) -> float:
    """``max_seconds`` as a float > 0 (``math.inf``: no limit)."""
    try:
        value = float(max_seconds)
    except (TypeError, ValueError):
        raise ValueError(f"max_seconds must be a number > 0, got {max_seconds!r}") from None
    if not value > 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds!r}")
    return value
