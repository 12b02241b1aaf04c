"""The penalty schedule of the augmented Lagrangian (:mod:`.al`): how ``rho`` moves after each
subproblem.

After a subproblem and its check, :meth:`RhoSchedule.after` decides one move:

- **stiffen** (``rho * growth``, at most ``rho_max``) when the subproblem was solved, the
  point is still infeasible (the violation above its tolerance, or the gap below ``-tol``)
  and the violation fell by less than ``STIFFEN_BELOW`` (4x);
- **soften** (``rho / growth``, at least ``rho_min``) when, with an inner solver that softens,
  the subproblem used all its steps unsolved and its check did not cut the score by
  ``PROGRESS`` (an unsolved but improving subproblem only lacked steps);
- **restart** when such a subproblem is unsolved at ``rho_min`` already: the caller drops the
  multipliers (once) and the schedule starts again at its first ``rho``.

Both moves stay inside the bracket of the stiffest ``rho`` whose subproblem was solved and the
softest one that was not: a move that would leave it goes to the geometric mean of ``rho``
and the bracket's end, and once a stiffening comes within ``RETRY_RATIO`` of the failed
``rho`` that value is tried again.  The measurements behind each rule are in :mod:`.al`'s
docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

MAX_RHO_SOFTENING = 1e3     # newton: rho never drops below its start over this
RETRY_RATIO = 2.0           # a stiffening this close to the rho that failed retries it
PROGRESS = 0.5              # an unsolved subproblem whose check cut the score this much keeps rho
STIFFEN_BELOW = 0.25        # a solved, infeasible subproblem that cut the violation less stiffens

Move = Literal["stiffen", "soften", "restart", "keep"]


@dataclass
class RhoSchedule:
    """``rho`` within ``[rho_min, rho_max]`` and the bracket ``(solved_at, failed_at)``."""

    rho: float
    rho_min: float
    rho_max: float
    growth: float
    solved_at: float = 0.0          # the stiffest rho whose subproblem was solved
    failed_at: float = math.inf     # the softest rho whose subproblem went unsolved
    restarted: bool = False
    start: float = field(init=False)

    def __post_init__(self):
        self.start = self.rho

    def after(self, *, solved: bool, exhausted: bool, softens: bool, infeasible: bool,
              violation: float, last_violation: float, score: float,
              last_score: float) -> Move:
        """Update ``rho`` after one subproblem (``exhausted``: it used all its steps) and its
        check; returns the move made."""
        if solved:
            self.solved_at = max(self.solved_at, self.rho)
        if solved and infeasible and violation > STIFFEN_BELOW * last_violation and \
                self.rho < self.rho_max:
            self.rho, self.failed_at = stiffer(self.rho, min(self.rho * self.growth,
                                                             self.rho_max), self.failed_at)
            return "stiffen"
        if not (softens and exhausted and not solved) or score <= PROGRESS * last_score:
            return "keep"
        if self.rho > self.rho_min:
            self.failed_at = min(self.failed_at, self.rho)
            self.rho = softer(self.rho, max(self.rho / self.growth, self.rho_min),
                              self.solved_at)
            return "soften"
        if self.restarted:
            return "keep"
        self.rho, self.restarted, self.solved_at, self.failed_at = self.start, True, 0.0, math.inf
        return "restart"


def stiffer(rho: float, target: float, failed_at: float) -> tuple[float, float]:
    """``(rho, failed_at)`` after a stiffening: ``target``, or the geometric mean of ``rho``
    and ``failed_at`` (a rho whose subproblem went unsolved) when ``target`` would reach it.
    Once ``rho`` is within ``RETRY_RATIO`` of ``failed_at`` the bracket has closed and the
    failed rho is tried again (forgotten): the means alone approach it without end (planted
    n = 16000: 50 multiplier updates within a factor 1.5 of it, the violation stuck)."""
    if failed_at <= RETRY_RATIO * rho:
        failed_at = math.inf
    if rho < failed_at <= target:
        return math.sqrt(rho * failed_at), failed_at
    return target, failed_at


def softer(rho: float, target: float, solved_at: float) -> float:
    """``target``, or the geometric mean of ``rho`` and ``solved_at`` (a rho whose subproblem
    was solved) when ``target`` would step below it."""
    return math.sqrt(rho * solved_at) if target < solved_at < rho else target
