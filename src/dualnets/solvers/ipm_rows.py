"""The interior-point method over a working set of cone rows (``ipm``'s ``row_set``).

At large n almost every row of ``B z >= 0`` is slack at the optimum: a nonzero group's cone in
``R^d`` binds on at most ``d - 1`` samples at a generic point (planted n = 4000, d = 10: 4 to 9
per nonzero group, 654 samples in all for the inner cones), while an interior-point iteration
pays for every one of the ``n (G + B)`` rows (19 million at n = 64000: 5.6 s an iteration).
So the program is solved with the cone rows of a working set ``R`` of samples only, and the
loss over every sample, held as its Gram matrix: with ``w = z_+ - z_-`` (``A = [A_+, -A_+]``)

    1/2 ||A z - y||^2 = 1/2 w'K w - w'b + 1/2 y'y,   K = A_+'A_+,  b = A_+'y

(:class:`.row_set.LossGram`, formed once, in row chunks).  An iteration then costs the
fold's Cholesky (``G d / 2`` unknowns) and ``|R| (G + B)`` cone rows.  Cutting planes:

1. ``R``: ``row_set.INITIAL_ROWS`` samples drawn at random (seeded);
2. the restricted program, by :meth:`.ipm.InteriorPoint._iterate` (cold, to the solver's
   tolerances);
3. every cone row at its ``z``, chunk by chunk (:func:`.row_set.violated_rows`).  If none is
   violated by more than ``violation_tol`` (relative to ``||y||_inf``), stop: the restricted
   certificate (the whole loss, the multipliers of ``R`` and zero elsewhere) is the whole
   program's, the one :func:`dualnets.certificate.certify` recomputes from the returned arrays;
4. else add the ``row_set.ROWS_PER_CONE`` most violated samples of every violated cone to
   ``R``, and go to 2.

A restricted program has fewer constraints, so its optimum lower-bounds the whole one, and a
round only ends in a certificate once its point is feasible everywhere.  A round that ends
uncertified (a singular Newton system, late) still names the rows its point violates, and the
next round takes them.  The trace has one row per round: the restricted certificate's gap and
the violation over every row.  Forming ``K`` (``n (G d / 2)^2`` multiply-adds) is setup, and
not under the budget.

Measured (planted, m1 = 2, P = 50, d = 10, one thread; ``InteriorPoint(row_set=True)``): it
certifies what Clarabel does on small problems (tests), but at large n it does not yet beat the
AL.  n = 16000: 7 rounds, 2000 to 5038 samples, feasible (9.7e-7) at gap 1.4e-6 after 80 s,
the odd rounds from the third ending on a singular Newton system near 1e-6.  n = 64000: 8
rounds, feasible (9.5e-7) after 162 s, but from the third round on the restricted programs
ended singular at gaps 3e-5 to 8e-4 (final 1.3e-4; peak RSS 1.3 GB).  Each round takes 62 to
184 interior-point iterations from its cold start, with steps of 0.2 to 0.6 blocked by the
orthant rows.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..certificate import relative_gap, squared_primal_and_dual, violation_scale
from ..lifting import Lifting
from ..problem import Problem
from ..result import Result
from . import row_set
from .ipm import InteriorPoint, NewtonSystem
from .torch_ops import TorchLifting, Workspace
from .torch_run import Check, Clock, RunState, to_numpy

class RowNewtonSystem(NewtonSystem):
    """:class:`~.ipm.NewtonSystem` of the program whose cone rows are those of the samples of
    ``ops`` and whose loss is that of :class:`LossGram` (always folded)."""

    def __init__(self, ops: TorchLifting, gram: row_set.LossGram):
        super().__init__(ops, route="fold")
        self._K, self.gram = gram.K, gram

    def gradient(self, Z: torch.Tensor, lam_i: torch.Tensor, lam_o: torch.Tensor,
                 ws: Workspace) -> torch.Tensor:
        """``A'(A z - y) - B_R'lam`` with ``A'(A z - y) = (K w - b, b - K w)``, into
        ``ws.grad``, leaving the cone values ``U``, ``H`` over ``R`` in ``ws``."""
        ops, half = self.ops, self.G // 2
        ops.cone_values(Z, ws)
        loss = (self.K @ self.gram.merged(Z) - self.gram.b).view(half, self.d)
        return torch.sub(torch.cat([loss, -loss]), self.cone_adjoint(
            lam_i, lam_o if ops.depth == 3 else None), out=ws.grad)

    def check(self, Z: torch.Tensor, ws: Workspace, beta: float, y_scale: float) -> Check:
        """The certificate from :meth:`.row_set.LossGram.residual_products`, with the
        multipliers and the violation of the rows of ``R`` left in ``ws`` by
        :meth:`gradient` at ``Z``."""
        w = self.gram.merged(Z)
        products = self.gram.residual_products(float(w @ (self.K @ w)), float(w @ self.gram.b))
        worst = float(torch.linalg.vector_norm(ws.grad, dim=1).max())
        primal, dual, _ = squared_primal_and_dual(*products, Z, beta, worst)
        return Check(primal, relative_gap(primal, dual), self.ops.violation(ws) / y_scale)


def solve_by_rows(interior: InteriorPoint, problem: Problem) -> Result:
    """The cutting-plane rounds of the module docstring, under ``interior``'s tolerances and
    budget (its iteration cap applies to each round)."""
    start = time.perf_counter()
    lift = Lifting.from_problem(problem)
    n, y = problem.n, problem.y
    y_scale = violation_scale(y)
    gram = row_set.LossGram(lift, y, interior.device)
    rng = np.random.default_rng(0)
    R = np.sort(rng.choice(n, size=min(n, row_set.INITIAL_ROWS), replace=False))
    setup = time.perf_counter() - start
    clock = Clock(torch.device(interior.device))
    state = RunState()
    state.info["row_rounds"] = []
    while True:
        ops = TorchLifting(lift.rows(R), y[R], interior.device, "float64")
        system = RowNewtonSystem(ops, gram)
        budget = interior.max_seconds - setup - clock.now()
        sub = RunState()
        Z, lam_i, lam_o = interior._iterate(problem, ops, system, sub, budget)
        state.iterations += sub.iterations
        _, _, objective, gap, _ = sub.trace[-1]
        worst, add = row_set.violated_rows(lift, Z, interior.violation_tol * y_scale,
                                           row_set.ROWS_PER_CONE)
        add = np.setdiff1d(add, R)
        state.trace.append((clock.now(), state.iterations, objective, gap, worst / y_scale))
        state.info["row_rounds"].append(dict(rows=int(R.size), iterations=sub.iterations,
                                             status=sub.status, added=int(add.size)))
        if interior.verbose:
            print(f"ipm rows {R.size}: {sub.status} in {sub.iterations} iterations, gap "
                  f"{gap:.2e}, violation {worst / y_scale:.2e}, {add.size} rows to add")
        feasible = worst <= interior.violation_tol * y_scale
        state.status, state.info["message"] = sub.status, sub.info.get("message", "")
        out_of_budget = sub.status in ("time_limit", "max_iterations")   # _iterate's stops
        # a round that ended inaccurate (a singular Newton system, late) still names the
        # rows its point violates: the next round takes them
        if feasible or add.size == 0 or out_of_budget:
            if not feasible:
                state.status = sub.status if out_of_budget else "inaccurate"
                state.info["message"] = "violated rows outside the working set" + (
                    "" if out_of_budget else ", none to add")
            break
        if len(state.info["row_rounds"]) >= row_set.MAX_ROUNDS:
            state.status, state.info["message"] = "max_iterations", "MAX_ROUNDS row rounds"
            break
        R = np.union1d(R, add)
    G, B = lift.n_groups, lift.n_blocks
    full_inner = np.zeros((G, n))
    full_inner[:, R] = to_numpy(lam_i)
    full_outer = None
    if problem.depth == 3:
        full_outer = np.zeros((B, n))
        full_outer[:, R] = to_numpy(lam_o)
    state.info.update(rows=int(R.size), row_set=True)
    return Result(interior.name, state.status, Z=to_numpy(Z), lam_inner=full_inner,
                  lam_outer=full_outer, setup_seconds=setup, solve_seconds=clock.now(),
                  iterations=state.iterations, trace=tuple(state.trace), info=state.info,
                  message=state.info.get("message", ""))
