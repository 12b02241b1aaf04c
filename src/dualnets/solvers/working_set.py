"""The working-set outer loop of ``al`` (docs/design.md section 8), as skglm, celer and blitz
use working sets for the lasso.

At an optimum only a few blocks ``b = (c, sigma)`` are nonzero.  The loop keeps a working set of
patterns ``W`` (a pattern brings both of its sign blocks) and repeats:

1. solve the program restricted to ``W`` with the augmented Lagrangian (:mod:`.al`, warm
   started: groups and multipliers matched by pattern identity, ``torch_run.warm_arrays``,
   and the last round's ``rho``);
2. price every block outside ``W`` at the restricted dual point ``v = grad L(A z)`` (the
   residual ``A z - y`` for the squared loss; :mod:`.al_pricing`):
   ``p_b = min_{lam_b >= 0} max_j ||(A_b'v - B_b'lam_b)_j||``;
3. certify the whole program: the blocks outside ``W`` are at zero with their pricing
   multipliers, so ``max_g ||(A'v - B'lam)_g|| = max(worst over W, max_b p_b)`` and
   :func:`dualnets.certificate.certificate_from` gives the gap of the full problem;
4. stop when it certifies; otherwise add the worst violators (``p_b > beta``), at least
   ``MIN_ADDED`` patterns and as many as ``W`` already holds (the set grows geometrically).

Early rounds are inexact, as in celer: a round solves the restricted program only to
``INEXACT_RATIO`` times the last full gap (never below ``gap_tol``); a round that finds no
violator after such a loose solve solves the same set again, tighter.

When the gap is small, no block outside ``W`` violates and the point is feasible, the blocks of
``W`` are priced too (:func:`reprice_inside`): for a fixed ``v`` pricing gives each block its
best multipliers, a dual polish that needs no further primal iteration.

A cold start first prices every block at ``z = 0`` (``v = grad L(0)``, ``-y`` for the squared
loss): when none violates, ``z = 0`` is
certified without any solve (large beta, ``y = 0``).  The returned multipliers cover every block,
so ``certify()`` on the full problem reproduces the final trace row.
"""

from __future__ import annotations

import copy
import time

import numpy as np

from ..certificate import Certificate, certificate_from, dual_point, primal_value, \
    relative_violation
from ..lifting import Lifting
from ..problem import Problem
from ..result import Result
from .al_newton import newton_fits
from .al_pricing import BlockPrice, BlockPricer
from .torch_run import warm_arrays

MIN_ADDED = 8          # patterns added per round at least (the first set included)
COARSE_GAP = 1e-2      # above this full gap (and at z = 0) the pricing only ranks: one NNLS
COARSE_COLUMN_ROUNDS = 3   # of this many column-generation rounds per block
INEXACT_RATIO = 0.1    # a round solves the restricted program to this fraction of the last
#                        full gap (never tighter than gap_tol): the first rounds' sets change


class WorkingSetState:
    """Full-size arrays of the current point: ``Z`` (G, d), ``lam_i`` (G, n), ``lam_o`` (B, n)
    (depth 3, else None), the working set ``members`` (pattern indices), the last prices and
    the AL penalty ``rho`` of the last round (None before the first)."""

    def __init__(self, problem: Problem, lift: Lifting, warm_start: Result | None):
        G, B, n, d = lift.n_groups, lift.n_blocks, problem.n, problem.d
        if warm_start is None:
            Z, lam_i, lam_o = np.zeros((G, d)), None, None
        else:
            Z, lam_i, lam_o = warm_arrays(problem, lift, warm_start)
        self.Z = np.array(Z, dtype=np.float64)
        self.lam_i = np.zeros((G, n)) if lam_i is None else np.array(lam_i, np.float64)
        self.lam_o = None if lift.depth == 2 else (
            np.zeros((B, n)) if lam_o is None else np.array(lam_o, np.float64))
        P, m1 = lift.n_patterns, lift.m1
        self.n_patterns = P
        nonzero = np.linalg.norm(self.Z, axis=1).reshape(2, P, m1).max(axis=(0, 2)) > 0
        self.members = np.flatnonzero(nonzero)
        self.prices: dict[int, BlockPrice] = {}
        self.rho = None if warm_start is None else warm_start.info.get("rho")

    def groups(self, lift: Lifting, patterns: np.ndarray) -> np.ndarray:
        """Group rows of ``patterns``, both signs, in the restricted problem's order."""
        P, m1 = lift.n_patterns, lift.m1
        blocks = np.concatenate([patterns, patterns + P])
        return (blocks[:, None] * m1 + np.arange(m1)[None, :]).ravel()

    def as_result(self, problem: Problem) -> Result:
        """The current point as a warm start (``warm_arrays`` maps it by pattern identity)."""
        return Result("al", "optimal", Z=self.Z, lam_inner=self.lam_i, lam_outer=self.lam_o,
                      info={"patterns": problem.patterns, "rho": self.rho})


def restricted_problem(problem: Problem, members: np.ndarray) -> Problem:
    """The program over the patterns ``members`` only."""
    return problem.with_patterns(problem.require_patterns().take(members))


def restricted_pieces(problem: Problem, members: np.ndarray, state: WorkingSetState,
                      lift: Lifting) -> tuple[np.ndarray, float, dict[int, float], float]:
    """``(v, primal, {block in W: max_j ||(A'v - B'lam)_j||}, relative violation)`` of the
    current point, computed on the restricted program (every group outside it is zero)."""
    y, beta, loss = problem.y, problem.beta, problem.loss
    if members.size == 0:
        zero = np.zeros(problem.n)
        return dual_point(zero, y, loss), primal_value(zero, y, state.Z, beta, loss), {}, 0.0
    sub = Lifting.from_problem(restricted_problem(problem, members))
    rows = state.groups(lift, members)
    blocks = np.concatenate([members, members + lift.n_patterns])   # the restricted order
    Z = state.Z[rows]
    yhat = sub.predict(Z)
    v = dual_point(yhat, y, loss)
    lam_o = None if state.lam_o is None else state.lam_o[blocks]
    norms = np.linalg.norm(sub.adjoint(v, state.lam_i[rows], lam_o), axis=1)
    worst = dict(zip(blocks.tolist(), norms.reshape(blocks.size, lift.m1).max(axis=1)))
    return v, primal_value(yhat, y, Z, beta, loss), worst, relative_violation(sub, y, Z)


def reprice_inside(pricer: BlockPricer, state: WorkingSetState, lift: Lifting, v: np.ndarray,
                   beta: float, inside: dict[int, float]) -> None:
    """The dual side of a polish: for a fixed ``v`` the best multipliers of each block are its
    pricing multipliers (the blocks' rows of ``lam`` are disjoint), so every block of ``W``
    whose AL multipliers leave a row above ``beta`` is priced too, and keeps the better of the
    two (``inside`` is updated)."""
    m1 = lift.m1
    for b, current in inside.items():
        if current <= beta:
            continue
        lam_o = None if state.lam_o is None else state.lam_o[b].copy()
        start = BlockPrice(current, 0.0, state.lam_i[b * m1:(b + 1) * m1].copy(), lam_o)
        price = pricer.price(v, b, beta, start=start)
        if price.upper < current:
            state.lam_i[b * m1:(b + 1) * m1] = price.lam_inner
            if state.lam_o is not None:
                state.lam_o[b] = price.lam_outer
            inside[b] = price.upper


def price_outside(pricer: BlockPricer, state: WorkingSetState, lift: Lifting, v: np.ndarray,
                  beta: float, coarse: bool, deadline: float) -> dict[int, float]:
    """Price every block whose pattern is outside the working set; their multipliers go into
    ``state``.  Returns ``{pattern: largest price of its two blocks}``.

    ``coarse`` (far from optimal: the prices only rank the violators) caps the effort at one
    NNLS of ``COARSE_COLUMN_ROUNDS``; past ``deadline`` (a ``time.perf_counter`` value) the
    blocks left are priced with their last multipliers only (no NNLS).
    """
    P, m1 = lift.n_patterns, lift.m1
    inside = np.zeros(P, bool)
    inside[state.members] = True
    worst: dict[int, float] = {}
    for b in range(lift.n_blocks):
        c = b % P
        if inside[c]:
            continue
        if time.perf_counter() > deadline:
            effort = dict(lawson_steps=0, column_rounds=0)
        elif coarse:
            effort = dict(lawson_steps=1, column_rounds=COARSE_COLUMN_ROUNDS)
        else:
            effort = {}
        price = pricer.price(v, b, beta, start=state.prices.get(b), **effort)
        state.prices[b] = price
        state.lam_i[b * m1:(b + 1) * m1] = price.lam_inner
        if state.lam_o is not None:
            state.lam_o[b] = price.lam_outer
        worst[c] = max(worst.get(c, 0.0), price.upper)
    return worst


def newton_capacity(problem: Problem) -> int:
    """The most patterns ``k`` such that every set of at most ``k`` patterns keeps the Newton
    system within its size (``al_newton.newton_fits`` with ``G = 2 k m1``)."""
    k = 0
    while k < problem.n_patterns and newton_fits(problem.n, 2 * (k + 1) * problem.m1,
                                                 problem.d):
        k += 1
    return k


def grow(state: WorkingSetState, outside: dict[int, float], beta: float,
         capacity: int) -> int:
    """Add the worst violators (price above ``beta``), at least ``MIN_ADDED`` and as many as
    the set already holds; no more than ``capacity`` patterns in all while some violator still
    fits (the Newton size: above it ``auto`` falls back to fista).  Returns how many were
    added.  (Taking every violator once the set would hold half the patterns was slower, cold
    and warm: planted n = 400, P = 50, 4.8 s against 3.3 s; breast_cancer's dual-search rounds,
    warm with 20 new patterns, 38.6 s against 27.5 s over four rounds.)"""
    violators = sorted((c for c, p in outside.items() if p > beta), key=lambda c: -outside[c])
    size = state.members.size
    added = violators[: max(MIN_ADDED, size)]
    if size < capacity:
        added = added[: capacity - size]
    state.members = np.sort(np.concatenate([state.members, np.array(added, dtype=np.int64)]))
    return len(added)


def solve_working_set(solver, problem: Problem, warm_start: Result | None) -> Result:
    """Run the working-set loop (module docstring) with ``solver`` (an ``AugmentedLagrangian``)
    solving the restricted programs; returns the Result over the full problem."""
    begin = time.perf_counter()
    lift = Lifting.from_problem(problem)
    state = WorkingSetState(problem, lift, warm_start)
    pricer = BlockPricer(lift)
    setup = time.perf_counter() - begin
    run = _Run(solver, problem, lift, state, pricer)
    run.loop()
    Z, lam_i, lam_o = run.best_arrays()
    info = dict(run.info, patterns=problem.patterns, working_set=run.best[4].tolist(),
                working_set_patterns=int(run.best[4].size), working_set_rounds=run.rounds)
    return Result(solver.name, run.status, Z=Z, lam_inner=lam_i, lam_outer=lam_o,
                  setup_seconds=setup, solve_seconds=run.seconds(), warmup_seconds=run.warmup,
                  iterations=run.iterations, trace=tuple(run.trace), info=info,
                  message=info.get("message", ""))


class _Run:
    """One working-set solve: rounds of restricted solve, pricing and full certificate."""

    def __init__(self, solver, problem: Problem, lift: Lifting, state: WorkingSetState,
                 pricer: BlockPricer):
        self.solver, self.problem, self.lift, self.state, self.pricer = (
            solver, problem, lift, state, pricer)
        self.start, self.warmup = time.perf_counter(), 0.0
        self.iterations, self.rounds, self.status = 0, 0, "max_iterations"
        self.trace: list[tuple] = []
        self.info: dict = {}
        self.best = None     # (score, Z, lam_i, lam_o, members, trace row)
        self.last_gap = 0.0  # |relative gap| of the last full certificate
        self.tolerance = 0.0  # gap_tol of the last restricted solve
        self.capacity = problem.n_patterns if solver.inner == "fista" else newton_capacity(
            problem)

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.warmup

    def loop(self) -> None:
        if self._check_first():
            return
        solver = self.solver
        while True:
            result = self._restricted_solve()
            if result is None:
                return
            if self._check_and_grow(solved=result.status == "optimal"):
                return
            if not self._budget_left():
                self.status = "time_limit" if self.iterations < solver.max_iters \
                    else "max_iterations"
                return

    def _check_first(self) -> bool:
        """Price before any solve; True when that ends the loop.  A cold start (``z = 0``)
        ends when nothing violates; a warm start (a point solved over its own patterns, as
        ``dual_search`` passes) only when it certifies: re-solving the solved set first took up
        to 320 Newton steps (breast_cancer, 35 patterns) before the new patterns came in."""
        if self.state.members.size == 0:
            return self._check_and_grow(solved=True)
        return self._check_and_grow(solved=False) and self.status == "optimal"

    def _budget_left(self) -> bool:
        return self.iterations < self.solver.max_iters and self.seconds() < self.solver.max_seconds

    def _restricted_solve(self) -> Result | None:
        """Solve over the working set with the rest of the budget, and store the point."""
        solver, state, problem = self.solver, self.state, self.problem
        sub = copy.copy(solver)
        sub.working_set = False
        # the rounds stay with the warm-started AL: cold interior-point rounds took
        # breast_cancer P = 500 to 254 s, against 91 s
        sub.auto_ipm = False
        # inexact early rounds (as celer does): the restricted program only needs to be solved
        # to a fraction of the full gap that the pricing found
        loose = INEXACT_RATIO * self.last_gap
        sub.gap_tol = self.tolerance = max(solver.gap_tol, loose)
        sub.violation_tol = max(solver.violation_tol, loose)
        sub.max_seconds = solver.max_seconds - self.seconds()
        sub.max_iters = solver.max_iters - self.iterations
        if not sub.max_seconds > 0 or sub.max_iters < 1:
            self.status = "time_limit" if sub.max_iters >= 1 else "max_iterations"
            return None
        restricted = restricted_problem(problem, state.members)
        result = sub.solve(restricted, warm_start=state.as_result(problem))
        self.warmup += result.warmup_seconds + result.setup_seconds
        self.iterations += result.iterations
        self.rounds += 1
        self.status = result.status
        self.info = {k: v for k, v in result.info.items() if k != "patterns"}
        rows = state.groups(self.lift, state.members)
        state.Z[rows] = result.Z
        state.rho = result.info.get("rho")
        state.lam_i[rows] = result.lam_inner
        if state.lam_o is not None:
            blocks = np.concatenate([state.members, state.members + self.lift.n_patterns])
            state.lam_o[blocks] = result.lam_outer
        return result

    def _check_and_grow(self, solved: bool) -> bool:
        """Price, certify the full problem, keep the best point; True when the loop is done
        (certified, or no violator left to add)."""
        solver, state, problem = self.solver, self.state, self.problem
        v, primal, inside, violation = restricted_pieces(problem, state.members, state,
                                                         self.lift)
        deadline = self.start + self.warmup + solver.max_seconds
        outside = price_outside(self.pricer, state, self.lift, v, problem.beta,
                                self.last_gap > COARSE_GAP or not self.rounds, deadline)
        cert = self._certificate(v, primal, inside, outside, violation)
        if not cert.certified and violation <= solver.violation_tol and \
                abs(cert.relative_gap) <= COARSE_GAP and max(outside.values(), default=0.0) \
                <= problem.beta:
            reprice_inside(self.pricer, state, self.lift, v, problem.beta, inside)
            cert = self._certificate(v, primal, inside, outside, violation)
        self._record(cert)
        self.last_gap = abs(cert.relative_gap)
        if cert.certified:
            self.status = "optimal"
            return True
        added = grow(state, outside, problem.beta, self.capacity)
        if solver.verbose:
            print(f"al working set: round {self.rounds} gap {cert.relative_gap:.2e} viol "
                  f"{cert.constraint_violation:.2e} added {added} -> {state.members.size} of "
                  f"{self.lift.n_patterns} patterns")
        if added == 0:
            if solved and self.tolerance > solver.gap_tol:
                self.last_gap = 0.0           # solved loosely: again, to gap_tol, same set
                return False
            if solved:
                self.status = "inaccurate"
            return True
        return False

    def _certificate(self, v: np.ndarray, primal: float, inside: dict[int, float],
                     outside: dict[int, float], violation: float) -> Certificate:
        """The full problem's certificate: its largest dual row is the largest of the blocks
        in ``W`` and of the priced ones."""
        worst = max([0.0, *inside.values(), *outside.values()])
        return certificate_from(v, self.problem.y, self.problem.beta, primal, worst, violation,
                                self.solver.gap_tol, self.solver.violation_tol,
                                self.problem.loss)

    def _record(self, cert: Certificate) -> None:
        """A trace row, and the best point so far by ``max(|gap| / tol, violation / tol)``."""
        solver, state = self.solver, self.state
        self.trace.append((self.seconds(), self.iterations, cert.objective, cert.relative_gap,
                           cert.constraint_violation))
        score = max(abs(cert.relative_gap) / solver.gap_tol,
                    cert.constraint_violation / solver.violation_tol)
        if self.best is None or score <= self.best[0]:
            lam_o = None if state.lam_o is None else state.lam_o.copy()
            self.best = (score, state.Z.copy(), state.lam_i.copy(), lam_o, state.members.copy(),
                         len(self.trace) - 1)

    def best_arrays(self):
        """``(Z, lam_i, lam_o)`` of the best checked point; its row becomes the last one."""
        _, Z, lam_i, lam_o, _, row = self.best
        self.trace[-1] = (*self.trace[-1][:2], *self.trace[row][2:])
        return Z, lam_i, lam_o
