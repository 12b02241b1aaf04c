"""FISTA on the gated relaxation (registered as "gated-fista"; ``Result.model = "gated"``).

Solves ``min 1/2||A z - y||^2 + beta sum_g ||z_g||`` with the ReLU program's masks as fixed
features and no cone constraints (:mod:`dualnets.gated`).  This is a different model from the
ReLU program: its objective and its group-lasso gap are its own and are labelled "gated".
Step ``1/L`` with ``L = 1.05 lmax(A'A)`` (power iteration), gradient restarts; every
``check_every`` iterations the group-lasso gap is computed on the device at the current iterate.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..certificate import primal_and_dual, relative_gap
from ..lifting import Lifting
from ..problem import Problem
from ..registry import register
from ..result import Result
from .al_inner import LIPSCHITZ_SAFETY
from .base import check_budget
from .torch_ops import Fista, TorchLifting, TorchSolver, Workspace
from .torch_run import DEFAULT_TOL, Clock, RunState, to_numpy, warm_arrays


def gated_gap(ops: TorchLifting, ws: Workspace, Z: torch.Tensor, beta: float):
    """(objective, relative gap) of the gated relaxation at Z, right after its gradient."""
    worst = float(torch.linalg.vector_norm(ws.grad, dim=1).max())
    primal, dual, _ = primal_and_dual(ws.yhat, ws.r, ops.y, Z, beta, worst, ops.loss)
    return primal, relative_gap(primal, dual)


@register
class GatedFista(TorchSolver):
    """FISTA with restarts on the gated relaxation, on CPU or CUDA.

    Parameters
    ----------
    gap_tol : float or None
        Relative group-lasso gap to stop at (None: 1e-6 in float64, 1e-4 in float32).
    max_iters, max_seconds : limits
    device : "cpu" or "cuda"
    dtype : "float64" or "float32"
    check_every : int
        Iterations between gap checks (each costs one extra gradient).
    threads : int or None
        ``torch.set_num_threads`` during the solve (None: torch's setting; default 1, see
        :class:`dualnets.solvers.al.AugmentedLagrangian`).
    """

    name = "gated-fista"
    model = "gated"
    objective_kind = "gated relaxation (masks as fixed features), not the ReLU program"

    def __init__(self, gap_tol: float | None = None, max_iters: int = 50_000,
                 max_seconds: float = math.inf, device: str = "cpu", dtype: str = "float64",
                 check_every: int = 10, threads: int | None = 1):
        self._set_device(device, dtype)
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.gap_tol = DEFAULT_TOL[dtype] if gap_tol is None else float(gap_tol)
        self.max_iters, self.max_seconds = int(max_iters), check_budget(max_seconds)
        self.check_every, self.threads = check_every, threads

    def _solve(self, problem: Problem, warm_start: Result | None) -> Result:
        start = time.perf_counter()
        lift = Lifting.from_problem(problem)
        ops = TorchLifting(lift, problem.y, self.device, self.dtype)
        ws = ops.workspace()
        Z0 = np.zeros((lift.n_groups, problem.d)) if warm_start is None else warm_arrays(
            problem, lift, warm_start)[0]
        Z = torch.as_tensor(Z0, dtype=ops.dtype, device=ops.device)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        ops.loss_gradient(Z, ws)
        Clock(ops.device).sync()
        warmup = time.perf_counter() - start
        state = RunState()
        Z = self._iterate(problem, ops, ws, Z, state)
        state.info.update(patterns=problem.patterns, device=self.device, dtype=self.dtype,
                          threads=torch.get_num_threads())
        return Result(self.name, state.status, Z=to_numpy(Z), setup_seconds=setup,
                      solve_seconds=state.info.pop("seconds"), warmup_seconds=warmup,
                      iterations=state.iterations, trace=tuple(state.trace), info=state.info,
                      model=self.model)

    def _iterate(self, problem: Problem, ops: TorchLifting, ws: Workspace, Z: torch.Tensor,
                 state: RunState) -> torch.Tensor:
        beta, clock = problem.beta, Clock(ops.device)
        L = LIPSCHITZ_SAFETY * ops.lipschitz(0.0, ws)
        fista = Fista(Z)
        state.info["lipschitz"] = L
        while True:
            ops.loss_gradient(fista.x, ws)
            objective, gap = gated_gap(ops, ws, fista.x, beta)
            clock.sync()
            state.trace.append((clock.now(), state.iterations, objective, gap, 0.0))
            if gap <= self.gap_tol:
                state.status = "optimal"
            elif state.iterations >= self.max_iters:
                state.status = "max_iterations"
            elif clock.now() >= self.max_seconds:
                state.status = "time_limit"
            else:
                for _ in range(self.check_every):
                    fista.step(ops.loss_gradient(fista.y, ws), L, beta)
                state.iterations += self.check_every
                continue
            state.info["seconds"] = clock.now()
            return fista.x
