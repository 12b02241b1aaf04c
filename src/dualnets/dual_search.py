"""Column generation over activation patterns, driven by the dual of the restricted program.

At a solution ``z`` of the convex program over the current patterns, ``v = A z - y``.  Over
*all* patterns the dual constraint is (docs/design.md sections 2 and 4, with ``sum_j ||z_j|| <= 1``
mapped to unit-norm sub-networks by the rebuild of section 3)::

    max_{||W1||_F <= 1, ||w2|| <= 1, sigma = +-1}  sigma v' ((X W1)_+ w2)_+  <=  beta.

:func:`search_subnetworks` looks for sub-networks breaking it by batched projected gradient
ascent (normalized Riemannian steps on the unit spheres) from many starts: random ones with both
output signs, and perturbed copies of the current solution's sub-networks (whose magnitudes of
w2 fix the outer mask).  :func:`dual_search` adds the patterns of those above ``beta`` and
re-solves, until no violation is found or a budget is spent.

The largest violation found also gives a dual bound: scaling ``v`` by ``t <= 1 / violation``
makes it feasible for every searched sub-network, so ``-t v'y - t^2/2 ||v||^2`` bounds the
optimum over all patterns from below *if* the search found the true maximum (it is a heuristic,
so the bound is reported as the search's, not certified).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .certificate import best_dual_scale, dual_value, primal_value
from .lifting import Lifting
from .network import ParallelNet
from .patterns import patterns_of_weights
from .problem import Patterns, Problem
from .rebuild import prune_blocks, rebuild_network
from .result import Result

SOLVED_STATUSES = ("optimal", "inaccurate", "max_iterations", "time_limit")
ACTIVE_REL_TOL = 1e-6   # blocks below this fraction of the largest count as zero (solver noise)
SMALL_N = 2000  # rows up to which Clarabel is the default solver of the rounds (measured: at
#                 n = 200 it solved 5 patterns in ~1 s where "al" timed out with a 0.95 gap)


@dataclass(frozen=True)
class SearchConfig:
    """Hyperparameters of the ascent and of the column-generation loop.

    Parameters
    ----------
    starts : random starts per round (half with each output sign)
    steps : ascent steps per round
    lr : largest step angle (radians) of the ascent; see :func:`search_subnetworks`
    local_starts : perturbed copies of each current sub-network (and its sign flip)
    max_add : most patterns added per round (the largest violations first)
    tol : a sub-network violates when ``value > beta (1 + tol)``
    max_rounds : most rounds (solves)
    max_seconds : seconds for the whole loop (checked between rounds), None for no limit
    keep_inactive : keep patterns whose blocks are zero at the current solution
    """

    starts: int = 512
    steps: int = 150
    lr: float = 0.05
    local_starts: int = 16
    max_add: int = 20
    tol: float = 1e-6
    max_rounds: int = 30
    max_seconds: float | None = None
    keep_inactive: bool = False

    def __post_init__(self) -> None:
        for name in ("starts", "steps", "max_add", "max_rounds"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.local_starts < 0:
            raise ValueError(f"local_starts must be >= 0, got {self.local_starts}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 or None, got {self.max_seconds}")


@dataclass(frozen=True)
class Found:
    """Best points of a search: W1 (R, d, m1), w2 (R, m1), output sign (R,), value (R,)."""

    W1: np.ndarray
    w2: np.ndarray
    sign: np.ndarray
    value: np.ndarray


def _unit(a: torch.Tensor) -> torch.Tensor:
    return a / a.flatten(1).norm(dim=1).clamp_min(1e-300).reshape(-1, *[1] * (a.dim() - 1))


def _values(X: torch.Tensor, v: torch.Tensor, W1, w2, sign) -> torch.Tensor:
    """sigma_r v' ((X W1_r)_+ w2_r)_+, shape (R,)."""
    hidden = torch.relu(torch.einsum("nd,rdm->rnm", X, W1))
    return sign * (torch.relu(torch.einsum("rnm,rm->rn", hidden, w2)) @ v)


def _starts(d: int, m1: int, count: int, local: ParallelNet | None, local_starts: int,
            gen: torch.Generator):
    """Random unit starts with alternating signs, plus perturbations of ``local``'s blocks."""
    W1 = _unit(torch.randn(count, d, m1, generator=gen, dtype=torch.float64))
    w2 = _unit(torch.randn(count, m1, generator=gen, dtype=torch.float64))
    sign = torch.where(torch.arange(count) % 2 == 0, 1.0, -1.0).double()
    if local is None or local.n_subnetworks == 0 or local_starts == 0:
        return W1, w2, sign
    K = local.n_subnetworks
    base1 = _unit(torch.as_tensor(local.W1)).repeat_interleave(local_starts, 0)
    base2 = _unit(torch.as_tensor(local.w2)).repeat_interleave(local_starts, 0)
    noise = torch.logspace(-3, 0, local_starts, dtype=torch.float64).repeat(K)
    lw1 = _unit(base1 + noise[:, None, None] * _unit(torch.randn(base1.shape, generator=gen,
                                                                 dtype=torch.float64)))
    lw2 = _unit(base2 + noise[:, None] * _unit(torch.randn(base2.shape, generator=gen,
                                                           dtype=torch.float64)))
    lsign = torch.as_tensor(np.sign(local.w3)).double().repeat_interleave(local_starts, 0)
    return torch.cat([W1, lw1]), torch.cat([w2, lw2]), torch.cat([sign, lsign])


def search_subnetworks(X: np.ndarray, v: np.ndarray, m1: int, config: SearchConfig = SearchConfig(),
                       seed: int = 0, local: ParallelNet | None = None) -> Found:
    """Projected gradient ascent of ``sigma v' ((X W1)_+ w2)_+`` on the unit spheres.

    Every start takes normalized steps along its Riemannian gradient (the gradient minus its
    radial part), of angle ``lr_r`` cosine-decayed to 1%; the ``lr_r`` are log-spaced over
    ``[lr / 30, lr]`` so that wide and narrow regions are both explored.  Returns, for every
    start, the best point met on its path and its value.
    """
    gen = torch.Generator().manual_seed(seed)
    Xt, vt = torch.tensor(X, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)
    W1, w2, sign = _starts(X.shape[1], m1, config.starts, local, config.local_starts, gen)
    R = sign.shape[0]
    rate = config.lr * torch.logspace(-np.log10(30.0), 0.0, R, dtype=torch.float64)
    rate = rate[torch.randperm(R, generator=gen)]
    best = torch.full_like(sign, -np.inf)
    best1, best2 = W1.clone(), w2.clone()
    for step in range(config.steps + 1):
        W1.requires_grad_(True)
        w2.requires_grad_(True)
        val = _values(Xt, vt, W1, w2, sign)
        g1, g2 = torch.autograd.grad(val.sum(), (W1, w2))
        with torch.no_grad():
            better = val > best
            best = torch.where(better, val, best)
            best1[better], best2[better] = W1[better], w2[better]
            decay = 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * step / max(config.steps, 1)))
            W1 = _ascend(W1.detach(), g1, rate * decay)
            w2 = _ascend(w2.detach(), g2, rate * decay)
    return Found(best1.numpy(), best2.numpy(), sign.numpy(), best.numpy())


def _ascend(x: torch.Tensor, g: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """One normalized Riemannian gradient step of the given angles, back onto the sphere."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    radial = (g * x).flatten(1).sum(dim=1).reshape(shape)
    tangent = g - radial * x
    norm = tangent.flatten(1).norm(dim=1).reshape(shape)
    return _unit(x + angle.reshape(shape) * tangent / norm.clamp_min(1e-300))


def new_patterns(current: Patterns, X: np.ndarray, found: Found, threshold: float,
                 max_add: int) -> tuple[Patterns, float]:
    """Patterns of the found sub-networks above ``threshold`` that ``current`` lacks (largest
    values first, at most ``max_add``), and the largest value found."""
    order = np.argsort(-found.value)
    above = order[found.value[order] > threshold]
    top = float(found.value.max(initial=-np.inf))
    if above.size == 0:
        return Patterns.empty(current.m1, current.n_samples), top
    cand = patterns_of_weights(X, found.W1[above], found.w2[above])
    union = current.concat(cand)
    fresh = np.arange(current.n_patterns, union.n_patterns)[:max_add]
    return union.take(fresh), top


def search_dual_bound(v: np.ndarray, y: np.ndarray, violation: float) -> float:
    """``max_t -t v'y - t^2/2 ||v||^2`` over ``0 <= t <= 1 / max(violation, 1)``.

    The violation is taken as at least 1: at a solution of the restricted program its active
    sub-networks reach exactly beta, so a search reporting less has only missed them.
    """
    return dual_value(v, y, best_dual_scale(v, y, 1.0 / max(violation, 1.0)))


@dataclass
class SearchOutcome:
    """The final problem (its patterns), the last solve and the per-round records."""

    problem: Problem
    result: Result | None
    rounds: list = field(default_factory=list)
    seconds: float = 0.0


def _active(problem: Problem, result: Result) -> tuple[Patterns, ParallelNet, np.ndarray]:
    """Patterns with a nonzero block after pruning, the rebuilt network, and v = A z - y."""
    lift = Lifting.from_problem(problem)
    v = lift.predict(result.Z) - problem.y
    Z = prune_blocks(lift, problem.y, problem.beta, result.Z)
    t = np.linalg.norm(Z, axis=1).reshape(lift.n_blocks, lift.m1).sum(axis=1)
    P, floor = lift.n_patterns, ACTIVE_REL_TOL * t.max(initial=0.0)
    live = np.flatnonzero((t[:P] > floor) | (t[P:] > floor))
    return problem.patterns.take(live), rebuild_network(lift, Z), v


def dual_search(problem: Problem, solver, config: SearchConfig = SearchConfig(), seed: int = 0,
                log: list | None = None) -> SearchOutcome:
    """Column generation from ``problem``'s patterns (none is fine: the first dual is -y).

    Each round solves the program, searches for violating sub-networks, and adds their
    patterns; patterns whose blocks are zero are dropped unless ``config.keep_inactive``.
    Stops when a search finds no new violating pattern, or after ``config.max_rounds``
    searches or ``config.max_seconds`` seconds (then the last patterns are solved once more, so
    that ``result`` always solves ``problem``).  One record per round goes to ``log`` (and
    ``rounds``): patterns, added, objective, max_violation (largest value / beta, NaN when no
    search ran), search_dual_bound, solve_seconds, search_seconds.
    """
    start = time.perf_counter()
    patterns = problem.patterns if problem.patterns is not None else \
        Patterns.empty(problem.m1, problem.n)
    out = SearchOutcome(problem.with_patterns(patterns), None)
    for rnd in range(config.max_rounds + 1):
        t0 = time.perf_counter()
        kept, local, v, objective = _solve_round(solver, out, rnd)
        t1 = time.perf_counter()
        spent = t1 - start
        record = {"strategy": "dual-search", "round": rnd, "patterns": out.problem.n_patterns,
                  "added": 0, "objective": objective, "max_violation": float("nan"),
                  "search_dual_bound": float("nan"), "solve_seconds": t1 - t0,
                  "search_seconds": 0.0}
        over = config.max_seconds is not None and spent > config.max_seconds
        added = None
        if rnd < config.max_rounds and not over:
            found = search_subnetworks(problem.X, v, problem.m1, config, seed + rnd, local)
            added, top = new_patterns(out.problem.patterns, problem.X, found,
                                      problem.beta * (1 + config.tol), config.max_add)
            violation = top / problem.beta
            record |= {"added": added.n_patterns, "max_violation": violation,
                       "search_dual_bound": search_dual_bound(v, problem.y, violation),
                       "search_seconds": time.perf_counter() - t1}
        out.rounds.append(record)
        if log is not None:
            log.append(record)
        if added is None or added.n_patterns == 0:
            break
        base = out.problem.patterns if config.keep_inactive else kept
        out.problem = out.problem.with_patterns(base.concat(added))
    out.seconds = time.perf_counter() - start
    return out


def _solve_round(solver, out: SearchOutcome, rnd: int):
    """Solve ``out.problem`` (in place); its active patterns, network, dual v and objective."""
    problem = out.problem
    if not problem.n_patterns:
        return problem.patterns, None, -problem.y, 0.5 * float(problem.y @ problem.y)
    out.result = solver.solve(problem, warm_start=out.result)   # solvers without warm starts
    #                                                              ignore it
    if out.result.status not in SOLVED_STATUSES or out.result.Z is None:
        raise ValueError(f"dual-search: solver {out.result.solver!r} failed in round {rnd}: "
                         f"status {out.result.status}, {out.result.message}")
    kept, local, v = _active(problem, out.result)
    objective = primal_value(v, out.result.Z, problem.beta)
    return kept, local, v, objective


def default_search_solver(problem: Problem) -> str:
    """Clarabel up to ``SMALL_N`` rows, the augmented Lagrangian ("al") above when installed."""
    from .registry import available_solvers
    if problem.n <= SMALL_N or "al" not in available_solvers():
        return "clarabel"
    return "al"
