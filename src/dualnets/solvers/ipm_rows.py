"""The interior-point method over a working set of cone rows (``ipm``'s ``row_set``).

At large n almost every row of ``B z >= 0`` is slack at the optimum: a nonzero group's cone in
``R^d`` binds on at most ``d - 1`` samples at a generic point (planted n = 4000, d = 10: 4 to 9
per nonzero group, 654 samples in all for the inner cones), while an interior-point iteration
pays for every one of the ``n (G + B)`` rows (19 million at n = 64000: 5.6 s an iteration).
So the program is solved with the cone rows of a working set ``R`` of samples only, and the
loss over every sample, held as its Gram matrix: with ``w = z_+ - z_-`` (``A = [A_+, -A_+]``)

    1/2 ||A z - y||^2 = 1/2 w'K w - w'b + 1/2 y'y,   K = A_+'A_+,  b = A_+'y

(:class:`LossGram`, formed once, in row chunks).  An iteration then costs the fold's Cholesky
(``G d / 2`` unknowns) and ``|R| (G + B)`` cone rows.  Cutting planes:

1. ``R``: ``INITIAL_ROWS`` samples drawn at random (seeded);
2. the restricted program, by :meth:`.ipm.InteriorPoint._iterate` (cold, to the solver's
   tolerances);
3. every cone row at its ``z``, chunk by chunk (:func:`violated_rows`).  If none is violated
   by more than ``violation_tol`` (relative to ``||y||_inf``), stop: the restricted certificate
   (the whole loss, the multipliers of ``R`` and zero elsewhere) is the whole program's, the
   one :func:`dualnets.certificate.certify` recomputes from the returned arrays;
4. else add the ``ROWS_PER_CONE`` most violated samples of every violated cone to ``R``, and
   go to 2.

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
from .al_newton import NewtonInner, lifted_weights
from .ipm import InteriorPoint, NewtonSystem
from .torch_ops import TorchLifting, Workspace
from .torch_run import Check, Clock, RunState, to_numpy

INITIAL_ROWS = 2000     # samples of the first round's cone rows
ROWS_PER_CONE = 10      # samples added per violated cone and round, the most violated first
CHUNK_ROWS = 16384      # samples per chunk of the passes over every sample
MAX_ROUNDS = 30


class LossGram:
    """``K = A_+'A_+``, ``b = A_+'y`` and ``y'y`` of every sample, in chunks of
    ``CHUNK_ROWS`` samples (``A_+``: the columns of the first sign copy of every group)."""

    def __init__(self, lift: Lifting, y: np.ndarray, device: str):
        half = lift.n_groups // 2
        size = half * lift.X.shape[1]
        f64 = torch.float64
        self.K = torch.zeros((size, size), dtype=f64, device=device)
        self.b = torch.zeros(size, dtype=f64, device=device)
        for rows in chunks(lift.X.shape[0]):
            ops = TorchLifting(lift.rows(rows), y[rows], device, "float64")
            weight = lifted_weights(ops)[:half]
            self.K += NewtonInner.half_gram(ops.X, weight)
            self.b += ((weight * ops.y) @ ops.X).flatten()
        self.yy = float(np.dot(y, y))


def chunks(n: int):
    """Slices of at most ``CHUNK_ROWS`` samples covering ``range(n)``."""
    return [slice(start, min(n, start + CHUNK_ROWS)) for start in range(0, n, CHUNK_ROWS)]


class RowNewtonSystem(NewtonSystem):
    """:class:`~.ipm.NewtonSystem` of the program whose cone rows are those of the samples of
    ``ops`` and whose loss is that of :class:`LossGram` (always folded)."""

    def __init__(self, ops: TorchLifting, gram: LossGram):
        super().__init__(ops, route="fold")
        self._K, self.gram = gram.K, gram

    def gradient(self, Z: torch.Tensor, lam_i: torch.Tensor, lam_o: torch.Tensor,
                 ws: Workspace) -> torch.Tensor:
        """``A'(A z - y) - B_R'lam`` with ``A'(A z - y) = (K w - b, b - K w)``, into
        ``ws.grad``, leaving the cone values ``U``, ``H`` over ``R`` in ``ws``."""
        ops, half = self.ops, self.G // 2
        ops.cone_values(Z, ws)
        loss = (self.K @ self.merged(Z) - self.gram.b).view(half, self.d)
        return torch.sub(torch.cat([loss, -loss]), self.cone_adjoint(
            lam_i, lam_o if ops.depth == 3 else None), out=ws.grad)

    def merged(self, Z: torch.Tensor) -> torch.Tensor:
        """``w = z_+ - z_-``, flattened: the weights of ``A_+`` that give ``A z``."""
        half = self.G // 2
        return (Z[:half] - Z[half:]).flatten()

    def check(self, Z: torch.Tensor, ws: Workspace, beta: float, y_scale: float) -> Check:
        """The certificate from ``v'v = w'K w - 2 w'b + y'y`` and ``v'y = w'b - y'y``, with
        the multipliers and the violation of the rows of ``R`` left in ``ws`` by
        :meth:`gradient` at ``Z``."""
        w = self.merged(Z)
        wb, yy = float(w @ self.gram.b), self.gram.yy
        worst = float(torch.linalg.vector_norm(ws.grad, dim=1).max())
        primal, dual, _ = squared_primal_and_dual(float(w @ (self.K @ w)) - 2 * wb + yy,
                                                  wb - yy, Z, beta, worst)
        return Check(primal, relative_gap(primal, dual), self.ops.violation(ws) / y_scale)


def violated_rows(lift: Lifting, Z: torch.Tensor, floor: float,
                  per_cone: int) -> tuple[float, np.ndarray]:
    """``(worst, rows)``: the largest violation ``max (-(B z))_+`` over every cone row, and the
    samples of the ``per_cone`` most violated rows of every cone (inner and outer), among those
    violated by more than ``floor``; one pass over the samples, chunk by chunk."""
    Zn = to_numpy(Z)
    best = None                       # per cone: the lowest values so far and their samples
    for rows in chunks(lift.X.shape[0]):
        part = lift.rows(rows)
        U = part.activations(Zn)
        values = [part.inner_values(U)]
        if lift.depth == 3:
            values.append(part.outer_values(part.block_outputs(U)))
        V = np.concatenate(values)
        samples = np.broadcast_to(np.arange(rows.start, rows.stop), V.shape)
        if best is not None:
            V, samples = np.concatenate([best[0], V], 1), np.concatenate([best[1], samples], 1)
        k = min(per_cone, V.shape[1])
        keep = np.argpartition(V, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(V, keep, 1), np.take_along_axis(samples, keep, 1)
    values, samples = best
    worst = -min(0.0, float(values.min()))
    return worst, np.unique(samples[values < -floor])


def solve_by_rows(interior: InteriorPoint, problem: Problem) -> Result:
    """The cutting-plane rounds of the module docstring, under ``interior``'s tolerances and
    budget (its iteration cap applies to each round)."""
    start = time.perf_counter()
    lift = Lifting.from_problem(problem)
    n, y = problem.n, problem.y
    y_scale = violation_scale(y)
    gram = LossGram(lift, y, interior.device)
    rng = np.random.default_rng(0)
    R = np.sort(rng.choice(n, size=min(n, INITIAL_ROWS), replace=False))
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
        worst, add = violated_rows(lift, Z, interior.violation_tol * y_scale, ROWS_PER_CONE)
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
        if len(state.info["row_rounds"]) >= MAX_ROUNDS:
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
