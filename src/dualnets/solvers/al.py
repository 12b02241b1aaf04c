"""Augmented Lagrangian solver of the ReLU program, in PyTorch (registered as "al").

The method of Mishkin, Sahiner & Pilanci (ICML 2022, "Fast convex optimization for two-layer
ReLU networks"), extended to the outer cones of the three-layer program.  For
``min 1/2||A z - y||^2 + beta sum_g ||z_g||  s.t.  B z >= 0`` (DESIGN.md section 4)::

    L_rho(z, lam) = 1/2||A z - y||^2 + beta sum_g ||z_g|| + 1/(2 rho) ||(lam - rho B z)_+||^2
    z_k+1   ~ argmin_z L_rho(z, lam_k)             (inner solver, below)
    lam_k+1 = (lam_k - rho B z_k+1)_+              (inner (G, n) and outer (B, n) cones)

At an exact inner minimizer ``A'(Az - y) - B' lam_k+1`` lies in ``-beta d||z||``, so
``(v = Az - y, lam_k+1)`` is dual feasible and the certificate of
:func:`dualnets.certificate.certify` measures only complementarity and infeasibility.  The
solver stops when that certificate (computed on the device) has ``|relative gap| <= gap_tol``
and violation ``<= violation_tol``; :mod:`dualnets.metrics` recomputes it in numpy from the
returned arrays.

Inner solvers (``inner``):

- ``"newton"`` (:mod:`.al_newton`): semismooth Newton steps on the nonzero groups, with the
  Gram matrix ``A'A`` formed once and the cone Hessian ``rho B_S'B_S`` block diagonal; a dense
  ``G d x G d`` Cholesky per step, or an ``n x n`` one by Woodbury when ``n < G d / 2``
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
- ``"auto"`` (default): newton when it fits (``al_newton.newton_fits``: a dense system, or a
  low-rank one when ``n < G d / 2``), else fista.

Schedule: after each inner solve the multipliers are updated and ``eta`` divided by
``inner_decay``.  ``rho`` starts at ``rho_scale * lmax(A'A) / lmax(B'B)`` (``lmax(B'B) <=
(1 + m1) lmax(X'X)``, ``lmax(X'X)`` at depth 2) and grows by ``rho_growth`` when a solved
subproblem cut the violation by less than 4x (and, for newton, infeasibility still limits the
certificate).  float32 iterates are certified in float64 (:class:`Checker`); newton's linear
algebra is float64 whatever the dtype.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..lifting import Lifting
from ..problem import Patterns, Problem
from ..registry import register
from ..result import Result
from . import al_newton
from .al_newton import NewtonInner, newton_fits
from .al_polish import polish
from .torch_ops import Fista, TorchLifting, TorchSolver, Workspace, dual_scale

DEFAULT_TOL = {"float64": 1e-6, "float32": 1e-4}
LIPSCHITZ_SAFETY = 1.05
LINE_SEARCH_SHRINK = 0.9    # each step first tries 0.9 L, then doubles L until it fits
MIN_STEP_FRACTION = 1e-4    # L never below this fraction of the global bound
MAX_RHO_GROWTH = 1e3
NEWTON_MAX_RHO_GROWTH = 1e5  # n = 16000 capped at 1e3: 50 updates from gap 1.5e-5 to 1e-6
NEWTON_STEPS = 50           # cap on Newton steps per subproblem (inner="newton")
CHECK_FRACTION = 0.25       # newton: a multiplier update and check at least this often (of
#                             max_seconds); the demo's al+network spent its 15 s in one subproblem
INNER_METHODS = ("auto", "newton", "fista")
# (rho_scale, rho_growth) per inner solver.  Newton: 100 and 10 took 172-186 steps to 1e-6 at
# planted n = 1600 against 215 with fista's 10 and 5 (1.4x fewer steps with growth 10)
# float32 newton keeps fista's 10 and 5: with 100 and 10 one of 16 float32 test problems
# stalled at gap 2e-4 (rounding noise grows with rho), with 10 and 10 another one did; with
# 10 and 5 all 16 certified at 1e-4
RHO_DEFAULTS = {"newton": (100.0, 10.0), "newton-float32": (10.0, 5.0), "fista": (10.0, 5.0)}


# warm starts ---------------------------------------------------------------------------------
def _pattern_keys(p: Patterns) -> list[bytes]:
    P = p.n_patterns
    bits = np.concatenate([p.inner.reshape(P, -1), p.inner_sign.reshape(P, -1) > 0, p.outer], 1)
    return [row.tobytes() for row in np.packbits(bits, axis=1)]


def _group_rows(P: int, m1: int, c: np.ndarray) -> np.ndarray:
    """Group indices of patterns ``c`` for both output signs, in a fixed order."""
    blocks = np.concatenate([c, c + P])
    return (blocks[:, None] * m1 + np.arange(m1)[None, :]).ravel()


def warm_arrays(problem: Problem, lift: Lifting, warm: Result):
    """``Z`` (G, d), ``lam_inner`` (G, n), ``lam_outer`` (B, n) of a previous result, mapped
    into this problem's layout by pattern identity (unmatched groups start at zero).

    ``warm.info["patterns"]`` names the patterns it was solved over; without it the layout
    must already match.  Multipliers may be None.
    """
    G, B, n, d = lift.n_groups, lift.n_blocks, problem.n, problem.d
    if warm.Z is None or warm.Z.shape[1] != d:
        raise ValueError(f"warm start needs Z with {d} columns, got "
                         f"{None if warm.Z is None else warm.Z.shape}")
    old = warm.info.get("patterns")
    if old is None:
        if warm.Z.shape != (G, d):
            raise ValueError(f"warm start without info['patterns'] needs Z of shape {(G, d)}, "
                             f"got {warm.Z.shape}")
        return warm.Z, warm.lam_inner, warm.lam_outer
    if old.n_samples != n:
        raise ValueError(f"warm start was solved on n = {old.n_samples} samples, got n = {n}")
    new = problem.require_patterns()
    index = {k: c for c, k in enumerate(_pattern_keys(old))}
    pairs = [(c, index[k]) for c, k in enumerate(_pattern_keys(new)) if k in index]
    c_new, c_old = (np.array(v, dtype=np.int64) for v in zip(*pairs)) if pairs else (
        np.zeros(0, np.int64), np.zeros(0, np.int64))
    g_new, g_old = _group_rows(new.n_patterns, lift.m1, c_new), _group_rows(
        old.n_patterns, lift.m1, c_old)
    Z = np.zeros((G, d))
    Z[g_new] = warm.Z[g_old]
    lam_i = lam_o = None
    if warm.lam_inner is not None:
        lam_i = np.zeros((G, n))
        lam_i[g_new] = warm.lam_inner[g_old]
    if warm.lam_outer is not None and lift.depth == 3:
        b_new, b_old = np.concatenate([c_new, c_new + new.n_patterns]), np.concatenate(
            [c_old, c_old + old.n_patterns])
        lam_o = np.zeros((B, n))
        lam_o[b_new] = warm.lam_outer[b_old]
    return Z, lam_i, lam_o


# clock and certificate -----------------------------------------------------------------------
class Clock:
    """Wall time of the algorithm, with trace-only evaluations excluded (device synced)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.start = time.perf_counter()
        self.excluded = 0.0

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def now(self) -> float:
        return time.perf_counter() - self.start - self.excluded


@dataclass
class Check:
    """The certificate of :func:`certify` at one point, computed on the device."""

    objective: float
    relative_gap: float
    violation: float

    def certified(self, gap_tol: float, violation_tol: float) -> bool:
        """Gap and violation within tolerance.  Stricter than :func:`certify`: a negative gap
        (possible only at an infeasible point, whose objective can sit below the optimum) must
        also be within ``gap_tol``."""
        return abs(self.relative_gap) <= gap_tol and self.violation <= violation_tol


def device_certificate(ops: TorchLifting, ws: Workspace, Z: torch.Tensor, beta: float,
                       y_scale: float) -> Check:
    """Certificate at ``Z`` with the multipliers in ``ws`` (call right after the gradient at Z).

    ``ws.grad`` rows are ``(A'v - B'mu)_g`` with ``v = r``: the dual constraint of DESIGN.md 4.
    """
    vv, vy = float(torch.vdot(ws.r, ws.r)), float(torch.vdot(ws.r, ops.y))
    penalty = float(torch.linalg.vector_norm(Z, dim=1).sum())
    worst = float(torch.linalg.vector_norm(ws.grad, dim=1).max())
    primal = 0.5 * vv + beta * penalty
    t = dual_scale(vv, vy, worst, beta)
    dual = -t * vy - 0.5 * t * t * vv
    viol = ops.violation(ws) / y_scale
    return Check(primal, (primal - dual) / max(abs(primal), 1e-300), viol)


class Checker:
    """Certificate of an iterate with ``mu = (lam - rho B z)_+``, always in float64.

    float32 iterations are checked by a float64 copy of the operators: in float32 the rows of
    ``A'v - B'mu`` lose ~1e-3 relative accuracy to cancellation, which hid converged iterates.
    """

    def __init__(self, ops: TorchLifting, ws: Workspace, lift: Lifting, problem: Problem):
        if ops.dtype == torch.float64:
            self.ops, self.ws = ops, ws
        else:
            self.ops = TorchLifting(lift, problem.y, str(ops.device), "float64")
            self.ws = self.ops.workspace()
        self.beta, self.lift, self.y = problem.beta, lift, problem.y
        self.y_scale = max(float(np.abs(problem.y).max()), 1e-300)

    def __call__(self, Z: torch.Tensor, lam_i: torch.Tensor, lam_o: torch.Tensor,
                 rho: float) -> Check:
        as64 = lambda t: t.to(torch.float64)  # noqa: E731  (no copy when already float64)
        Z = as64(Z)
        self.ops.al_gradient(Z, as64(lam_i), as64(lam_o), rho, self.ws)
        return device_certificate(self.ops, self.ws, Z, self.beta, self.y_scale)


@dataclass
class RunState:
    """What the iterations leave behind for the Result."""

    iterations: int = 0
    status: str = "max_iterations"
    trace: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def row(self, seconds: float, check: Check) -> tuple:
        """A trace row: (seconds, iteration, objective, relative gap, violation)."""
        return (seconds, self.iterations, check.objective, check.relative_gap, check.violation)

    def out_of_budget(self, iterations_left: bool) -> None:
        """The status of a stop on the iteration or the time budget."""
        self.status = "time_limit" if iterations_left else "max_iterations"


def _to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None or t.numel() == 0 else t.detach().to("cpu", torch.float64).numpy()


# the solver ----------------------------------------------------------------------------------
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
        Penalty ``rho = rho_scale lmax(A'A) / lmax(B'B)`` (None: 100 for newton in float64,
        else 10).
    inner_tol : float
        First inner tolerance on ``max_g ||gradient mapping_g|| / beta``; divided by
        ``inner_decay`` at every multiplier update, down to ``gap_tol / 10``.
    rho_growth : float or None
        Factor on ``rho`` when feasibility progresses slowly (1: fixed rho; at most 1000x for
        fista, 1e5x for newton; None: 10 for newton in float64, else 5).
    inner_iters : int
        Cap on FISTA steps between multiplier updates (Newton: at most 50).
    inner : "auto", "newton" or "fista"
        The inner solver (module docstring); "auto" takes newton when
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
    """

    name = "al"
    model = "relu"

    def __init__(self, gap_tol: float | None = None, violation_tol: float | None = None,
                 max_iters: int = 50_000, max_seconds: float = math.inf, device: str = "cpu",
                 dtype: str = "float64", rho_scale: float | None = None, inner_tol: float = 1e-2,
                 inner_decay: float = 4.0, rho_growth: float | None = None,
                 inner_iters: int = 1000,
                 polish_at: float = 1e-2, line_search: bool = False, inner: str = "auto",
                 threads: int | None = 1, trace_every: int = 0, verbose: bool = False):
        self._set_device(device, dtype)
        if inner not in INNER_METHODS:
            raise ValueError(f"inner must be one of {INNER_METHODS}, got {inner!r}")
        self.inner = inner
        for label, value in (("rho_scale", 1.0 if rho_scale is None else rho_scale),
                             ("inner_tol", inner_tol), ("max_seconds", max_seconds)):
            if not value > 0:
                raise ValueError(f"{label} must be > 0, got {value}")
        if inner_decay <= 1:
            raise ValueError(f"inner_decay must be > 1, got {inner_decay}")
        self.gap_tol = DEFAULT_TOL[dtype] if gap_tol is None else float(gap_tol)
        self.violation_tol = DEFAULT_TOL[dtype] if violation_tol is None else float(violation_tol)
        self.max_iters, self.max_seconds = int(max_iters), float(max_seconds)
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

    def _solve(self, problem: Problem, warm_start: Result | None) -> Result:
        start = time.perf_counter()
        lift = Lifting.from_problem(problem)
        ops = TorchLifting(lift, problem.y, self.device, self.dtype)
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
        checker = Checker(ops, ws, lift, problem)
        fits = newton_fits(problem.n, lift.n_groups, problem.d)
        if self.inner == "newton" and not fits:
            raise ValueError(
                f"inner='newton' needs G d <= MAX_VARIABLES = {al_newton.MAX_VARIABLES} (a dense "
                f"Newton system) or n < G d / 2 with n G d <= {al_newton.MAX_LOW_RANK_ENTRIES:g} "
                f"and n^2 G d <= {al_newton.MAX_LOW_RANK_FLOPS:g} (low rank), got n = "
                f"{problem.n}, {lift.n_groups} groups x {problem.d} features; use "
                f"inner='fista' or 'auto'")
        newton = self.inner == "newton" or (self.inner == "auto" and fits)
        iterate = self._iterate_newton if newton else self._iterate
        Z, mu_i, mu_o = iterate(problem, ops, ws, Z, lam_i, lam_o, state, checker)
        state.info["inner"] = "newton" if newton else "fista"
        state.info.update(patterns=problem.patterns, device=self.device, dtype=self.dtype,
                          threads=torch.get_num_threads())
        return Result(
            self.name, state.status, Z=_to_numpy(Z), lam_inner=_to_numpy(mu_i),
            lam_outer=_to_numpy(mu_o) if problem.depth == 3 else None, setup_seconds=setup,
            solve_seconds=state.info.pop("seconds"), warmup_seconds=warmup,
            iterations=state.iterations, trace=tuple(state.trace), info=state.info,
            message=state.info.get("message", ""))

    def _iterate(self, problem: Problem, ops: TorchLifting, ws: Workspace, Z: torch.Tensor,
                 lam_i: torch.Tensor, lam_o: torch.Tensor, state: RunState, checker: Checker):
        beta, clock = problem.beta, Clock(ops.device)
        lam_a = ops.lipschitz(0.0, ws)
        xtx = float(torch.linalg.eigvalsh(ops.Xt @ ops.X)[-1])
        lam_b = xtx * (1 + ops.m1 if ops.depth == 3 else 1)
        rho_scale, rho_growth = self._rho_schedule("fista")
        rho = rho_scale * lam_a / lam_b
        L = L_cap = LIPSCHITZ_SAFETY * ops.lipschitz(rho, ws)
        L_min = L_cap * MIN_STEP_FRACTION
        fista, eta, outer, last_violation = Fista(Z), self.inner_tol, 0, math.inf
        inner, solved, rho_max = 0, False, MAX_RHO_GROWTH * rho
        last_polish = math.inf
        while True:
            it_budget_left = state.iterations < self.max_iters
            time_left = clock.now() < self.max_seconds
            if not (it_budget_left and time_left) and inner == 0 and outer > 0:
                # out of budget right after a multiplier update: lam is the last check's mu
                # at this x (checking again would apply the update twice)
                state.out_of_budget(it_budget_left)
                state.info.update(seconds=clock.now(), outer_iterations=outer, rho=rho,
                                  lipschitz=L)
                return fista.x, lam_i.clone(), lam_o.clone()
            if it_budget_left and time_left:
                grad = ops.al_gradient(fista.y, lam_i, lam_o, rho, ws)
                if self.line_search:
                    kkt, L = fista.step_backtracking(
                        grad, ops.al_value_after_gradient(rho, ws),
                        max(LINE_SEARCH_SHRINK * L, L_min), L_cap, beta,
                        lambda Z: ops.al_value(Z, lam_i, lam_o, rho, ws))
                else:
                    kkt = fista.step(grad, L_cap, beta)
                state.iterations += 1
                if self.trace_every and state.iterations % self.trace_every == 0:
                    self._trace_only(checker, fista.x, lam_i, lam_o, rho, clock, state)
                inner += 1
                if kkt > eta and inner < self.inner_iters:
                    continue
                solved = kkt <= eta
            # inner solve done (or out of budget): certify at x with mu = (lam - rho Bx)_+
            check = checker(fista.x, lam_i, lam_o, rho)
            clock.sync()
            state.trace.append(state.row(clock.now(), check))
            outer += 1
            if self.verbose:
                print(f"al outer {outer} it {state.iterations} obj {check.objective:.10g} "
                      f"gap {check.relative_gap:.2e} viol {check.violation:.2e} eta {eta:.1e}")
            if check.certified(self.gap_tol, self.violation_tol):
                state.status = "optimal"
            elif not (it_budget_left and time_left):
                state.out_of_budget(it_budget_left)
            else:
                lam_i.copy_(checker.ws.mu_i)
                lam_o.copy_(checker.ws.mu_o)
                if self._polish_due(check, last_polish):
                    last_polish = abs(check.relative_gap)
                    state.info["polish_attempts"] = state.info.get("polish_attempts", 0) + 1
                    polished = self._polish(checker, fista.x, lam_i, lam_o,
                                            clock.start + clock.excluded + self.max_seconds)
                    if polished is not None:
                        clock.sync()
                        pc = polished[3]
                        state.trace.append(state.row(clock.now(), pc))
                        state.status = "optimal"
                        state.info.update(seconds=clock.now(), outer_iterations=outer,
                                          polished=True, rho=rho, lipschitz=L)
                        return polished[:3]
                fista.reset()
                inner = 0
                eta = max(eta / self.inner_decay, 0.1 * self.gap_tol)
                if (solved and check.violation > max(0.25 * last_violation, self.violation_tol)
                        and rho < rho_max):
                    rho *= rho_growth                # slow feasibility progress: stiffen
                    L_cap = LIPSCHITZ_SAFETY * ops.lipschitz(rho, ws)
                    L = min(L * rho_growth, L_cap)
                last_violation = check.violation
                continue
            state.info.update(seconds=clock.now(), outer_iterations=outer, rho=rho,
                              lipschitz=L)
            return fista.x, checker.ws.mu_i.clone(), checker.ws.mu_o.clone()

    def _rho_schedule(self, inner: str) -> tuple[float, float]:
        """``(rho_scale, rho_growth)``: the user's, or the inner solver's defaults."""
        scale, growth = RHO_DEFAULTS[inner]
        return (scale if self.rho_scale is None else float(self.rho_scale),
                growth if self.rho_growth is None else float(self.rho_growth))

    def _iterate_newton(self, problem: Problem, ops: TorchLifting, ws: Workspace,
                        Z: torch.Tensor, lam_i: torch.Tensor, lam_o: torch.Tensor,
                        state: RunState, checker: Checker):
        """The outer loop with semismooth Newton inner solves (:mod:`.al_newton`)."""
        beta, clock = problem.beta, Clock(ops.device)
        newton = NewtonInner(ops)
        rho_scale, rho_growth = self._rho_schedule(
            "newton-float32" if ops.dtype == torch.float32 else "newton")
        rho = rho_scale * newton.lmax_loss / newton.lmax_cones
        rho_max = NEWTON_MAX_RHO_GROWTH * rho
        eta, outer, last_violation, best, score = self.inner_tol, 0, math.inf, None, math.inf
        while True:
            solved, steps = False, 0
            # under a finite budget, check at least every CHECK_FRACTION of it, so that a slow
            # subproblem still leaves a certified point behind
            check_by = clock.now() + CHECK_FRACTION * self.max_seconds
            while (not solved and steps < NEWTON_STEPS and state.iterations < self.max_iters
                   and clock.now() < min(self.max_seconds, check_by)):
                Z, residual, solved = newton.step(Z, lam_i, lam_o, rho, beta, eta, ws)
                state.iterations += 1
                steps += 1
            it_budget_left = state.iterations < self.max_iters
            time_left = clock.now() < self.max_seconds
            if steps == 0 and outer > 0:
                # out of budget right after a multiplier update: lam is the last check's mu
                state.out_of_budget(it_budget_left)
                Z, lam_i, lam_o = self._best_or_last(best, score, Z, lam_i, lam_o, clock, state)
                break
            check = checker(Z, lam_i, lam_o, rho)
            newton.forget()                     # the check used the workspace; lam changes next
            clock.sync()
            state.trace.append(state.row(clock.now(), check))
            outer += 1
            if self.verbose:
                print(f"al-newton outer {outer} it {state.iterations} obj {check.objective:.12g} "
                      f"gap {check.relative_gap:.2e} viol {check.violation:.2e} "
                      f"eta {eta:.1e} rho {rho:.2e}")
            lam_i.copy_(checker.ws.mu_i)
            lam_o.copy_(checker.ws.mu_o)
            if check.certified(self.gap_tol, self.violation_tol):
                state.status = "optimal"
                break
            score = max(abs(check.relative_gap) / self.gap_tol,
                        check.violation / self.violation_tol)
            if not (it_budget_left and time_left):
                state.out_of_budget(it_budget_left)
                Z, lam_i, lam_o = self._best_or_last(best, score, Z, lam_i, lam_o, clock, state)
                break
            if best is None or score < best[0]:
                best = (score, Z.clone(), lam_i.clone(), lam_o.clone(), check)
            eta = max(eta / self.inner_decay, 0.1 * self.gap_tol)
            # infeasibility still limits the certificate (a negative gap comes from it alone)
            infeasible = check.violation > self.violation_tol or \
                check.relative_gap < -self.gap_tol
            if (solved and infeasible and check.violation > 0.25 * last_violation
                    and rho < rho_max):
                rho *= rho_growth
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
        out = polish(checker.lift, checker.y, checker.beta, _to_numpy(Z), _to_numpy(lam_i),
                     _to_numpy(lam_o) if depth3 else None, deadline)
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
