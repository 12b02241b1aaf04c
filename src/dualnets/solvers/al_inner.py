"""The inner-solver interface of the augmented Lagrangian (:mod:`.al`), and its FISTA solver.

The outer loop of ``al`` hands an :class:`InnerSolver` one subproblem at a time::

    min_z  f(z) + beta sum_g ||z_g||,   f(z) = 1/2||Az - y||^2 + 1/(2 rho)||(lam - rho B z)_+||^2

and gets back the point, whether the subproblem was solved to ``eta`` (``max_g ||gradient
mapping_g|| / beta <= eta``) and how many steps it took.  The inner solver never decides a
stop: it steps until it is solved, its own step cap, or ``stop()``; the outer loop owns the
budget, the checks, the multipliers and ``rho``.  Implementations: :class:`FistaInner` here and
:class:`.al_newton.NewtonInner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from .torch_ops import Fista, TorchLifting, Workspace

LIPSCHITZ_SAFETY = 1.05
LINE_SEARCH_SHRINK = 0.9    # each step first tries 0.9 L, then doubles L until it fits
MIN_STEP_FRACTION = 1e-4    # L never below this fraction of the global bound


@dataclass
class Subproblem:
    """One AL subproblem: multipliers ``lam`` (inner (G, n), outer (B, n)), ``rho``, ``beta``,
    the tolerance ``eta`` and the workspace its evaluations use."""

    lam_i: torch.Tensor
    lam_o: torch.Tensor
    rho: float
    beta: float
    eta: float
    ws: Workspace


class InnerSolver:
    """What the AL outer loop needs of an inner solver.

    Attributes
    ----------
    name : the ``Result.info["inner"]`` label
    rho_defaults : ``(rho_scale, rho_growth)`` when the user gives none
    max_rho_growth : ``rho`` never grows beyond this factor of its start
    polishes : whether the outer loop tries :mod:`.al_polish` on its iterates
    keeps_best : whether a budget stop returns the best checked point (by
        :meth:`Check.score`) instead of the last one
    softens : whether the outer loop lowers ``rho`` when a subproblem used all of its
        ``step_cap`` steps unsolved
    lmax_loss, lmax_cones : bounds of ``lmax(A'A)`` and ``lmax(B'B)``; ``rho`` starts at
        ``rho_scale * lmax_loss / lmax_cones``
    """

    name: ClassVar[str]
    rho_defaults: tuple[float, float]
    max_rho_growth: ClassVar[float]
    polishes: ClassVar[bool] = False
    keeps_best: ClassVar[bool] = True
    softens: ClassVar[bool] = False
    step_cap: int = 0
    lmax_loss: float
    lmax_cones: float

    def set_rho(self, rho: float) -> None:
        """``rho`` changed (at the start and when the outer loop stiffens the penalty)."""

    def forget(self) -> None:
        """The workspace or the multipliers changed since the last step."""

    def solve(self, Z: torch.Tensor, sub: Subproblem, stop: Callable[[], bool],
              on_step: Callable[[torch.Tensor], None]) -> tuple[torch.Tensor, bool, int]:
        """``(Z, solved, steps)`` from ``Z``; ``on_step`` is called after every step with the
        new point, and ``stop()`` before every step."""
        raise NotImplementedError

    def info(self) -> dict:
        """What the Result's ``info`` reports about this inner solver."""
        return {}


class FistaInner(InnerSolver):
    """FISTA with restarts (prox = group shrinkage): two GEMMs a step, no size limit.

    Steps ``1/L`` with the global bound ``L = 1.05 lmax(A'A + rho B'B)`` (power iteration),
    or, with ``line_search``, backtracking under that bound from ``0.9`` times the last
    step's ``L``; at most ``inner_iters`` steps per subproblem.
    """

    name = "fista"
    max_rho_growth = 1e3
    polishes = True
    # its last iterate is its most feasible one: on a float32 test problem stopped at
    # max_iters the best-scored check had 35x the violation of the last (8e-4 against 2e-5)
    keeps_best = False

    def __init__(self, ops: TorchLifting, ws: Workspace, inner_iters: int, line_search: bool):
        self.ops, self.inner_iters, self.line_search = ops, inner_iters, line_search
        self.rho_defaults = (10.0, 5.0)
        self.lmax_loss = ops.lipschitz(0.0, ws)
        xtx = float(torch.linalg.eigvalsh(ops.Xt @ ops.X)[-1])
        self.lmax_cones = xtx * (1 + ops.m1 if ops.depth == 3 else 1)   # >= lmax(B'B)
        self._ws = ws
        self.rho = self.L = self.L_cap = self.L_min = None
        self.fista: Fista | None = None

    def set_rho(self, rho: float) -> None:
        self.L_cap = LIPSCHITZ_SAFETY * self.ops.lipschitz(rho, self._ws)
        if self.L is None:
            self.L, self.L_min = self.L_cap, self.L_cap * MIN_STEP_FRACTION
        else:
            self.L = min(self.L * rho / self.rho, self.L_cap)
        self.rho = rho

    def solve(self, Z, sub, stop, on_step):
        if self.fista is None or Z is not self.fista.x:
            self.fista = Fista(Z)
        else:
            self.fista.reset()      # the multipliers changed: drop the momentum
        fista, ops, steps = self.fista, self.ops, 0
        while steps < self.inner_iters and not stop():
            grad = ops.al_gradient(fista.y, sub.lam_i, sub.lam_o, sub.rho, sub.ws)
            if self.line_search:
                kkt, self.L = fista.step_backtracking(
                    grad, ops.al_value_after_gradient(sub.rho, sub.ws),
                    max(LINE_SEARCH_SHRINK * self.L, self.L_min), self.L_cap, sub.beta,
                    lambda W: ops.al_value(W, sub.lam_i, sub.lam_o, sub.rho, sub.ws))
            else:
                kkt = fista.step(grad, self.L_cap, sub.beta)
            steps += 1
            on_step(fista.x)
            if kkt <= sub.eta:
                return fista.x, True, steps
        return fista.x, False, steps

    def info(self) -> dict:
        return {"lipschitz": self.L}
