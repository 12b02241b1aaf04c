"""The training loop shared by the non-convex baselines: grid of learning rates and seeds.

Every run trains a :class:`~dualnets.network.ParallelReLUNet` of K sub-networks of width m1 on
the problem's X, y, beta (stored patterns are ignored) by minimizing the baseline's training
objective, full batch or in minibatches, for a number of epochs or a time budget::

    NC(theta) = L(sum_k f_k(X)) + beta/2 sum_k (||w2_k||^2 + w3_k^2),  ||W1_k||_F <= 1

with the problem's loss ``L`` (docs/design.md sections 1 and 9: ``1/2 ||f - y||^2`` or
``sum_i log(1 + exp(-y_i f_i))``; a minibatch B uses the unbiased ``n/|B| L_B(f_B)`` for the
loss).  Only the optimizer steps are timed: trace evaluation is outside the clock.  Diverged runs
(a non-finite loss or weight) are kept with status "diverged".  The best run (lowest training
objective) gives the returned network; ``Result.info["runs"]`` holds one record per (seed, lr).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch

from ..losses import ConvexLoss, get_loss
from ..network import ParallelNet, ParallelReLUNet, nc_objective, norm_violation
from ..problem import Problem
from ..result import Result
from ..solvers.base import Solver, check_budget

DEFAULT_LRS: tuple[float, ...] = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)
DIVERGENCE_FACTOR = 10.0


@dataclass(frozen=True)
class Run:
    """One (seed, lr) training run; ``objective`` is the training objective of the method.

    ``status`` is "max_iterations" (all epochs done), "time_limit" (its share of
    ``max_seconds`` spent) or "diverged" (then the objectives are NaN): a loss or weight that
    is not finite, or a final objective above ``DIVERGENCE_FACTOR`` times the larger of the
    zero network's and the starting network's (a run that made its objective grow so far has
    diverged even if it stayed finite: SGD at n = 16000 ended at 1.7e28).
    """

    seed: int
    lr: float
    status: str
    objective: float
    nc_objective: float
    norm_violation: float
    seconds: float
    epochs: int
    steps: int

    def as_dict(self) -> dict:
        return asdict(self)


def _check_positive(name: str, value, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) if integer else \
        isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be {kind} > 0, got {value!r}")


class NetworkBaseline(Solver):
    """Gradient training of the non-convex network over a grid of learning rates and seeds.

    Parameters
    ----------
    K : int
        Number of sub-networks (each of width ``problem.m1``).
    lrs : sequence of float > 0
        Learning-rate grid; every lr is run with every seed.
    seeds : int
        Number of seeds per learning rate: ``seed, seed + 1, ..., seed + seeds - 1``.
    epochs : int or None
        Passes over the data (one step per epoch at full batch).
    max_seconds : float
        Seconds of training for the whole grid, shared equally by its ``len(lrs) * seeds``
        runs (default: no limit); at least one of ``epochs`` and ``max_seconds`` must be
        finite.
    batch_size : int or None
        None means full batch.
    init_scale : float
        Standard deviation of the initial w2 and w3 (W1_k starts on the unit sphere).
    trace_every : int
        Epochs between trace rows (evaluated off the clock).
    """

    model: ClassVar[str] = "network"
    losses: ClassVar[tuple[str, ...]] = ("squared", "logistic")
    depths: ClassVar[tuple[int, ...]] = (3,)
    seeded: ClassVar[bool] = True
    project: ClassVar[bool] = True

    def __init__(self, K: int = 50, lrs=DEFAULT_LRS, seeds: int = 1, epochs: int | None = 500,
                 max_seconds: float = math.inf, batch_size: int | None = None,
                 init_scale: float = 0.5, trace_every: int = 10, seed: int = 0):
        _check_positive("K", K, integer=True)
        _check_positive("seeds", seeds, integer=True)
        _check_positive("epochs", epochs, integer=True, allow_none=True)
        _check_positive("batch_size", batch_size, integer=True, allow_none=True)
        _check_positive("init_scale", init_scale)
        _check_positive("trace_every", trace_every, integer=True)
        max_seconds = check_budget(max_seconds)
        if epochs is None and math.isinf(max_seconds):
            raise ValueError("give epochs or a finite max_seconds (or both), got neither")
        lrs = tuple(lrs)
        if not lrs:
            raise ValueError("lrs must hold at least one learning rate, got an empty grid")
        for lr in lrs:
            _check_positive("learning rate", lr)
        self.K, self.lrs, self.seeds = int(K), tuple(map(float, lrs)), int(seeds)
        self.epochs, self.max_seconds, self.batch_size = epochs, max_seconds, batch_size
        self.init_scale = float(init_scale)
        self.trace_every, self.seed = int(trace_every), int(seed)

    # what a baseline defines ------------------------------------------------------------------
    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        raise NotImplementedError

    def penalty(self, net: ParallelReLUNet) -> torch.Tensor:
        """The weight-decay term without beta (NC's: w2 and w3 only)."""
        return net.penalty()

    def finalize(self, net: ParallelNet) -> ParallelNet:
        """The network returned for a run (the trained one, already feasible for NC)."""
        return net

    # the loop -----------------------------------------------------------------------------------
    @property
    def run_seconds(self) -> float:
        """The time budget of one (lr, seed) run."""
        return self.max_seconds / (len(self.lrs) * self.seeds)

    def solve(self, problem: Problem, warm_start: Result | None = None) -> Result:
        """Train the grid from random starts (``warm_start`` is accepted and ignored)."""
        self.check_supported(problem)
        X = torch.tensor(problem.X, dtype=torch.float64)
        y = torch.tensor(problem.y, dtype=torch.float64)
        runs, best = [], None
        for lr in self.lrs:
            for seed in range(self.seed, self.seed + self.seeds):
                run, net, trace = self._train(problem, X, y, lr, seed)
                runs.append(run)
                if run.status != "diverged" and (best is None or run.objective < best[0].objective):
                    best = (run, net, trace)
        seconds = float(sum(r.seconds for r in runs))
        info = {"runs": [r.as_dict() for r in runs], "K": self.K, "lrs": list(self.lrs),
                "seeds": self.seeds, "batch_size": self.batch_size}
        if best is None:
            return Result(self.name, "error", solve_seconds=seconds, model=self.model,
                          message=f"all {len(runs)} runs diverged", info=info)
        run, net, trace = best
        info |= {"best_lr": run.lr, "best_seed": run.seed, "best_run_seconds": run.seconds}
        return Result(self.name, run.status, network=net, solve_seconds=seconds,
                      iterations=run.steps, trace=tuple(trace), model=self.model,
                      message=f"best of {len(runs)} runs: lr = {run.lr:g}, seed = {run.seed}",
                      info=info)

    def _objective(self, net: ParallelReLUNet, X, y, beta: float, loss: ConvexLoss,
                   scale: float = 1.0):
        return scale * loss.value(net(X), y) + beta * self.penalty(net)

    def _train(self, problem: Problem, X: torch.Tensor, y: torch.Tensor, lr: float, seed: int):
        gen, loss = torch.Generator().manual_seed(seed), get_loss(problem.loss)
        net = ParallelReLUNet.random(self.K, problem.d, problem.m1, 3, generator=gen,
                                     scale=self.init_scale)
        opt = self.make_optimizer(net.parameters(), lr)
        with torch.no_grad():
            ceiling = DIVERGENCE_FACTOR * max(float(loss.value(torch.zeros_like(y), y)),
                                              float(self._objective(net, X, y, problem.beta,
                                                                    loss)))
        clock, epoch, steps, status, trace = 0.0, 0, 0, "max_iterations", []
        while self.epochs is None or epoch < self.epochs:
            if clock >= self.run_seconds:
                status = "time_limit"
                break
            start = time.perf_counter()
            finite, done = self._epoch(net, opt, X, y, problem.beta, loss, gen)
            clock += time.perf_counter() - start
            epoch, steps = epoch + 1, steps + done
            if not finite:
                status = "diverged"
                break
            if epoch % self.trace_every == 0:
                trace.append(self._trace_row(net, X, y, problem.beta, loss, clock, epoch))
        return self._record(problem, net, X, y, lr, seed, status, clock, epoch, steps, trace,
                            ceiling)

    def _epoch(self, net, opt, X, y, beta: float, loss: ConvexLoss,
               gen: torch.Generator) -> tuple[bool, int]:
        """One pass over the data; whether loss and weights stayed finite, and the steps."""
        n = X.shape[0]
        b = self.batch_size or n
        order = torch.randperm(n, generator=gen) if b < n else None
        steps = 0
        for lo in range(0, n, b):
            Xb, yb = (X, y) if order is None else (X[order[lo:lo + b]], y[order[lo:lo + b]])
            opt.zero_grad(set_to_none=True)
            objective = self._objective(net, Xb, yb, beta, loss, n / Xb.shape[0])
            if not torch.isfinite(objective):
                return False, steps
            objective.backward()
            opt.step()
            if self.project:
                net.project_()
            steps += 1
        return all(bool(torch.isfinite(p).all()) for p in net.parameters()), steps

    @torch.no_grad()
    def _trace_row(self, net, X, y, beta, loss, clock, epoch):
        obj = float(self._objective(net, X, y, beta, loss))
        viol = float((net.W1.flatten(1).norm(dim=1).max() - 1.0).clamp_min(0.0))
        return (clock, epoch, obj, float("nan"), viol)

    @torch.no_grad()
    def _record(self, problem, net, X, y, lr, seed, status, clock, epoch, steps, trace,
                ceiling: float):
        obj = float(self._objective(net, X, y, problem.beta, get_loss(problem.loss)))
        if status == "diverged" or not obj <= ceiling:
            nan = float("nan")
            return Run(seed, lr, "diverged", nan, nan, nan, clock, epoch, steps), None, trace
        final = self.finalize(net.to_net())
        nc = nc_objective(final, problem.X, problem.y, problem.beta, problem.loss)
        run = Run(seed, lr, status, obj, nc, norm_violation(final), clock, epoch, steps)
        return run, final, trace


def balanced(net: ParallelNet) -> ParallelNet:
    """The same function with every ``||W1_k||_F = 1`` and ``||w2_k|| = |w3_k|``.

    Positive rescalings ``(a W1, w2 b / a, w3 / b)`` leave a ReLU network's output unchanged;
    this choice is feasible for NC and has the smallest NC penalty among them.  Sub-networks
    with a zero layer are set to zero.
    """
    a = net.first_layer_norms()
    live = (a > 0) & (np.abs(net.w2).sum(axis=1) > 0) & (net.w3 != 0)
    a = np.where(live, a, 1.0)
    W1 = np.where(live[:, None, None], net.W1 / a[:, None, None], 0.0)
    w2 = net.w2 * a[:, None]
    n2 = np.linalg.norm(w2, axis=1)
    gain = np.sqrt(np.where(live, np.abs(net.w3) / np.where(live, n2, 1.0), 0.0))
    return ParallelNet(W1, w2 * gain[:, None], np.where(live, net.w3 / np.where(live, gain, 1.0),
                                                        0.0), net.depth)
