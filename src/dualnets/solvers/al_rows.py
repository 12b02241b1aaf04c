"""The augmented Lagrangian over a working set of cone rows (``al``'s ``row_set``).

The cutting planes of :mod:`.ipm_rows`, with the Newton AL of :mod:`.al` solving each
restricted program.  The cone rows are those of a working set ``R`` of samples.  The loss is
over every sample, held as its Gram matrix (:class:`.row_set.LossGram`: with
``w = z_+ - z_-``, ``1/2 ||A z - y||^2 = 1/2 w'K w - w'b + 1/2 y'y``).  A Newton step then
costs the fold's Cholesky and passes over ``|R| (G + B)`` cone rows instead of
``n (G + B)``.

1. ``R``: ``row_set.INITIAL_ROWS`` samples drawn at random (seeded), and with a warm start
   the samples where its multipliers are nonzero;
2. the restricted program by the AL's outer loop (newton; warm from the last round: ``Z``,
   the multipliers of the samples kept, and ``rho`` when the round added at most
   ``CARRY_FRACTION`` of ``|R|``, else ``rho`` starts again at its default).  Early rounds are
   inexact: each solves to ``INEXACT_RATIO`` times the violation that the last one left over
   every row (the first as if that were ``FIRST_VIOLATION``), never below the tolerances;
3. every cone row at its ``z`` (:func:`.row_set.violated_rows`).  A round solved to the
   tolerances whose point violates no row by more than ``violation_tol`` (relative to
   ``||y||_inf``) is certified over the whole program: its certificate has the whole loss,
   the multipliers of ``R`` and zero elsewhere;
4. the ``row_set.ROWS_PER_CONE`` most violated samples of every cone with a row violated by
   more than ``ROW_FLOOR`` times ``violation_tol`` join ``R``; stop when none is left to add
   (or when the budget ends: then the last certified round's point, if any), else go to 2.

Why these rules (planted, m1 = 2, P = 50, d = 10, one thread):
- Rounds solved to the tolerances took 1880 Newton steps at n = 16000 (89 s); inexact
  rounds took 673.
- ``rho`` carried into every round was slower than a fresh start, 37 s against 27 s at
  n = 16000: the first subproblems after a large addition used all 50 Newton steps at the
  last round's ``rho``, which was near 1e7. Starting again in the late rounds, which add only
  a few samples, made the AL climb back to that ``rho`` every time: 1370 steps at
  n = 64000 against 950 with ``CARRY_FRACTION``.
- A floor equal to ``violation_tol`` stopped with points infeasible by 9.3e-7, whose
  objective was 4.8e-6 below that of the floor 0.1 at n = 64000, and 1.9e-6 below the whole
  AL's at n = 16000. Both certify, but the floor of 0.1 matches the whole AL's objective to
  1.5e-7 and costs 1177 Newton steps against 950 (91 s against 60 s at n = 64000).

Squared loss, float64, and a dense Newton system (``G d <= al_newton.MAX_VARIABLES``) only.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from ..certificate import squared_primal_and_dual, violation_scale
from ..lifting import Lifting
from ..problem import Problem
from ..result import Result
from .al_newton import NewtonInner
from . import row_set
from .torch_ops import TorchLifting, Workspace
from .torch_run import Checker, RunState, to_numpy, warm_arrays


INEXACT_RATIO = 0.1     # a round solves to this fraction of the violation the last one left
FIRST_VIOLATION = 0.1   # ... the first round as if it had been this (to 1e-2)
ROW_FLOOR = 0.1         # rows violated by more than this times violation_tol join the set
CARRY_FRACTION = 0.05   # a round that added at most this fraction of |R| keeps the last rho


class GramLossLifting(TorchLifting):
    """:class:`TorchLifting` whose cone rows are those of the samples of ``lift`` and whose
    loss is that of ``gram`` (every sample)."""

    def __init__(self, lift: Lifting, y: np.ndarray, gram: row_set.LossGram, device: str):
        super().__init__(lift, y, device, "float64", "squared")
        self.gram, self.half = gram, self.G // 2
        self._loss_grad = None
        self._products = (0.0, 0.0)         # (v'v, v'y) of the residual at the last point

    def _residual(self, Z: torch.Tensor, ws: Workspace) -> None:
        """The cone values of ``R`` and the loss's pieces at ``Z``; ``r = 0`` leaves only the
        cone part in :meth:`TorchLifting.al_gradient_after_value`."""
        self.cone_values(Z, ws)
        ws.r.zero_()
        gram = self.gram
        w = gram.merged(Z)
        Kw = gram.K @ w
        self._loss_grad = (Kw - gram.b).view(self.half, self.d)
        self._products = gram.residual_products(float(w @ Kw), float(w @ gram.b))

    def al_gradient_after_value(self, ws: Workspace) -> torch.Tensor:
        grad = super().al_gradient_after_value(ws)
        grad[: self.half] += self._loss_grad
        grad[self.half:] -= self._loss_grad
        return grad

    def al_value_after_gradient(self, rho: float, ws: Workspace) -> float:
        cones = float(torch.vdot(ws.mu_i.view(-1), ws.mu_i.view(-1)))
        if self.depth == 3:
            cones += float(torch.vdot(ws.mu_o.view(-1), ws.mu_o.view(-1)))
        return 0.5 * (self._products[0] + cones / rho)

    def primal_and_dual(self, Z: torch.Tensor, ws: Workspace, beta: float,
                        worst: float) -> tuple[float, float, float]:
        """From :meth:`.row_set.LossGram.residual_products` at the last point."""
        return squared_primal_and_dual(*self._products, Z, beta, worst)


def moved_columns(values: torch.Tensor, old: np.ndarray, new: np.ndarray) -> torch.Tensor:
    """``values`` (k, |old|) on the samples ``new`` (a sorted superset of the sorted ``old``),
    zero on the samples added."""
    out = torch.zeros((values.shape[0], new.size), dtype=values.dtype, device=values.device)
    if values.shape[0]:
        out[:, torch.as_tensor(np.searchsorted(new, old), device=values.device)] = values
    return out


def solve_al_by_rows(solver, problem: Problem, warm_start: Result | None = None) -> Result:
    """The rounds of the module docstring with ``solver`` (an ``AugmentedLagrangian``, whose
    tolerances and budget apply to the whole run).  A warm start gives the first ``Z``, its
    ``rho``, and the samples where its multipliers are nonzero join ``R`` with them."""
    begin = time.perf_counter()
    lift = Lifting.from_problem(problem)
    n, y, device = problem.n, problem.y, solver.device
    y_scale = violation_scale(y)
    gram = row_set.LossGram(lift, y, device)
    R = np.sort(np.random.default_rng(0).choice(n, size=min(n, row_set.INITIAL_ROWS),
                                                replace=False))
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
    Z, lam_i, lam_o, rho = np.zeros((lift.n_groups, problem.d)), None, None, None
    if warm_start is not None:
        Z, warm_i, warm_o = warm_arrays(problem, lift, warm_start)
        rho = warm_start.info.get("rho")
        if warm_i is not None:             # its active samples join R, with their multipliers
            active = warm_i > 0 if warm_o is None else np.concatenate([warm_i, warm_o]) > 0
            R = np.union1d(R, np.flatnonzero(active.any(axis=0)))
            lam_i = as_t(warm_i[:, R])
            lam_o = as_t(warm_o[:, R]) if warm_o is not None else None
    Z = as_t(Z)
    setup = time.perf_counter() - begin
    start = time.perf_counter()
    state, trace, carry = RunState(), [], rho is not None
    violation, best = FIRST_VIOLATION, None
    while True:
        ops = GramLossLifting(lift.rows(R), y[R], gram, device)
        ws = ops.workspace()
        lam_i = ops.zeros_inner() if lam_i is None else lam_i
        lam_o = ops.zeros_outer() if lam_o is None or problem.depth == 2 else lam_o
        sub = copy.copy(solver)
        sub.max_seconds = solver.max_seconds - (time.perf_counter() - start)
        sub.max_iters = solver.max_iters - state.iterations
        # inexact early rounds: the restricted program to a fraction of the violation that
        # the last round left over every row
        sub.gap_tol = max(solver.gap_tol, INEXACT_RATIO * violation)
        sub.violation_tol = max(solver.violation_tol, INEXACT_RATIO * violation)
        exact = sub.gap_tol <= solver.gap_tol
        round_state = RunState(iterations=state.iterations)
        Z, lam_i, lam_o = sub._iterate(problem, NewtonInner(ops, gram=gram.K), ws, Z, lam_i,
                                       lam_o, round_state, Checker(ops, ws, lift, problem),
                                       rho if carry else None)
        state.iterations, state.status = round_state.iterations, round_state.status
        rho = round_state.info.get("rho")
        worst, add = row_set.violated_rows(lift, Z, ROW_FLOOR * solver.violation_tol * y_scale,
                                           row_set.ROWS_PER_CONE)
        add = np.setdiff1d(add, R)
        violation = worst / y_scale
        objective, gap = round_state.trace[-1][2:4]
        trace.append((time.perf_counter() - start, state.iterations, objective, gap, violation))
        if solver.verbose:
            print(f"al rows: round {len(trace)}, {R.size} samples, {state.status}, gap "
                  f"{gap:.2e}, violation over every row {violation:.2e}, {add.size} to add")
        if state.status == "optimal" and exact and violation <= solver.violation_tol:
            best = (Z, lam_i, lam_o, R, len(trace) - 1)      # certified over every row
            if add.size == 0:
                break
        if state.status != "optimal":                        # out of budget
            break
        if len(trace) >= row_set.MAX_ROUNDS:
            state.status = "max_iterations"
            break
        if add.size == 0 and exact:
            state.status = "inaccurate"        # violated rows left, none outside R to add
            break
        carry = add.size <= CARRY_FRACTION * R.size
        if add.size:
            grown = np.union1d(R, add)
            lam_i, lam_o = moved_columns(lam_i, R, grown), moved_columns(lam_o, R, grown)
            R = grown
        else:
            violation = 0.0                    # solved loosely: again, to the tolerances
    if best is not None:                       # the last certified round
        Z, lam_i, lam_o, R, row = best
        state.status = "optimal"
        trace[-1] = (*trace[-1][:2], *trace[row][2:])
    return Result(solver.name, state.status, Z=to_numpy(Z),
                  lam_inner=on_every_sample(lam_i, R, n),
                  lam_outer=on_every_sample(lam_o, R, n) if problem.depth == 3 else None,
                  setup_seconds=setup, solve_seconds=time.perf_counter() - start,
                  iterations=state.iterations, trace=tuple(trace),
                  info=dict(inner="newton", row_set_samples=int(R.size),
                            row_set_rounds=len(trace), rho=rho, patterns=problem.patterns,
                            device=device, dtype="float64", threads=torch.get_num_threads()))


def on_every_sample(values: torch.Tensor, R: np.ndarray, n: int) -> np.ndarray:
    """Multipliers over the samples ``R`` as an array over all ``n`` (zero elsewhere)."""
    full = np.zeros((values.shape[0], n))
    full[:, R] = to_numpy(values)
    return full
