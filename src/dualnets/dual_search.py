"""Column generation over activation patterns, driven by the dual of the restricted program.

At a solution ``z`` of the convex program over the current patterns, the dual point is
``v = grad L(A z)`` (squared loss: ``A z - y``; logistic: ``-y s(-y A z)``).  Over
*all* patterns the dual constraint is (docs/design.md sections 2, 4 and 10, with
``sum_j ||z_j|| <= 1`` mapped to unit-norm sub-networks by the rebuild of section 3)::

    p*(v) = max_{||W1||_F <= 1, ||w2|| <= 1, sigma = +-1}  sigma v' ((X W1)_+ w2)_+  <=  beta.

Each round prices sub-networks against ``v`` and adds the patterns of the best ones:

- **exact** pricing (:mod:`dualnets.pricing`), used automatically when the realizable patterns
  can be enumerated (the size guard of :mod:`dualnets.exhaustive`: at most ``MAX_CELLS`` cells,
  and, for m1 = 2 at depth 3 on data of rank 3 or more, ``C^3 <= MAX_LPS``; m1 <= 2 at depth 3;
  rank-2 data needs no LPs, :mod:`dualnets.plane`).  It prices every block and
  bounds ``p*(v)`` from above, so ``t v`` with ``t = min(1, beta / p*)`` is dual feasible for
  the program over *every* pattern: its value (:func:`dualnets.certificate.capped_dual_value`)
  is a lower bound on the NC objective of every network, the round's ``global_lower_bound``.
  The loop stops when the objective is within ``gap_tol`` of it.
- **heuristic** pricing otherwise: :func:`search_subnetworks`, batched projected gradient ascent
  from many starts (random ones and ones on hyperplanes through data points, both output
  signs, and perturbed copies of the current solution's sub-networks).  It may miss the
  maximum, so the same formula over its largest value is only the round's
  ``heuristic_dual_value``: no bound (it lies above the optimum whenever the search missed a
  violation, as it did in issue 13).

In both modes the best patterns above ``beta (1 - near)`` that the program lacks are added
(near-violators too, so that a search topping out at 0.99999 beta still adds the patterns it
found), and the loop stops when there are none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch

from .certificate import capped_dual_value, dual_point, primal_value, relative_gap
from .lifting import Lifting
from .network import ParallelNet
from .patterns import patterns_of_weights
from .pricing import PricingSet, price_all, try_pricing_set
from .problem import Patterns, Problem
from .rebuild import block_norms, prune_blocks, rebuild_network
from .result import Result

SOLVED_STATUSES = ("optimal", "inaccurate", "max_iterations", "time_limit")
ACTIVE_REL_TOL = 1e-6   # blocks below this fraction of the largest count as zero (solver noise)
Pricing = Literal["auto", "heuristic"]
PRICINGS: tuple[str, ...] = get_args(Pricing)
SMALL_N = 200   # rows from which "al" is the default solver of heuristic rounds: from random:5
#                 with a 150 s budget it went below the best SGD/Adam network after 25 / 9 s
#                 (planted, spirals; n = 200), where Clarabel's rounds took 57 / 13 s, and on
#                 breast_cancer and diabetes, where Clarabel's never did; Clarabel was ahead at
#                 n = 134 (wine: 12.9 s against 14.6 s)


@dataclass(frozen=True)
class SearchConfig:
    """Hyperparameters of the ascent and of the column-generation loop.

    Parameters
    ----------
    starts : random starts per round (half with each output sign)
    steps : ascent steps per round
    lr : largest step angle (radians) of the ascent; see :func:`search_subnetworks`
    local_starts : perturbed copies of each current sub-network (and its sign flip)
    local_max : only the ``local_max`` largest sub-networks (``|w3| ||w2||``) are perturbed
        (at 130 sub-networks the local starts were 4/5 of the ascent's cost)
    data_starts : fraction of the random starts whose neurons lie on hyperplanes through
        ``d - 1`` data points (the vertices of the arrangement, where cells meet)
    max_add : most patterns added per round (the largest values first)
    near : patterns with value above ``beta (1 - near)`` that the program lacks are added
    max_rounds : most rounds (solves)
    max_seconds : seconds for the whole loop (checked between rounds), None for no limit
    keep_inactive : keep patterns whose blocks are zero at the current solution
    pricing : "auto" (exact when the enumeration is under its guard) or "heuristic"
    gap_tol : exact pricing stops when ``(objective - global_lower_bound) / objective <= gap_tol``
    """

    starts: int = 512
    steps: int = 100     # with max_add = 30 (was 150 and 20): from random:5, 42 s / 43 s to
    #                      below the best SGD/Adam network on breast_cancer / diabetes, against
    #                      64 s / 55 s; 75 steps ran out of violators on breast_cancer (5.95)
    lr: float = 0.05
    local_starts: int = 16
    local_max: int = 32
    data_starts: float = 0.5
    max_add: int = 30
    near: float = 1e-4
    max_rounds: int = 30
    max_seconds: float | None = None
    keep_inactive: bool = False
    pricing: Pricing = "auto"
    gap_tol: float = 1e-7

    def __post_init__(self) -> None:
        for name in ("starts", "steps", "max_add", "max_rounds", "local_max"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.local_starts < 0:
            raise ValueError(f"local_starts must be >= 0, got {self.local_starts}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.near < 1:
            raise ValueError(f"near must be in [0, 1), got {self.near}")
        if not 0 <= self.data_starts <= 1:
            raise ValueError(f"data_starts must be in [0, 1], got {self.data_starts}")
        if not self.gap_tol > 0:
            raise ValueError(f"gap_tol must be > 0, got {self.gap_tol}")
        if self.pricing not in PRICINGS:
            raise ValueError(f"pricing must be one of {PRICINGS}, got {self.pricing!r}")
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


def _vertex_rays(X: torch.Tensor, count: int, m1: int, gen: torch.Generator) -> torch.Tensor:
    """Unit neurons orthogonal to ``d - 1`` random rows of X, random signs, slightly perturbed:
    shape (count, d, m1).  (The last right singular vector spans the rows' null space.)"""
    n, d = X.shape
    rows = torch.randint(n, (count * m1, max(d - 1, 1)), generator=gen)
    ray = torch.linalg.svd(X[rows], full_matrices=True).Vh[:, -1, :]          # (count*m1, d)
    sign = torch.where(torch.rand(count * m1, 1, generator=gen) < 0.5, -1.0, 1.0).double()
    ray = sign * ray + 1e-3 * torch.randn(ray.shape, generator=gen, dtype=torch.float64)
    return _unit(ray.reshape(count, m1, d).transpose(1, 2).contiguous())


def _starts(X: torch.Tensor, m1: int, config: SearchConfig, local: ParallelNet | None,
            gen: torch.Generator):
    """Random unit starts with alternating signs (a ``data_starts`` share of them on data
    hyperplanes), plus perturbations of ``local``'s blocks."""
    count, d = config.starts, X.shape[1]
    W1 = _unit(torch.randn(count, d, m1, generator=gen, dtype=torch.float64))
    on_data = int(round(config.data_starts * count))
    if on_data:
        W1[:on_data] = _unit(_vertex_rays(X, on_data, m1, gen))
    w2 = _unit(torch.randn(count, m1, generator=gen, dtype=torch.float64))
    sign = torch.where(torch.arange(count) % 2 == 0, 1.0, -1.0).double()
    local_starts = config.local_starts
    # at depth 2 the rebuilt network's sub-networks are single neurons, whatever m1: they are
    # no starts for m1-neuron sub-networks (their concatenation crashed at m1 >= 2)
    if local is None or local.n_subnetworks == 0 or local_starts == 0 or \
            local.W1.shape[2] != m1:
        return W1, w2, sign
    size = np.abs(local.w3) * np.linalg.norm(local.w2, axis=1)
    largest = np.argsort(-size, kind="stable")[:config.local_max]
    K = largest.size
    base1 = _unit(torch.as_tensor(local.W1[largest])).repeat_interleave(local_starts, 0)
    base2 = _unit(torch.as_tensor(local.w2[largest])).repeat_interleave(local_starts, 0)
    noise = torch.logspace(-3, 0, local_starts, dtype=torch.float64).repeat(K)
    lw1 = _unit(base1 + noise[:, None, None] * _unit(torch.randn(base1.shape, generator=gen,
                                                                 dtype=torch.float64)))
    lw2 = _unit(base2 + noise[:, None] * _unit(torch.randn(base2.shape, generator=gen,
                                                           dtype=torch.float64)))
    lsign = torch.as_tensor(np.sign(local.w3[largest])).double()
    lsign = lsign.repeat_interleave(local_starts, 0)
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
    W1, w2, sign = _starts(Xt, m1, config, local, gen)
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


def fresh_patterns(current: Patterns, candidates: Patterns, max_add: int) -> Patterns:
    """The first ``max_add`` of ``candidates`` (best first) that ``current`` lacks."""
    union = current.concat(candidates)
    return union.take(np.arange(current.n_patterns, union.n_patterns)[:max_add])


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
    return fresh_patterns(current, cand, max_add), top


@dataclass
class SearchOutcome:
    """The final problem (its patterns), the last solve and the per-round records.

    ``pricing`` is "exact" or "heuristic" (with ``pricing_note`` saying why);
    ``global_lower_bound`` is the last exact round's bound (None when heuristic).
    """

    problem: Problem
    result: Result | None
    rounds: list = field(default_factory=list)
    seconds: float = 0.0
    pricing: str = "heuristic"
    pricing_note: str = ""
    global_lower_bound: float | None = None


def _active(problem: Problem,
            result: Result) -> tuple[Patterns, ParallelNet, np.ndarray, float]:
    """Patterns with a nonzero block after pruning, the rebuilt network, the dual point
    v = grad L(A z) and the objective."""
    lift = Lifting.from_problem(problem)
    yhat = lift.predict(result.Z)
    v = dual_point(yhat, problem.y, problem.loss)
    Z = prune_blocks(lift, problem.y, problem.beta, result.Z, problem.loss)
    t = block_norms(lift, Z)
    P, floor = lift.n_patterns, ACTIVE_REL_TOL * t.max(initial=0.0)
    live = np.flatnonzero((t[:P] > floor) | (t[P:] > floor))
    objective = primal_value(yhat, problem.y, result.Z, problem.beta, problem.loss)
    return problem.patterns.take(live), rebuild_network(lift, Z), v, objective


def _pricing_set(problem: Problem, config: SearchConfig) -> tuple[PricingSet | None, str]:
    if config.pricing == "heuristic":
        return None, "heuristic pricing requested"
    return try_pricing_set(problem)


def dual_search(problem: Problem, solver=None, config: SearchConfig = SearchConfig(), seed: int = 0,
                log: list | None = None, solve_by: float | None = None) -> SearchOutcome:
    """Column generation from ``problem``'s patterns (none is fine: the first dual point is
    ``grad L(0)``, ``-y`` for the squared loss); ``solver`` solves the rounds (None:
    :func:`default_search_solver`, which depends on whether the pricing is exact).

    Each round solves the program, prices sub-networks (exactly when the enumeration is under
    its guard, else by :func:`search_subnetworks`), and adds the best patterns above
    ``beta (1 - near)`` that the program lacks; patterns whose blocks are zero are dropped
    unless ``config.keep_inactive``.  Stops when there is none to add, when an exact round's
    global gap is <= ``gap_tol``, or after ``max_rounds`` pricings or ``max_seconds`` seconds
    (then the last patterns are solved once more, so that ``result`` always solves
    ``problem``).  One record per round goes to ``log`` (and ``rounds``): strategy, round,
    pricing ("exact" / "heuristic"), patterns, added, objective, max_violation (the largest
    price / beta: an upper bound when exact; NaN when no pricing ran), global_lower_bound and
    global_gap, blocks_priced and socps_solved (exact rounds, else None), heuristic_dual_value
    (heuristic rounds, else None), solve_seconds, search_seconds.
    """
    start = time.perf_counter()
    patterns = problem.patterns if problem.patterns is not None else \
        Patterns.empty(problem.m1, problem.n)
    out = SearchOutcome(problem.with_patterns(patterns), None)
    pset, out.pricing_note = _pricing_set(problem, config)
    out.pricing = "heuristic" if pset is None else "exact"
    if solver is None:
        from .registry import get_solver
        solver = get_solver(default_search_solver(problem, exact=pset is not None))
    for rnd in range(config.max_rounds + 1):
        t0 = time.perf_counter()
        left = None if solve_by is None else solve_by - (t0 - start)
        kept, local, v, objective = _solve_round(
            solver if left is None else solver.within(left), out, rnd)
        t1 = time.perf_counter()
        record = {"strategy": "dual-search", "round": rnd, "pricing": out.pricing,
                  "patterns": out.problem.n_patterns, "added": 0, "objective": objective,
                  "max_violation": float("nan"), "global_lower_bound": None,
                  "global_gap": None, "heuristic_dual_value": None, "blocks_priced": None,
                  "socps_solved": None, "solve_seconds": t1 - t0, "search_seconds": 0.0}
        over = config.max_seconds is not None and t1 - start > config.max_seconds
        added = None
        if rnd < config.max_rounds and not over:
            price = _price_exact if pset is not None else _price_heuristic
            added, fields = price(problem, out, v, local, config, seed + rnd, pset, objective)
            record |= fields | {"added": added.n_patterns,
                                "search_seconds": time.perf_counter() - t1}
            if record["global_lower_bound"] is not None:
                out.global_lower_bound = record["global_lower_bound"]
        out.rounds.append(record)
        if log is not None:
            log.append(record)
        if added is None or added.n_patterns == 0:
            break
        base = out.problem.patterns if config.keep_inactive else kept
        out.problem = out.problem.with_patterns(base.concat(added))
    out.seconds = time.perf_counter() - start
    return out


def _price_exact(problem, out, v, local, config, seed, pset, objective):
    """Exact round: the global bound of ``v`` and the best patterns the program lacks (none
    once the global gap is <= ``gap_tol``)."""
    prices = price_all(pset, v, problem.beta * (1 - config.near), config.max_add)
    bound = capped_dual_value(v, problem.y, problem.beta, prices.upper, problem.loss)
    gap = relative_gap(objective, bound)
    fields = {"max_violation": prices.upper / problem.beta, "global_lower_bound": bound,
              "global_gap": gap, "blocks_priced": pset.n_blocks, "socps_solved": prices.solved}
    if gap <= config.gap_tol:
        return Patterns.empty(problem.m1, problem.n), fields
    above = prices.patterns.take(np.flatnonzero(prices.values > problem.beta * (1 - config.near)))
    return fresh_patterns(out.problem.patterns, above, config.max_add), fields


def _price_heuristic(problem, out, v, local, config, seed, pset, objective):
    """Heuristic round: :func:`search_subnetworks` and its (non-certifying) dual value."""
    found = search_subnetworks(problem.X, v, problem.m1, config, seed, local)
    added, top = new_patterns(out.problem.patterns, problem.X, found,
                              problem.beta * (1 - config.near), config.max_add)
    return added, {"max_violation": top / problem.beta,
                   "heuristic_dual_value": capped_dual_value(v, problem.y, problem.beta, top,
                                                             problem.loss)}


def _solve_round(solver, out: SearchOutcome, rnd: int):
    """Solve ``out.problem`` (in place); its active patterns, network, dual v and objective."""
    problem = out.problem
    if not problem.n_patterns:
        zero = np.zeros(problem.n)
        return (problem.patterns, None, dual_point(zero, problem.y, problem.loss),
                primal_value(zero, problem.y, np.zeros((0, problem.d)), problem.beta,
                             problem.loss))
    out.result = solver.solve(problem, warm_start=out.result)   # solvers without warm starts
    #                                                              ignore it
    if out.result.status not in SOLVED_STATUSES or out.result.Z is None:
        raise ValueError(f"dual-search: solver {out.result.solver!r} failed in round {rnd}: "
                         f"status {out.result.status}, {out.result.message}")
    return _active(problem, out.result)


def default_search_solver(problem: Problem, exact: bool = False) -> str:
    """The solver of the rounds when none is named: Clarabel on the squared loss when the
    pricing is exact (the global gap is checked to ``gap_tol`` = 1e-7, which wants its 1e-8
    solves) or below ``SMALL_N`` rows; the augmented Lagrangian ("al") otherwise, when
    installed, and always on the logistic loss, whose exp-cone program Clarabel often leaves
    uncertified (docs/design.md section 9)."""
    from .registry import available_solvers
    if "al" not in available_solvers() or (
            problem.loss == "squared" and (exact or problem.n < SMALL_N)):
        return "clarabel"
    return "al"
