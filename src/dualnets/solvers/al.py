"""Augmented Lagrangian solver of the ReLU program, in PyTorch (registered as "al").

The method of Mishkin, Sahiner & Pilanci (ICML 2022, "Fast convex optimization for two-layer
ReLU networks"), extended to the outer cones of the three-layer program.  For
``min L(A z) + beta sum_g ||z_g||  s.t.  B z >= 0`` (docs/design.md sections 4 and 9; ``L`` the
squared or the logistic loss of :mod:`dualnets.losses`, both smooth)::

    L_rho(z, lam) = L(A z) + beta sum_g ||z_g|| + 1/(2 rho) ||(lam - rho B z)_+||^2
    z_k+1   ~ argmin_z L_rho(z, lam_k)             (inner solver, below)
    lam_k+1 = (lam_k - rho B z_k+1)_+              (inner (G, n) and outer (B, n) cones)

At an exact inner minimizer ``A' grad L(Az) - B' lam_k+1`` lies in ``-beta d||z||``, so
``(v = grad L(Az), lam_k+1)`` is dual feasible and the certificate of
:func:`dualnets.certificate.certify` measures only complementarity and infeasibility.  The
solver stops when that certificate (computed on the device) has ``|relative gap| <= gap_tol``
and violation ``<= violation_tol``; :mod:`dualnets.metrics` recomputes it in numpy from the
returned arrays.

One outer loop (:meth:`AugmentedLagrangian._iterate`) drives every inner solver through the
interface of :mod:`.al_inner`: it owns the budget, the checks, the multiplier and ``rho``
updates and the best checked point; inner solvers (``inner``) only step:

- ``"newton"`` (:mod:`.al_newton`): semismooth Newton steps on the nonzero groups, with the
  Gram matrix ``A'A`` formed once and the cone Hessian ``rho B_S'B_S`` block diagonal; a dense
  Cholesky per step of the system folded onto the patterns (``G d / 2`` unknowns at most,
  :mod:`.al_fold`), or an ``n x n`` one by Woodbury when ``n`` is small
  (sizes: ``al_newton.newton_fits``).  Newton's subproblem solves are accurate enough to grow
  ``rho`` 10x whenever infeasibility limits the certificate, and the outer loop converges in
  ~10 multiplier updates.
- ``"fista"``: accelerated proximal gradient with restarts (prox = group shrinkage), two GEMMs
  per step and no size limit, but tens of thousands of steps to 1e-6.  FISTA runs until
  ``max_g ||gradient mapping_g|| / beta <= eta`` or ``inner_iters`` steps; the global bound
  ``L = 1.05 lmax(A'A + rho B'B)`` (power iteration) caps a backtracking line search
  (``line_search``, off by default) that first tries ``0.9`` times the last step's ``L``.
  Once the certificate is within ``polish_at``, :mod:`.al_polish` tries a Newton step on the
  active set plus NNLS multipliers for the zero groups; its point is returned only if it
  certifies.
- ``"ipm"``: no augmented Lagrangian at all: the whole program (no working set, so its
  Newton system must fit, ``ipm.newton_route``) is solved by the structured interior-point
  method of :mod:`.ipm`, in float64, squared loss only; it takes no warm start.
- ``"auto"`` (default): ipm for a float64 squared-loss program within ``ipm.ipm_fits``
  (``n (G + B) <= 2e6`` cone rows, and ``G d / 2 <= 6000`` or ``n G d / 2 <= 5e7``), solved
  whole, without a working set (planted n = 1200, P = 50: 47 of the 50 patterns are needed
  anyway; d = 50 at n = 1600: about 170 of the 200 groups are nonzero); if it ends
  uncertified, the rest of the budget goes to the AL below, warm started from its point.
  Otherwise (and in every round of the working set, which stays with the warm-started AL)
  newton when it fits
  (``al_newton.newton_fits``: a dense system, or a low-rank one when ``n < G d / 2``), else
  fista.

Schedule (:mod:`.al_schedule`, the rules; here, why): after each inner solve the multipliers
are updated and ``eta`` divided by ``inner_decay``.  ``rho`` starts at
``rho_scale * lmax(A'A) / lmax(B'B)`` (``lmax(B'B) <= (1 + m1) lmax(X'X)``, ``lmax(X'X)`` at
depth 2) and grows by ``rho_growth`` when a solved subproblem cut the violation by less than
4x while infeasibility still limits the certificate (a violation above ``violation_tol`` or
a gap below ``-gap_tol``); with newton it drops by
``rho_growth`` (down to ``1/MAX_RHO_SOFTENING`` of its start) when a subproblem used all of
its steps unsolved: small effective beta (features scaled by 1e3) made the subproblems too stiff
for 50 Newton steps at the default ``rho_scale``.  Both moves stay inside the bracket of the
stiffest ``rho`` whose subproblem was solved and the softest one that was not (a move that
would leave it goes to the geometric mean of ``rho`` and the bracket's end instead):
stiffening back to a ``rho`` that had just failed made ``rho`` cycle between two values, 20
multiplier updates at gap ~1 and ~3e-3 on a generated problem that then took 7 s to certify
(n = 120, m1 = 2, a constant column).  Once the stiffening comes within ``RETRY_RATIO`` of
the failed ``rho`` the bracket has closed and that ``rho`` is tried again, and a subproblem
that used its steps unsolved but whose check cut the score by ``PROGRESS`` keeps its ``rho``
(it only lacked steps): at planted n = 16000 the means crept toward a ``rho`` that had failed
once for 50 multiplier updates, and each softening after an unsolved but improving stiff
subproblem lost that gain (150 s and 73 updates; 63 s and 12 with both rules).  A subproblem
left unsolved at the softest ``rho``
drops the multipliers (once) and restarts the schedule: a working-set round warm-started
with the previous round's multipliers stalled 60 s there (features scaled by 1e3, beta = 0.01,
m1 = 3), and certified in 18 s without them.  A warm start whose ``info`` carries a ``rho``
(the working set passes each round's last one to the next) starts there, within ``rho_min``
and ``rho_max``: restarting every round at the default made each one soften again from it
(the same problem: 13.9 s over four rounds, 7.4 s carrying rho).  Under a finite budget the
loop checks at least every ``CHECK_FRACTION`` of it, and a budget stop returns the best
checked point.  float32 iterates are certified in float64 (:class:`Checker`); newton's linear
algebra is float64 whatever the dtype.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace

import numpy as np
import torch

from ..lifting import Lifting
from ..problem import Problem
from ..registry import register
from ..result import Result
from . import al_newton
from .al_inner import FistaInner, InnerSolver, Subproblem
from .al_newton import NewtonInner, newton_fits
from .al_polish import polish
from .al_rows import solve_al_by_rows
from .al_schedule import MAX_RHO_SOFTENING, RhoSchedule
from .base import check_budget
from . import ipm
from .torch_ops import TorchLifting, TorchSolver, Workspace
from .torch_run import DEFAULT_TOL, Check, Checker, Clock, RunState, to_numpy, warm_arrays
from .working_set import solve_working_set

CHECK_FRACTION = 0.25       # a multiplier update and check at least this often (of
#                             max_seconds); the demo's al+network spent its 15 s in one subproblem
INNER_METHODS = ("auto", "newton", "fista", "ipm")
ROW_SET_MIN_N = 10_000      # samples from which row_set=None takes the row set (planted, P = 50:
#                             n = 8000 34.2 s against 34.0 s; n = 16000 37.7 s against 72.0 s)


@register
class AugmentedLagrangian(TorchSolver):
    """Augmented Lagrangian with Newton or FISTA inner solves, on CPU or CUDA (module docstring).

    Parameters
    ----------
    gap_tol, violation_tol : float or None
        Certified relative gap and relative cone violation to stop at (None: 1e-6 in float64,
        1e-4 in float32).
    max_iters : int
        Total inner steps (FISTA or Newton).
    max_seconds : float
        Wall-clock limit of the algorithm.
    device : "cpu" or "cuda"
    dtype : "float64" or "float32"
    rho_scale : float or None
        Penalty ``rho = rho_scale lmax(A'A) / lmax(B'B)`` (None: the inner solver's default,
        100 for newton in float64, else 10).
    inner_tol : float
        First inner tolerance on ``max_g ||gradient mapping_g|| / beta``; divided by
        ``inner_decay`` at every multiplier update, down to ``gap_tol / 10``.
    rho_growth : float or None
        Factor on ``rho`` when feasibility progresses slowly (1: fixed rho; at most 1000x for
        fista, 1e5x for newton; None: 10 for newton in float64, else 5).
    inner_iters : int
        Cap on FISTA steps between multiplier updates (Newton: at most 50).
    inner : "auto", "newton", "fista" or "ipm"
        The inner solver (module docstring); "auto" takes ipm within ``ipm.ipm_fits``, else
        newton when
        ``al_newton.newton_fits(n, G, d)``.
    polish_at : float
        fista: relative gap and violation below which the Newton polish is tried (al_polish).
    line_search : bool
        fista: backtracking steps (one extra forward product per step) instead of the global
        bound ``1/L``, which assumes every cone row active: its steps were 7x longer, which
        paid off on breast_cancer (P = 40: gap 1e-3 in 6 s, never in 10 s without) and not on
        planted n = 400 (1e-3 in 6.2 s against 4.6 s), so it is off by default.
    threads : int or None
        ``torch.set_num_threads`` during the solve (None: leave torch's setting).  Default 1:
        on the shared 2-core machines 2-thread BLAS was ~50x slower under load (measured with
        ``dualnets solve``: 173 s against ~3 s); raise it on an idle machine for large n.
    trace_every : int
        Also trace every this many iterations (0: only at multiplier updates); these extra
        evaluations are excluded from the clock.
    working_set : bool
        Solve over a working set of patterns grown by pricing (:mod:`.working_set`); the trace
        then has one full-problem certificate per round.  False: one AL over every block.
    row_set : bool or None
        Solve over a working set of cone rows, the loss held as its Gram matrix
        (:mod:`.al_rows`; every pattern).  None (default): when ``inner`` is "auto" or
        "newton", the loss squared, the dtype float64, ``ipm`` does not take the program,
        the Newton system is dense and ``n >= ROW_SET_MIN_N``.
    """

    name = "al"
    model = "relu"
    losses = ("squared", "logistic")

    def __init__(self, gap_tol: float | None = None, violation_tol: float | None = None,
                 max_iters: int = 50_000, max_seconds: float = math.inf, device: str = "cpu",
                 dtype: str = "float64", rho_scale: float | None = None, inner_tol: float = 1e-2,
                 inner_decay: float = 4.0, rho_growth: float | None = None,
                 inner_iters: int = 1000,
                 polish_at: float = 1e-2, line_search: bool = False, inner: str = "auto",
                 threads: int | None = 1, trace_every: int = 0, working_set: bool = True,
                 row_set: bool | None = None, verbose: bool = False):
        self._set_device(device, dtype)
        if inner not in INNER_METHODS:
            raise ValueError(f"inner must be one of {INNER_METHODS}, got {inner!r}")
        self.inner = inner
        for label, value in (("rho_scale", 1.0 if rho_scale is None else rho_scale),
                             ("inner_tol", inner_tol)):
            if not value > 0:
                raise ValueError(f"{label} must be > 0, got {value}")
        if inner_decay <= 1:
            raise ValueError(f"inner_decay must be > 1, got {inner_decay}")
        self.gap_tol = DEFAULT_TOL[dtype] if gap_tol is None else float(gap_tol)
        self.violation_tol = DEFAULT_TOL[dtype] if violation_tol is None else float(violation_tol)
        self.max_iters, self.max_seconds = int(max_iters), check_budget(max_seconds)
        self.rho_scale = rho_scale
        self.inner_tol, self.inner_decay = float(inner_tol), float(inner_decay)
        if rho_growth is not None and rho_growth < 1:
            raise ValueError(f"rho_growth must be >= 1, got {rho_growth}")
        self.rho_growth = rho_growth
        if inner_iters < 1:
            raise ValueError(f"inner_iters must be >= 1, got {inner_iters}")
        self.inner_iters = int(inner_iters)
        self.polish_at, self.line_search = float(polish_at), bool(line_search)
        self.threads, self.trace_every, self.verbose = threads, int(trace_every), verbose
        self.working_set = bool(working_set)
        self.row_set = None if row_set is None else bool(row_set)
        # "auto" may take ipm: False in the working set's rounds and in the fallback after
        # an uncertified ipm solve
        self.auto_ipm = True

    def _solve(self, problem: Problem, warm_start: Result | None) -> Result:
        unfit = self._row_set_unfit(problem)
        if self.row_set and unfit:
            raise ValueError(f"row_set=True needs {unfit}")
        if self.row_set or (self.row_set is None and not unfit and self._takes_row_set(problem)):
            return solve_al_by_rows(self, problem, warm_start)
        if self._takes_ipm(problem):
            return self._solve_by_ipm(problem, warm_start)
        if self.working_set:
            return solve_working_set(self, problem, warm_start)
        start = time.perf_counter()
        lift = Lifting.from_problem(problem)
        ops = TorchLifting(lift, problem.y, self.device, self.dtype, problem.loss)
        ws = ops.workspace()
        Z0, lam_i, lam_o = (np.zeros((lift.n_groups, problem.d)), None, None) \
            if warm_start is None else warm_arrays(problem, lift, warm_start)
        as_t = lambda a, zeros: zeros() if a is None else torch.as_tensor(  # noqa: E731
            a, dtype=ops.dtype, device=ops.device).clone()
        Z = torch.as_tensor(Z0, dtype=ops.dtype, device=ops.device)
        lam_i, lam_o = as_t(lam_i, ops.zeros_inner), as_t(lam_o, ops.zeros_outer)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        ops.al_gradient(Z, lam_i, lam_o, 1.0, ws)      # first call: allocator, BLAS, CUDA init
        Clock(ops.device).sync()
        warmup = time.perf_counter() - start
        state = RunState()
        inner = self._inner_solver(problem, lift, ops, ws)
        warm_rho = None if warm_start is None else warm_start.info.get("rho")
        Z, mu_i, mu_o = self._iterate(problem, inner, ws, Z, lam_i, lam_o, state,
                                      Checker(ops, ws, lift, problem), warm_rho)
        state.info.update(inner.info(), inner=inner.name, patterns=problem.patterns,
                          device=self.device, dtype=self.dtype, threads=torch.get_num_threads())
        return Result(
            self.name, state.status, Z=to_numpy(Z), lam_inner=to_numpy(mu_i),
            lam_outer=to_numpy(mu_o) if problem.depth == 3 else None, setup_seconds=setup,
            solve_seconds=state.info.pop("seconds"), warmup_seconds=warmup,
            iterations=state.iterations, trace=tuple(state.trace), info=state.info,
            message=state.info.get("message", ""))

    def _row_set_unfit(self, problem: Problem) -> str:
        """Why the row set cannot take ``problem`` ("" when it can): it needs the squared loss
        in float64 with a dense Newton system."""
        G = 2 * problem.n_patterns * problem.m1
        if problem.loss == "squared" and self.dtype == "float64" and \
                al_newton.dense_fits(G, problem.d):
            return ""
        return (f"the squared loss, float64 and G d <= {al_newton.MAX_VARIABLES}, got the "
                f"{problem.loss} loss, {self.dtype} and G d = {G * problem.d}")

    def _takes_row_set(self, problem: Problem) -> bool:
        """``row_set=None`` on a program the row set can take: the row set when it is large
        (``n >= ROW_SET_MIN_N``), ``inner`` is "auto" or "newton" and ``ipm`` does not take
        it (module docstring)."""
        return self.inner in ("auto", "newton") and problem.n >= ROW_SET_MIN_N and \
            not self._takes_ipm(problem)

    def _takes_ipm(self, problem: Problem) -> bool:
        """``inner="ipm"``, or ``"auto"`` on a float64 squared-loss program within
        ``ipm.ipm_fits`` (not in the fallback after an uncertified interior-point solve)."""
        lift = Lifting.from_problem(problem)
        if self.inner == "ipm":
            if problem.loss != "squared":
                raise ValueError(f"inner='ipm' solves the squared loss only, got "
                                 f"{problem.loss!r}; use inner='auto'")
            if ipm.newton_route(problem.n, lift.n_groups, problem.d) is None:
                why = ipm.unfit_reason(problem.n, lift.n_groups, problem.d)
                raise ValueError(f"inner='ipm': {why}; use inner='auto'")
            return True
        return self.inner == "auto" and self.auto_ipm and self.dtype == "float64" and \
            problem.loss == "squared" and ipm.ipm_fits(problem.n, lift.n_groups, lift.n_blocks,
                                                   problem.d, problem.depth)

    def _solve_by_ipm(self, problem: Problem, warm_start: Result | None) -> Result:
        """The whole program by the interior-point method (:mod:`.ipm`, cold: it takes no warm
        start); under ``"auto"`` an uncertified end hands the rest of the budget to the AL,
        warm started from the interior point's iterate."""
        interior = ipm.InteriorPoint(gap_tol=self.gap_tol, violation_tol=self.violation_tol,
                            max_iters=min(self.max_iters, ipm.MAX_ITERS),
                            max_seconds=self.max_seconds, device=self.device,
                            threads=None, verbose=self.verbose)
        result = interior.solve(problem)
        info = dict(result.info, inner="ipm", patterns=problem.patterns)
        elapsed = result.setup_seconds + result.solve_seconds
        left = self.max_seconds - elapsed, self.max_iters - result.iterations
        if result.status == "optimal" or self.inner == "ipm" or left[0] <= 0 or left[1] < 1:
            return replace(result, solver=self.name, info=info)
        fallback = copy.copy(self)
        fallback.auto_ipm = False
        fallback.max_seconds, fallback.max_iters = left
        rest = fallback._solve(problem, replace(result, info=info))
        info = dict(rest.info, ipm_status=result.status, ipm_iterations=result.iterations,
                    ipm_seconds=elapsed)
        shifted = tuple((seconds + elapsed, it + result.iterations, *row)
                        for seconds, it, *row in rest.trace)
        return replace(rest, setup_seconds=rest.setup_seconds + result.setup_seconds,
                       solve_seconds=rest.solve_seconds + result.solve_seconds,
                       iterations=rest.iterations + result.iterations,
                       trace=result.trace + shifted, info=info)

    def _inner_solver(self, problem: Problem, lift: Lifting, ops: TorchLifting,
                      ws: Workspace) -> InnerSolver:
        """The inner solver that ``inner`` names ("auto": newton when it fits, else fista)."""
        fits = newton_fits(problem.n, lift.n_groups, problem.d)
        if self.inner == "newton" and not fits:
            raise ValueError(
                f"inner='newton' needs G d <= MAX_VARIABLES = {al_newton.MAX_VARIABLES} (a dense "
                f"Newton system) or n < G d / 2 with n G d <= {al_newton.MAX_LOW_RANK_ENTRIES:g} "
                f"and n^2 G d <= {al_newton.MAX_LOW_RANK_FLOPS:g} (low rank), got n = "
                f"{problem.n}, {lift.n_groups} groups x {problem.d} features; use "
                f"inner='fista' or 'auto'")
        if self.inner == "newton" or (self.inner == "auto" and fits):
            return NewtonInner(ops)
        return FistaInner(ops, ws, self.inner_iters, self.line_search)

    def _iterate(self, problem: Problem, inner: InnerSolver, ws: Workspace, Z: torch.Tensor,
                 lam_i: torch.Tensor, lam_o: torch.Tensor, state: RunState, checker: Checker,
                 warm_rho: float | None = None):
        """The outer loop: inner solve, check, multiplier update, schedule; until certified or
        out of budget.  Returns ``(Z, mu_i, mu_o)``."""
        clock = Clock(ws.U.device)
        rho_scale = inner.rho_defaults[0] if self.rho_scale is None else float(self.rho_scale)
        rho_growth = inner.rho_defaults[1] if self.rho_growth is None else float(self.rho_growth)
        rho = rho_scale * inner.lmax_loss / inner.lmax_cones
        rho_max, rho_min = inner.max_rho_growth * rho, rho / MAX_RHO_SOFTENING
        if warm_rho is not None:
            rho = min(max(warm_rho, rho_min), rho_max)
        schedule = RhoSchedule(rho, rho_min, rho_max, rho_growth)
        inner.set_rho(rho)
        eta, outer, last_violation, best, last_polish = self.inner_tol, 0, math.inf, None, math.inf
        score = math.inf

        def on_step(point: torch.Tensor) -> None:
            state.iterations += 1
            if self.trace_every and state.iterations % self.trace_every == 0:
                self._trace_only(checker, point, lam_i, lam_o, rho, clock, state)

        while True:
            # under a finite budget, check at least every CHECK_FRACTION of it, so that a slow
            # subproblem still leaves a certified point behind
            check_by = min(self.max_seconds, clock.now() + CHECK_FRACTION * self.max_seconds)
            stop = lambda: state.iterations >= self.max_iters or clock.now() >= check_by  # noqa: E731,B023
            sub = Subproblem(lam_i, lam_o, rho, problem.beta, eta, ws)
            Z, solved, steps = inner.solve(Z, sub, stop, on_step)
            budget_left = state.iterations < self.max_iters and clock.now() < self.max_seconds
            if steps == 0 and outer > 0:
                # out of budget right after a multiplier update: lam is the last check's mu
                state.out_of_budget(state.iterations < self.max_iters)
                Z, lam_i, lam_o = self._best_or_last(best, score, Z, lam_i, lam_o, clock, state)
                break
            check = checker(Z, lam_i, lam_o, rho)
            inner.forget()                      # the check used the workspace; lam changes next
            clock.sync()
            state.trace.append(state.row(clock.now(), check))
            outer += 1
            if self.verbose:
                print(f"al-{inner.name} outer {outer} it {state.iterations} obj "
                      f"{check.objective:.12g} gap {check.relative_gap:.2e} viol "
                      f"{check.violation:.2e} eta {eta:.1e} rho {rho:.2e}")
            lam_i.copy_(checker.ws.mu_i)
            lam_o.copy_(checker.ws.mu_o)
            if check.certified(self.gap_tol, self.violation_tol):
                state.status = "optimal"
                break
            last_score, score = score, check.score(self.gap_tol, self.violation_tol)
            if not budget_left:
                state.out_of_budget(state.iterations < self.max_iters)
                Z, lam_i, lam_o = self._best_or_last(best, score, Z, lam_i, lam_o, clock, state)
                break
            if inner.keeps_best and (best is None or score < best[0]):
                best = (score, Z.clone(), lam_i.clone(), lam_o.clone(), check)
            if inner.polishes and self._polish_due(check, last_polish):
                last_polish = abs(check.relative_gap)
                state.info["polish_attempts"] = state.info.get("polish_attempts", 0) + 1
                polished = self._polish(checker, Z, lam_i, lam_o,
                                        clock.deadline(self.max_seconds))
                if polished is not None:
                    clock.sync()
                    state.trace.append(state.row(clock.now(), polished[3]))
                    state.status, state.info["polished"] = "optimal", True
                    Z, lam_i, lam_o = polished[:3]
                    break
            eta = max(eta / self.inner_decay, 0.1 * self.gap_tol)
            move = schedule.after(
                solved=solved, exhausted=steps >= inner.step_cap, softens=inner.softens,
                # infeasibility still limits the certificate (a negative gap comes from it)
                infeasible=check.violation > self.violation_tol or
                check.relative_gap < -self.gap_tol,
                violation=check.violation, last_violation=last_violation, score=score,
                last_score=last_score)
            if move == "restart":
                # unsolved even at the softest rho: the multipliers (a warm start's) are the
                # trouble; drop them once and start the schedule again from this point
                lam_i.zero_()
                lam_o.zero_()
            if move != "keep":
                rho = schedule.rho
                inner.set_rho(rho)
            last_violation = check.violation
        state.info.update(seconds=clock.now(), outer_iterations=outer, rho=rho)
        return Z, lam_i.clone(), lam_o.clone()

    @staticmethod
    def _best_or_last(best, score: float, Z, lam_i, lam_o, clock: Clock, state: RunState):
        """On a budget stop: the best checked point so far if it beats the last one (score:
        ``max(|gap| / gap_tol, violation / violation_tol)``), whose certificate then becomes
        the last trace row; otherwise the last point."""
        if best is None or best[0] >= score:
            return Z, lam_i, lam_o
        _, Z, lam_i, lam_o, check = best
        state.trace[-1] = state.row(clock.now(), check)
        return Z, lam_i, lam_o

    def _polish_due(self, check: Check, last: float) -> bool:
        """Polish when the AL is within ``polish_at`` and 3x better than at the last try."""
        gap = abs(check.relative_gap)
        return gap <= self.polish_at and check.violation <= self.polish_at and gap <= last / 3

    def _polish(self, checker: Checker, Z: torch.Tensor, lam_i: torch.Tensor,
                lam_o: torch.Tensor, deadline: float):
        """(Z, lam_i, lam_o, check) of the polished point (al_polish) if it certifies.

        ``lam_i``, ``lam_o`` are the AL multipliers ``(lam - rho B z)_+`` at ``Z``; the polish
        gives up at ``deadline`` (a ``time.perf_counter`` value).
        """
        ops, ws = checker.ops, checker.ws
        depth3 = ops.depth == 3
        out = polish(checker.lift, checker.y, checker.beta, to_numpy(Z), to_numpy(lam_i),
                     to_numpy(lam_o) if depth3 else None, deadline, checker.loss)
        if out is None:
            return None
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=ops.device)  # noqa: E731
        Zp, lam_i = as_t(out[0]), as_t(out[1])
        lam_o = as_t(out[2]) if depth3 else ops.zeros_outer()
        check = checker(Zp, lam_i, lam_o, 0.0)          # rho = 0: mu = lam exactly
        if self.verbose:
            print(f"al polish obj {check.objective:.12g} gap {check.relative_gap:.2e} "
                  f"viol {check.violation:.2e}")
        if not check.certified(self.gap_tol, self.violation_tol):
            return None
        return Zp, ws.mu_i.clone(), ws.mu_o.clone(), check

    def _trace_only(self, checker, Z, lam_i, lam_o, rho, clock, state) -> None:
        """A trace row at ``Z`` whose cost is excluded from the clock."""
        clock.sync()
        begin = time.perf_counter()
        check = checker(Z, lam_i, lam_o, rho)
        clock.sync()
        clock.excluded += time.perf_counter() - begin
        state.trace.append(state.row(clock.now(), check))

