"""The solver contract shared by convex solvers and network baselines."""

from __future__ import annotations

from typing import ClassVar

from ..problem import Problem
from ..result import Result


class Solver:
    """``__init__`` stores hyperparameters; ``solve(problem) -> Result`` does the work.

    ``supports(problem)`` says *why* a problem cannot be taken instead of failing half-way.
    ``model`` says what the result's weights mean: "relu" (the exact convex program), "gated"
    (the gated relaxation, a different model) or "network" (a trained non-convex network).
    """

    name: ClassVar[str] = "solver"
    model: ClassVar[str] = "relu"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def supports(self, problem: Problem) -> tuple[bool, str]:
        return True, ""

    def solve(self, problem: Problem, warm_start: Result | None = None) -> Result:
        """Solve; solvers that can start from a previous Result (same or more patterns, another
        beta) use ``warm_start``, the others ignore it."""
        raise NotImplementedError
