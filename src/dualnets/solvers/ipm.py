"""A primal-dual interior-point method that exploits the program's structure (registered "ipm").

The ReLU program (squared loss) as a conic QP over ``x = (z, t)``::

    min 1/2 ||A z - y||^2 + beta sum_g t_g   s.t.  s_l = B z >= 0,  s_g = (t_g, z_g) in SOC

solved by Mehrotra's predictor-corrector with Nesterov-Todd scaling, as CVXOPT's ``coneqp``
(Vandenberghe 2010, "The CVXOPT linear and quadratic cone program solvers"), from CVXOPT's
default (infeasible) start, :meth:`NewtonSystem.initial_point`.  Its dual variables are the
cone multipliers ``lambda_l >= 0`` of ``B z >= 0`` and ``lambda_g = (beta, A'r - B'lambda_l)_g``, so every
iterate is certified by :func:`dualnets.certificate.certify` (``v = A z - y``): the solver
stops on that certificate, never on its own residuals.

What makes an iteration cheap is the Newton matrix.  With ``Theta = (W'W)^{-1}`` (``lambda / s``
on ``B z >= 0``, ``W_g^{-2}`` on the second-order cones) and ``t`` eliminated group by group::

    H = A'A + B' Theta B + blockdiag_g (Theta_zz - Theta_zt Theta_tz / Theta_tt)_g

``A'A`` is the fixed Gram matrix (``A = [A_+, -A_+]``), and everything else is block
diagonal per network block (``d x d`` per group for the inner cones, ``m1 d`` square for the
outer ones), formed by one GEMM of the ``n x d(d+1)/2`` products ``x_i x_i'`` with the weights
``Theta``.  :func:`newton_route` picks the solve: folded onto the patterns (:mod:`.al_fold`:
``K = A_+'A_+``, ``G d / 2`` unknowns, one dense Cholesky per iteration), or Woodbury where
that takes fewer flops or the fold does not fit: one ``n x n`` Cholesky of ``I + F F'``,
``F`` the columns of ``A_+`` scaled by the two sign blocks' ``D^{-1}``, which preconditions
conjugate gradients on ``H`` (late iterations leave ``D`` numerically singular).  One
factorization serves the predictor, the corrector and up to ``CORRECTORS`` Gondzio
centrality correctors (Gondzio 1996), which push the orthant products of a longer trial
step into a band around ``sigma mu``.  Where the dual residual stops falling as the step
predicts (late, at large n), the chosen direction is refined against the dual equations
computed with the unformed ``A'A``, ``B`` and ``B'``: the formed ``B' Theta B`` carries the
round-off of weights ``lambda / s`` up to 1e12.  Clarabel factors the sparse KKT system of
the same program, with its ``n (G + B)`` cone rows, at every iteration.

Measured (one thread): planted n = 1200, d = 10, P = 50 in 55 iterations and 5.1 s, Clarabel
161 s; the iterations grow with n (47 at n = 400, 74 at n = 4000, and n = 16000 was at gap 2e-2
after 100), so ``al`` takes this solver only up to ``MAX_CONE_ROWS``.  ``row_set=True`` solves
over a working set of cone rows instead (:mod:`.ipm_rows`, cutting planes; opt-in: at large n
it does not yet beat the AL).
"""

from __future__ import annotations

import math
import time

import torch

from ..certificate import violation_scale
from ..lifting import Lifting
from ..problem import Problem
from ..registry import register
from ..result import Result
from .al_fold import Folding, cholesky_apply
from .al_newton import RIDGE, NewtonInner, lifted_columns_t, \
    lifted_weights, ridged_cholesky, unpack_symmetric, upper_products
from .base import check_budget
from .torch_ops import TorchLifting, TorchSolver, Workspace
from .torch_run import DEFAULT_TOL, Check, Clock, RunState, device_certificate, to_numpy

STEP_FRACTION = 0.99   # of the longest step that stays inside the cones
MAX_UNKNOWNS = 6000    # G d / 2, the folded system: K holds 288 MB, and at 5000 (d = 50,
#                        P = 50, n = 1600) a folded iteration took about 2 s, Woodbury's 0.7
MAX_WOODBURY_ENTRIES = 5e7   # n G d / 2: A_+' and its scaled copy F' (400 MB each)
MAX_CONE_ROWS = 2_000_000   # n (G + B) up to which al's "auto" takes this solver: planted
#                        n = 4000, d = 10, P = 50 (1.2e6 rows) took 15.4 s against the AL's
#                        19.5 s; n = 16000 (4.8e6) ended 100 iterations at gap 2e-2, where the
#                        AL certified in 191 s
MAX_ITERS = 200
CG_STEPS = 20                 # conjugate-gradient steps on H, preconditioned by Woodbury
#                               (late iterations at d = 50 took 7, clamped ones up to 20)
CG_RESIDUAL = 1e-11           # relative residual at which they stop (round-off: ~2e-12)
LOW_RANK_RESIDUAL = 1e-9      # above it the Woodbury solve is refused (the fold solves)
CLAMP = 1e-6                  # floor of D's eigenvalues in the clamped Woodbury solve, times
#                               max diag(A'A): d = 50 without the fold certified at 1e-5 and
#                               1e-6, and ended singular at gap 1.9e-6 at 1e-8
GRAM_PIECES = 4               # row blocks of F in the product F F' (lower blocks only)
GRAM_ROWS = 200               # ... each at least this many rows
LIVE_RATIO = 1.0              # F F' pattern by pattern over its live samples where that takes
#                               under this fraction of lower_gram's flops (n^2 k / 2)
CORRECTORS = 2         # Gondzio centrality correctors per iteration, at most
CORRECTOR_REACH = 1.5  # ... each aims at this multiple of the current longest step
CORRECTOR_GAIN = 1.05  # ... and is kept if it lengthens the step by this factor
BAND = (0.1, 10.0)     # ... the band of products around the target sigma mu
REFINE_STALL = 2.0     # an iteration's direction is refined when the dual residual is above
#                        this multiple of (1 - alpha) times the last one (its linear decrease)
REFINE_ABOVE = 1e-8    # ... and above this multiple of beta (below it the certificate's
#                        gap is not at stake; the varied set's refinements there cost 40%)
REFINEMENTS = 2        # ... by up to this many steps, each a solve with the same factors
REFINE_GAIN = 0.5      # ... each kept only if it cuts the residual by this factor
REFINE_FRACTION = 0.1  # ... down to this fraction of the iteration's dual residual
REFINED_DUAL = 1e-10   # ... or this multiple of beta


class SecondOrderScaling:
    """Nesterov-Todd scaling ``W_g = eta_g (2 w_g w_g' - J)`` (``w_g' J w_g = 1``) of ``G``
    second-order cones at ``(s, lam)``, each given as a scalar part ``(G,)`` and a vector part
    ``(G, d)``: ``W^{-1} s = W lam`` is the scaled point ``lam~``."""

    def __init__(self, s0, s1, l0, l1):
        s_norm = (s0 * s0 - (s1 * s1).sum(1)).clamp_min(0).sqrt()
        l_norm = (l0 * l0 - (l1 * l1).sum(1)).clamp_min(0).sqrt()
        sb0, sb1 = s0 / s_norm, s1 / s_norm[:, None]
        lb0, lb1 = l0 / l_norm, l1 / l_norm[:, None]
        gamma = ((1 + sb0 * lb0 + (sb1 * lb1).sum(1)) / 2).sqrt()
        w0, w1 = (sb0 + lb0) / (2 * gamma), (sb1 - lb1) / (2 * gamma)[:, None]
        # the scaling point w_bar = (s_bar + J lam_bar) / (2 gamma) of CVXOPT's notes, as
        # the hyperbolic Householder vector v = (w_bar + e) / sqrt(2 (w_bar_0 + 1))
        self.w0 = ((w0 + 1) / 2).sqrt()
        self.w1 = w1 / (2 * (w0 + 1)).sqrt()[:, None]
        self.eta = (s_norm / l_norm).sqrt()

    def apply(self, u0, u1):
        """``W u``."""
        wu = self.w0 * u0 + (self.w1 * u1).sum(1)
        return (self.eta * (2 * self.w0 * wu - u0),
                self.eta[:, None] * (2 * self.w1 * wu[:, None] + u1))

    def apply_inverse(self, u0, u1):
        """``W^{-1} u = (2 v v' - J) u / eta`` with ``v = J w``."""
        vu = self.w0 * u0 - (self.w1 * u1).sum(1)
        return ((2 * self.w0 * vu - u0) / self.eta,
                (-2 * self.w1 * vu[:, None] + u1) / self.eta[:, None])

    def theta(self, u0, u1):
        """``Theta u = W^{-2} u``."""
        return self.apply_inverse(*self.apply_inverse(u0, u1))

    def theta_blocks(self):
        """``W^{-2}`` with ``t`` eliminated: ``(tt (G,), tz (G, d), S (G, d, d))``, the ``(t, t)``
        and ``(z, t)`` entries and the Schur complement ``S = zz - tz tz' / tt``.  With
        ``v = J w``, ``W^{-2} = (I - 2 (v w' + w v') + 4 |w|^2 v v') / eta^2``; ``S`` is the
        inverse of the ``(z, z)`` block of ``W^2``, ``eta^2 (I + c w_1 w_1')`` with
        ``c = 4 (1 + |w|^2)``, so ``S = ((I - u u') + u u' / (1 + c |w_1|^2)) / eta^2``
        (``u = w_1 / |w_1|``).  Formed as ``zz - tz tz' / tt`` it loses the radial eigenvalue
        ``1 / (1 + c |w_1|^2)`` to cancellation: its absolute error is ``eps c |w_1|^2`` (late
        iterations, groups on their cone's boundary), and ``S`` can turn indefinite."""
        w0, w1, e2 = self.w0, self.w1, self.eta ** 2
        r2 = (w1 * w1).sum(1)
        ww = w0 * w0 + r2
        tt = (1 - 4 * w0 * w0 + 4 * ww * w0 * w0) / e2
        tz = (-4 * ww * w0 / e2)[:, None] * w1
        u = w1 / r2.sqrt().clamp_min(torch.finfo(w1.dtype).tiny)[:, None]
        cr2 = 4 * (1 + ww) * r2                                        # c |w_1|^2
        shrink = cr2 / (1 + cr2) / e2                                  # 1 - radial, / eta^2
        eye = torch.eye(w1.shape[1], dtype=w1.dtype, device=w1.device)
        schur = eye / e2[:, None, None] - shrink[:, None, None] * (u[:, :, None] * u[:, None, :])
        return tt, tz, schur


def soc_product(u0, u1, v0, v1):
    """The Jordan product ``u o v = (u'v, u0 v1 + v0 u1)`` of the second-order cone."""
    return u0 * v0 + (u1 * v1).sum(1), u0[:, None] * v1 + v0[:, None] * u1


def soc_divide(l0, l1, d0, d1):
    """``u`` with ``l o u = d``."""
    u0 = (l0 * d0 - (l1 * d1).sum(1)) / (l0 * l0 - (l1 * l1).sum(1))
    return u0, (d1 - u0[:, None] * l1) / l0[:, None]


def soc_step(u0, u1, d0, d1) -> float:
    """The longest ``alpha`` with ``u + alpha d`` in every cone (``u`` inside; inf if none
    binds): the smallest positive root of ``(u0 + a d0)^2 - |u1 + a d1|^2``."""
    a = d0 * d0 - (d1 * d1).sum(1)
    b = u0 * d0 - (u1 * d1).sum(1)
    c = u0 * u0 - (u1 * u1).sum(1)
    denom = (b * b - a * c).clamp_min(0).sqrt() - b
    binds = (denom > 0) & ~((a >= 0) & (d0 >= 0))
    if not bool(binds.any()):
        return math.inf
    return float((c[binds] / denom[binds]).min())


def orthant_step(u: torch.Tensor, d: torch.Tensor) -> float:
    """The longest ``alpha`` with ``u + alpha d >= 0`` (``u > 0``; inf if ``d >= 0``)."""
    worst = float((d / u).min()) if u.numel() else 0.0     # one pass, no boolean indexing
    return -1.0 / worst if worst < 0 else math.inf


def fold_fits(n_groups: int, d: int) -> bool:
    """Whether the folded system (``G d / 2`` unknowns) is within ``MAX_UNKNOWNS``."""
    return n_groups * d // 2 <= MAX_UNKNOWNS


def newton_route(n: int, n_groups: int, d: int) -> str | None:
    """How :class:`NewtonSystem` solves: ``"woodbury"`` where it fits (``n G d / 2 <=
    MAX_WOODBURY_ENTRIES``) and either undercuts the fold's flops (``n^2 G d / 4 + n^3 / 3``
    against ``(G d / 2)^3 / 3``) or the fold does not fit; else ``"fold"`` where ``G d / 2 <=
    MAX_UNKNOWNS``; else None."""
    half = n_groups * d // 2
    fold = fold_fits(n_groups, d)
    if n * half <= MAX_WOODBURY_ENTRIES and (
            not fold or n * n * half / 2 + n ** 3 / 3 < half ** 3 / 3):
        return "woodbury"
    return "fold" if fold else None


def unfit_reason(n: int, n_groups: int, d: int) -> str:
    """Why :func:`newton_route` found no route, in one line."""
    half = n_groups * d // 2
    return (f"the Newton system fits neither the fold (G d / 2 = {half} unknowns, above "
            f"MAX_UNKNOWNS = {MAX_UNKNOWNS}) nor Woodbury (n G d / 2 = {n * half} entries, "
            f"above MAX_WOODBURY_ENTRIES = {MAX_WOODBURY_ENTRIES:.0e})")


def cone_rows(n: int, n_groups: int, n_blocks: int, depth: int) -> int:
    """``n (G + B)``, the rows of ``B z >= 0`` (``B`` counted at depth 3)."""
    return n * (n_groups + (n_blocks if depth == 3 else 0))


def ipm_fits(n: int, n_groups: int, n_blocks: int, d: int, depth: int) -> bool:
    """Whether :class:`InteriorPoint` is the solver of choice: a :func:`newton_route` and
    ``n (G + B) <= MAX_CONE_ROWS`` cone rows."""
    return newton_route(n, n_groups, d) is not None and \
        cone_rows(n, n_groups, n_blocks, depth) <= MAX_CONE_ROWS


def preconditioned_cg(apply, precondition, r: torch.Tensor,
                      accept: float = LOW_RANK_RESIDUAL) -> torch.Tensor | None:
    """``H^{-1} r`` by conjugate gradients from ``precondition(r)``, ``apply(x) = H x`` and
    ``precondition(r) ~ H^{-1} r``, until the relative residual is below ``CG_RESIDUAL``
    or after ``CG_STEPS`` steps; None unless the final residual, recomputed, is within
    ``accept`` of ``|r|``."""
    x = precondition(r)
    norm = float(torch.linalg.vector_norm(r))
    residual = r - apply(x)
    z = precondition(residual)
    direction, rz = z, float(residual @ z)
    for _ in range(CG_STEPS):
        if not float(torch.linalg.vector_norm(residual)) > CG_RESIDUAL * norm or rz <= 0:
            break
        Hd = apply(direction)
        curvature = float(direction @ Hd)
        if not curvature > 0:
            break
        step = rz / curvature
        x = x + step * direction
        residual = residual - step * Hd
        z = precondition(residual)
        rz, previous = float(residual @ z), rz
        direction = z + (rz / previous) * direction
    error = float(torch.linalg.vector_norm(r - apply(x)))
    return x if math.isfinite(error) and error <= accept * norm else None


def lower_gram(Q: torch.Tensor, pieces: int) -> torch.Tensor:
    """``Q Q'`` (``Q`` is ``n x k``) from the products of its lower row blocks only, mirrored:
    ``(pieces + 1) / (2 pieces)`` of a full GEMM's flops (torch has no SYRK)."""
    n = Q.shape[0]
    S = torch.empty((n, n), dtype=Q.dtype, device=Q.device)
    cuts = [n * i // pieces for i in range(pieces + 1)]
    for i in range(pieces):
        rows = slice(cuts[i], cuts[i + 1])
        for j in range(i + 1):
            cols = slice(cuts[j], cuts[j + 1])
            S[rows, cols] = Q[rows] @ Q[cols].T
            if j < i:
                S[cols, rows] = S[rows, cols].T
    return S


def live_samples(At: torch.Tensor, patterns: int):
    """Per pattern, ``(rows, At_p)``: the samples whose columns of ``A_+'`` (``At``, the
    patterns' ``m1 d`` rows each) are not all zero, and those columns; None unless the product
    ``F F'`` over them, pattern by pattern (``sum_p n_p^2`` per row of ``F'``), takes under
    ``LIVE_RATIO`` times ``n^2 / 2`` per pattern (:func:`lower_gram` takes ``(1 + 1/pieces)
    n^2 / 2``).  At depth 3 a pattern's outer gate leaves about half the samples at zero."""
    n = At.shape[1]
    blocks = At.view(patterns, -1, n)
    rows = [torch.nonzero(block.abs().amax(0) > 0).flatten() for block in blocks]
    if sum(r.numel() ** 2 for r in rows) > 0.5 * LIVE_RATIO * patterns * n * n:
        return None
    return [(r, block[:, r]) for r, block in zip(rows, blocks)]


def band_push(products: torch.Tensor, target: float) -> torch.Tensor:
    """The change that moves ``products`` into ``[BAND[0], BAND[1]] * target``, with the
    decrease of large ones capped at ``BAND[1] * target`` (Gondzio 1996)."""
    low, high = BAND[0] * target, BAND[1] * target
    return (products.clamp(low, high) - products).clamp_min(-high)


def singular(state: RunState) -> None:
    """The stop on a Newton system that no ridge makes factorizable."""
    state.status, state.info["message"] = "inaccurate", "the Newton system is numerically singular"


def orthant_start(u: torch.Tensor) -> torch.Tensor:
    """``u`` shifted by ``(1 + a) e``, ``a = max(-u)``, unless it is strictly positive."""
    shift = -float(u.min()) if u.numel() else -1.0
    return u if shift < 0 else u + (1.0 + shift)


def soc_start(u0: torch.Tensor, u1: torch.Tensor):
    """``(u0, u1)`` shifted by ``(1 + a) e``, ``a = max(|u1| - u0)``, unless every cone holds
    it strictly."""
    shift = float((torch.linalg.vector_norm(u1, dim=1) - u0).max())
    return (u0, u1) if shift < 0 else (u0 + (1.0 + shift), u1)


@register
class InteriorPoint(TorchSolver):
    """Structured primal-dual interior point (module docstring), on CPU or CUDA.

    Parameters
    ----------
    gap_tol, violation_tol : float or None
        Certified relative gap and relative cone violation to stop at (None: 1e-6).
    max_iters : int
        Interior-point iterations.
    max_seconds : float
        Wall-clock limit.
    device : "cpu" or "cuda"
    threads : int or None
        ``torch.set_num_threads`` during the solve (None: leave torch's setting).
    row_set : bool
        Solve over a working set of cone rows (:mod:`.ipm_rows`; the fold must fit).
    verbose : bool
    """

    name = "ipm"
    model = "relu"
    losses = ("squared",)
    warm_starts = False
    honours_budget = True

    def __init__(self, gap_tol: float | None = None, violation_tol: float | None = None,
                 max_iters: int = MAX_ITERS, max_seconds: float = math.inf, device: str = "cpu",
                 threads: int | None = 1, row_set: bool = False, verbose: bool = False):
        self._set_device(device, "float64")
        self.gap_tol = DEFAULT_TOL["float64"] if gap_tol is None else float(gap_tol)
        self.violation_tol = DEFAULT_TOL["float64"] if violation_tol is None \
            else float(violation_tol)
        if max_iters < 1:
            raise ValueError(f"max_iters must be >= 1, got {max_iters}")
        self.max_iters, self.max_seconds = int(max_iters), check_budget(max_seconds)
        self.threads, self.verbose, self.row_set = threads, verbose, bool(row_set)

    def supports(self, problem: Problem) -> tuple[bool, str]:
        ok, why = super().supports(problem)
        groups = 2 * problem.n_patterns * problem.m1
        if ok and newton_route(problem.n, groups, problem.d) is None:
            return False, unfit_reason(problem.n, groups, problem.d) + " (use al: working sets)"
        if ok and self.row_set and not fold_fits(groups, problem.d):
            return False, (f"row_set=True needs the folded system: G d / 2 = "
                           f"{groups * problem.d // 2} unknowns, above MAX_UNKNOWNS = "
                           f"{MAX_UNKNOWNS}")
        return ok, why

    def _solve(self, problem: Problem, warm_start: Result | None) -> Result:
        if self.row_set:
            from .ipm_rows import solve_by_rows       # it builds on this module
            return solve_by_rows(self, problem)
        start = time.perf_counter()
        lift = Lifting.from_problem(problem)
        ops = TorchLifting(lift, problem.y, self.device, "float64", problem.loss)
        system = NewtonSystem(ops)
        setup = time.perf_counter() - start
        state = RunState()
        # the budget counts the setup too: forming A_+'A_+ took 20 s of a 20 s budget at
        # n = 16000, d = 50 (the asv full profile)
        Z, lam_i, lam_o = self._iterate(problem, ops, system, state, self.max_seconds - setup)
        return Result(
            self.name, state.status, Z=to_numpy(Z), lam_inner=to_numpy(lam_i),
            lam_outer=to_numpy(lam_o) if problem.depth == 3 else None, setup_seconds=setup,
            solve_seconds=state.info.pop("seconds"), iterations=state.iterations,
            trace=tuple(state.trace), info=state.info, message=state.info.get("message", ""))

    def _iterate(self, problem: Problem, ops: TorchLifting, system: "NewtonSystem",
                 state: RunState, budget: float):
        """The interior-point iterations until certified or out of budget; returns ``(z,
        lam_i, lam_o)`` of the last iterate, or of the best checked one on any other stop."""
        clock = Clock(ops.device)
        ws = ops.workspace()
        G = ops.G
        depth3 = ops.depth == 3
        beta = float(problem.beta)
        y_scale = violation_scale(problem.y)
        start = system.initial_point(beta)
        if start is None:
            raise RuntimeError("ipm: the Newton system at the starting point is singular")
        Z, t, s_i, l_i, s_o, l_o, s_t, s_z, q_t, q_z = start
        degree = s_i.numel() + s_o.numel() + G
        ws_lin = ops.workspace()                       # for the directions' dual residuals
        zero_i, zero_o = ops.zeros_inner(), ops.zeros_outer()
        expected = math.inf
        best = None
        while True:
            # residuals, and the certificate of (z, lam_l) from the same forward pass
            grad = system.gradient(Z, l_i, l_o if depth3 else ops.zeros_outer(), ws)
            check = system.check(Z, ws, beta, y_scale)
            state.trace.append(state.row(clock.now(), check))
            score = check.score(self.gap_tol, self.violation_tol)
            if best is None or score < best[0]:
                best = (score, Z.clone(), l_i.clone(), l_o.clone(), check)
            mu = (float((s_i * l_i).sum() + (s_o * l_o).sum()) + float(
                (s_t * q_t + (s_z * q_z).sum(1)).sum())) / degree       # s'lam / degree
            if self.verbose:       # with the largest residuals of the dual equations
                print(f"ipm it {state.iterations} obj {check.objective:.12g} gap "
                      f"{check.relative_gap:.2e} viol {check.violation:.2e} mu {mu:.2e} "
                      f"dual res z {float((grad - q_z).abs().max()):.2e} "
                      f"t {float((beta - q_t).abs().max()):.2e}")
            if check.certified(self.gap_tol, self.violation_tol):
                state.status = "optimal"
                break
            if state.iterations >= self.max_iters or clock.now() >= budget:
                state.out_of_budget(state.iterations < self.max_iters)
                break
            Bz_i = ops.sign_inner * ws.U
            Bz_o = ops.sign_outer * ws.H if depth3 else None
            rx_z, rx_t = grad - q_z, beta - q_t
            residual = max(float(rx_z.abs().max()), float(rx_t.abs().max()))
            # refine the directions once the dual residual falls short of its linear decrease
            # (1 - alpha) by REFINE_STALL: the solves' own error has caught up with it
            refining = residual > max(REFINE_STALL * expected, REFINE_ABOVE * beta)
            rz_i = s_i - Bz_i
            rz_o = s_o - Bz_o if depth3 else None
            rz_t, rz_z = s_t - t, s_z - Z
            theta_i = l_i / s_i
            theta_o = l_o / s_o if depth3 else None
            soc = SecondOrderScaling(s_t, s_z, q_t, q_z)
            lt0, lt1 = soc.apply(q_t, q_z)                       # lam~ = W lam
            solve = system.factorize(theta_i, theta_o, soc)
            if solve is None:
                singular(state)
                break

            def direction(ds_i, ds_o, ds0, ds1, refine_from=None):
                """(dz, dt, dlam_i, dlam_o, dlam_t, dlam_z, ds_i, ds_o, ds_t, ds_z) for the
                complementarity right-hand side ``d_s``; ``refine_from``: that direction as
                computed, refined by up to ``REFINEMENTS`` steps on the dual equations."""
                ql_i = rz_i + ds_i / l_i
                ql_o = rz_o + ds_o / l_o if depth3 else None
                u0, u1 = soc.apply(*soc_divide(lt0, lt1, ds0, ds1))
                qq_t, qq_z = rz_t + u0, rz_z + u1
                th_t, th_z = soc.theta(qq_t, qq_z)
                rhs_z = -rx_z + system.cone_adjoint(theta_i * ql_i,
                                                    theta_o * ql_o if depth3 else None) + th_z
                rhs_t = -rx_t + th_t
                out = solve(rhs_z, rhs_t) if refine_from is None else refine_from[:2]
                if out is None:
                    return None

                def completed(dz, dt, Bd_i, Bd_o):     # the multipliers' and slacks' steps
                    dl_i = theta_i * (ql_i - Bd_i)
                    dl_o = theta_o * (ql_o - Bd_o) if depth3 else l_o
                    dl_t, dl_z = soc.theta(qq_t - dt, qq_z - dz)
                    return (dz, dt, dl_i, dl_o, dl_t, dl_z, Bd_i - rz_i,
                            Bd_o - rz_o if depth3 else s_o, dt - rz_t, dz - rz_z)

                if refine_from is None:
                    return completed(*out, *system.cones(out[0]))
                kept, floor = None, max(REFINED_DUAL * beta, REFINE_FRACTION * residual)
                for refinement in range(REFINEMENTS + 1):
                    # the dual equations' residual at the step, from the unformed operators
                    # A'A, B' and B (a formed B' Theta B carries the round-off of its largest
                    # weights: at n = 64000 it held the dual residual near 1e-4 of beta)
                    dz, dt = out
                    lin = system.gradient(dz, zero_i, zero_o, ws_lin)      # A'A dz - A'y
                    step = completed(dz, dt, ops.sign_inner * ws_lin.U,
                                     ops.sign_outer * ws_lin.H if depth3 else None)
                    _, _, dl_i, dl_o, dl_t, dl_z = step[:6]
                    e_z = lin + system.Aty - system.cone_adjoint(
                        dl_i, dl_o if depth3 else None) - dl_z + rx_z
                    e_t = rx_t - dl_t
                    error = max(float(e_z.abs().max()), float(e_t.abs().max()))
                    if kept is not None and not error < REFINE_GAIN * kept[0]:
                        break                          # at the round-off floor
                    if kept is not None:
                        state.info["refinements"] = state.info.get("refinements", 0) + 1
                    kept = (error, step)
                    if refinement == REFINEMENTS or not error > floor:
                        break
                    fix = solve(-e_z, -e_t, correction=True)
                    if fix is None:
                        break
                    out = (dz + fix[0], dt + fix[1])
                return kept[1]

            def longest(step):
                dz, dt, dl_i, dl_o, dl_t, dl_z, ds_i, ds_o, ds_t, ds_z = step
                alpha = min(orthant_step(s_i, ds_i), orthant_step(l_i, dl_i),
                            soc_step(s_t, s_z, ds_t, ds_z), soc_step(q_t, q_z, dl_t, dl_z))
                if depth3:
                    alpha = min(alpha, orthant_step(s_o, ds_o), orthant_step(l_o, dl_o))
                return alpha

            # predictor: d_s = -lam~ o lam~
            sq0, sq1 = soc_product(lt0, lt1, lt0, lt1)
            affine = direction(-s_i * l_i, -s_o * l_o if depth3 else None, -sq0, -sq1)
            if affine is None:
                singular(state)
                break
            alpha = min(1.0, longest(affine))
            dz, dt, dl_i, dl_o, dl_t, dl_z, ds_i, ds_o, ds_t, ds_z = affine
            mu_aff = float(((s_i + alpha * ds_i) * (l_i + alpha * dl_i)).sum())
            if depth3:
                mu_aff += float(((s_o + alpha * ds_o) * (l_o + alpha * dl_o)).sum())
            mu_aff += float(((s_t + alpha * ds_t) * (q_t + alpha * dl_t)).sum() + (
                (s_z + alpha * ds_z) * (q_z + alpha * dl_z)).sum())
            sigma = min(1.0, max(0.0, mu_aff / degree / mu)) ** 3
            # corrector: d_s = -lam~ o lam~ - (W^-T ds_a) o (W dlam_a) + sigma mu e
            a0, a1 = soc.apply_inverse(ds_t, ds_z)
            b0, b1 = soc.apply(dl_t, dl_z)
            c0, c1 = soc_product(a0, a1, b0, b1)
            target = sigma * mu
            rhs_i = -s_i * l_i - ds_i * dl_i + target
            rhs_o = -s_o * l_o - ds_o * dl_o + target if depth3 else None
            rhs_0, rhs_1 = -sq0 - c0 + target, -sq1 - c1
            step = direction(rhs_i, rhs_o, rhs_0, rhs_1)
            if step is None:
                singular(state)
                break
            reach = longest(step)
            chosen = (rhs_i, rhs_o, rhs_0, rhs_1)
            for _ in range(CORRECTORS):
                # Gondzio: push the products of a longer trial step into a band around
                # the target, on the orthant rows (the ones that bind)
                trial = min(1.0, CORRECTOR_REACH * reach)
                _, _, dl_i, dl_o, _, _, ds_i, ds_o, _, _ = step
                rhs_i = rhs_i + band_push((s_i + trial * ds_i) * (l_i + trial * dl_i), target)
                if depth3:
                    rhs_o = rhs_o + band_push((s_o + trial * ds_o) * (l_o + trial * dl_o),
                                              target)
                better = direction(rhs_i, rhs_o, rhs_0, rhs_1)
                if better is None:
                    break
                longer = longest(better)
                if not longer >= CORRECTOR_GAIN * reach:
                    break
                step, reach, chosen = better, longer, (rhs_i, rhs_o, rhs_0, rhs_1)
            if refining:
                refined = direction(*chosen, refine_from=step)
                if refined is not None:
                    step, reach = refined, longest(refined)
            alpha = min(1.0, STEP_FRACTION * reach)
            expected = (1.0 - alpha) * residual
            if self.verbose:
                print(f"    sigma {sigma:.2e} step {alpha:.3f}")
            dz, dt, dl_i, dl_o, dl_t, dl_z, ds_i, ds_o, ds_t, ds_z = step
            Z, t = Z + alpha * dz, t + alpha * dt
            l_i, s_i = l_i + alpha * dl_i, s_i + alpha * ds_i
            if depth3:
                l_o, s_o = l_o + alpha * dl_o, s_o + alpha * ds_o
            q_t, q_z = q_t + alpha * dl_t, q_z + alpha * dl_z
            s_t, s_z = s_t + alpha * ds_t, s_z + alpha * ds_z
            state.iterations += 1
        if state.status != "optimal" and best is not None and best[0] < score:
            _, Z, l_i, l_o, check = best
            state.trace.append(state.row(clock.now(), check))
        state.info.update(seconds=clock.now())
        return Z, l_i, l_o if depth3 else ops.zeros_outer()


class NewtonSystem:
    """The pieces of ``H`` (module docstring) that stay fixed: ``K = A_+'A_+``, the products
    ``x_i x_i'`` and the layout of the fold; :meth:`factorize` adds the weighted cones."""

    def __init__(self, ops: TorchLifting, route: str | None = None):
        self.ops, self.G, self.d, self.m1 = ops, ops.G, ops.d, ops.m1
        X = ops.X
        self.upper, self.XX = upper_products(X)
        self.half_weights = lifted_weights(ops)[: self.G // 2]      # A_+: A = [A_+, -A_+]
        self.route = route or newton_route(ops.n, self.G, self.d)
        if self.route is None:
            raise ValueError(unfit_reason(ops.n, self.G, self.d))
        self._K, self._Aty = None, None
        self.At = lifted_columns_t(self.half_weights, X) if self.route == "woodbury" else None
        self.live = None if self.At is None else live_samples(self.At, ops.B // 2)
        diagonal = self.half_weights.square() @ X.square()           # diag(A_+'A_+), (G/2, d)
        self.scale = float(diagonal.max()) if diagonal.numel() else 1.0
        active = torch.arange(self.G, device=X.device)
        self.fold = Folding(active, self.G // 2, self.m1, self.d)
        self.sign = ops.group_sign
        self.ws = ops.workspace()

    @property
    def Aty(self) -> torch.Tensor:
        """``A'y`` (G, d), as ``-gradient`` at zero (of whichever loss the system holds)."""
        if self._Aty is None:
            self._Aty = -self.gradient(torch.zeros((self.G, self.d), dtype=torch.float64,
                                                   device=self.ops.X.device),
                                       self.ops.zeros_inner(), self.ops.zeros_outer(),
                                       self.ops.workspace())
        return self._Aty

    @property
    def K(self) -> torch.Tensor:
        """``A_+'A_+``, formed on the fold's first use."""
        if self._K is None:
            self._K = NewtonInner.half_gram(self.ops.X, self.half_weights)
        return self._K

    def gradient(self, Z: torch.Tensor, lam_i: torch.Tensor, lam_o: torch.Tensor,
                 ws: Workspace) -> torch.Tensor:
        """``A'(A z - y) - B'lam`` (G, d), leaving the cone values ``U``, ``H`` at ``Z`` in
        ``ws`` (and what :meth:`check` reads)."""
        return self.ops.al_gradient(Z, lam_i, lam_o, 0.0, ws)

    def check(self, Z: torch.Tensor, ws: Workspace, beta: float, y_scale: float) -> Check:
        """The certificate of ``Z`` with the multipliers left in ``ws`` by :meth:`gradient`
        at ``Z``."""
        return device_certificate(self.ops, ws, Z, beta, y_scale)

    def initial_point(self, beta: float):
        """CVXOPT's default start: ``x = -(P + G'G)^{-1} c`` (the Newton system with unit
        weights), ``s = -G x`` and ``lam = G x``, each shifted into its cone by ``(1 + a) e``
        where it is not strictly inside.  Returns ``(z, t, s_i, lam_i, s_o, lam_o, s_t, s_z,
        lam_t, lam_z)``, or None if the system is singular."""
        ops, G, d = self.ops, self.G, self.d
        f64, dev = torch.float64, ops.X.device
        ones = lambda *shape: torch.ones(shape, dtype=f64, device=dev)  # noqa: E731
        depth3 = ops.depth == 3
        unit = SecondOrderScaling(ones(G), torch.zeros((G, d), dtype=f64, device=dev),
                                  ones(G), torch.zeros((G, d), dtype=f64, device=dev))
        solve = self.factorize(ones(G, ops.n), ones(ops.B, ops.n) if depth3 else None, unit)
        if solve is None:
            return None
        out = solve(self.Aty, -beta * ones(G))
        if out is None:
            return None
        Z, t = out
        Bz_i, Bz_o = self.cones(Z)
        s_i, l_i = orthant_start(Bz_i), orthant_start(-Bz_i)
        s_o, l_o = (orthant_start(Bz_o), orthant_start(-Bz_o)) if depth3 else (ones(0),
                                                                               ones(0))
        (s_t, s_z), (q_t, q_z) = soc_start(t, Z), soc_start(-t, -Z)
        return Z, t, s_i, l_i, s_o, l_o, s_t, s_z, q_t, q_z

    def cones(self, Z: torch.Tensor):
        """``B z``: the inner (G, n) and outer (B, n; depth 3, else None) cone values."""
        ops = self.ops
        ops.cone_values(Z, self.ws)
        inner = ops.sign_inner * self.ws.U
        return inner, (ops.sign_outer * self.ws.H if ops.depth == 3 else None)

    def cone_adjoint(self, w_i: torch.Tensor, w_o: torch.Tensor | None) -> torch.Tensor:
        """``B'w`` (G, d): ``X'((2D - 1) w_i + s D (2E - 1) w_o)`` per group."""
        ops = self.ops
        W = ops.sign_inner * w_i
        if w_o is not None:
            W = W + ops.coef * (ops.sign_outer * w_o).repeat_interleave(self.m1, dim=0)
        return W @ ops.X

    def factorize(self, theta_i, theta_o, soc: SecondOrderScaling):
        """The solve ``(rhs_z, rhs_t, correction=False) -> (dz, dt)`` of the Newton system with
        the cone weights ``theta`` and the scaling ``soc``, or None if it is numerically
        singular.  A ``correction`` (a refinement step's) takes the Woodbury solve at any
        accuracy, and never starts the fold: the caller keeps it only if it helps."""
        ops, G, m1, d = self.ops, self.G, self.m1, self.d
        pos = torch.arange(G, device=theta_i.device)
        tt, tz, schur = soc.theta_blocks()
        weight = theta_i
        if theta_o is not None:     # the outer rows' j = k terms join their groups' own
            weight = theta_i + theta_o.repeat_interleave(m1, dim=0) * ops.inner
        C = [unpack_symmetric(weight @ self.XX, self.upper, d) + schur]
        p, q = [pos], [pos]
        if theta_o is not None and m1 > 1:            # ... and j < k pairs their own blocks
            block = pos // m1
            pp, qq = torch.nonzero((block[:, None] == block[None, :]).triu(1), as_tuple=True)
            pair = theta_o[block[pp]] * (ops.inner[pp] & ops.inner[qq])
            C.append((self.sign[pp] * self.sign[qq])[:, None, None] * unpack_symmetric(
                pair @ self.XX, self.upper, d))
            p, q = p + [pp], q + [qq]
        p, q, C = torch.cat(p), torch.cat(q), torch.cat(C)

        folded = None

        def fold_solve(rhs):
            nonlocal folded
            if not fold_fits(self.G, d):
                return None
            if folded is None:
                folded = self.fold.factorize(
                    self.K, p, q, C, RIDGE * self.scale,
                    lambda R: ridged_cholesky(R, self.scale)) or (lambda r: None)
            return folded(rhs)

        woodbury = {} if self.route == "woodbury" else {False: None, True: None}

        def built(clamp: bool):                # the Woodbury solve, or None where it failed
            if clamp not in woodbury:
                woodbury[clamp] = self._low_rank(p, q, C, clamp)
            return woodbury[clamp]

        def low_rank(rhs):
            for clamp in (False, True):        # clamped: after a failure only (an eigh)
                dz = None if built(clamp) is None else woodbury[clamp](rhs)
                if dz is not None:
                    return dz
                woodbury[clamp] = None         # inaccurate: not tried again
            return None

        if built(False) is None and built(True) is None and fold_solve(
                torch.zeros(G * d, dtype=C.dtype, device=C.device)) is None:
            return None

        def correct(rhs):                      # a refinement's: any gain will do, no fold
            solves = [w for w in woodbury.values() if w is not None]
            return solves[0](rhs, 1.0) if solves else fold_solve(rhs)

        def solve(rhs_z, rhs_t, correction=False):
            rhs = (rhs_z - tz * (rhs_t / tt)[:, None]).flatten()
            dz = correct(rhs) if correction else low_rank(rhs)
            if dz is None and not correction:  # no low-rank solve, or an inaccurate one
                dz = fold_solve(rhs)
            if dz is None:
                return None
            dz = dz.view(G, d)
            return dz, (rhs_t - (tz * dz).sum(1)) / tt

        return solve

    def _low_rank(self, p: torch.Tensor, q: torch.Tensor, C: torch.Tensor, clamp: bool):
        """The solve ``r -> H^{-1} r`` by Woodbury: ``H = A'A + D`` with ``D`` (the blocks
        ``C`` at ``(p, q)``, plus the ridge) block diagonal per network block, so only
        ``S = I + A D^{-1} A'`` (``n x n``) is factored.  With ``A = [A_+, -A_+]`` it is
        ``I + F F'``, ``F = A_+ L`` for the Cholesky factors ``L L' = D_+^{-1} + D_-^{-1}`` of
        the two sign blocks of a pattern (:func:`.al_newton.ridged_cholesky`, each block ridged
        by its own largest diagonal entry), half of ``A``'s columns.
        It preconditions conjugate gradients on ``H`` (:func:`preconditioned_cg`), whose None
        (a residual above ``LOW_RANK_RESIDUAL``) sends the caller on; None also when a
        factorization fails.  ``clamp``: ``D^{-1}`` from the eigenvalues of ``D`` raised to
        ``CLAMP`` times ``max diag(A'A)``, for the late iterations whose ``D`` is numerically
        singular (the directions it leaves to ``A'A``)."""
        B, m1, d = self.ops.B, self.m1, self.d
        w, half = m1 * d, self.ops.B // 2
        D = torch.zeros((B, m1, d, m1, d), dtype=C.dtype, device=C.device)
        blocks = D.permute(0, 1, 3, 2, 4)          # a view: (B, m1, m1, d, d)
        blocks.index_put_((p // m1, p % m1, q % m1), C, accumulate=True)
        off = p != q
        blocks.index_put_((q[off] // m1, q[off] % m1, p[off] % m1), C[off].mT, accumulate=True)
        D = D.view(B, w, w)
        D.diagonal(dim1=1, dim2=2).add_(RIDGE * self.scale)
        if clamp:
            values, vectors = torch.linalg.eigh(D)
            D_inv = (vectors / values.clamp_min(CLAMP * self.scale)[:, None, :]) @ vectors.mT
        else:
            L, info = torch.linalg.cholesky_ex(D)
            if bool(info.any()):
                return None
            D_inv = torch.cholesky_inverse(L)
        M = D_inv[:half] + D_inv[half:]
        L_sum = ridged_cholesky(M, M.diagonal(dim1=1, dim2=2).amax(1))
        if L_sum is None:
            return None
        At, n = self.At, self.At.shape[1]
        if self.live is None:
            Ft = torch.bmm(L_sum.mT, At.view(half, w, n)).view(-1, n)       # F'
            small = lower_gram(Ft.T, max(1, min(GRAM_PIECES, n // GRAM_ROWS)))
        else:
            small = torch.zeros((n, n), dtype=At.dtype, device=At.device)
            for L_p, (rows, At_p) in zip(L_sum, self.live):   # the samples pattern p touches
                F_p = (L_p.mT @ At_p).T
                pieces = max(1, min(GRAM_PIECES, rows.numel() // GRAM_ROWS))
                small.index_put_((rows[:, None], rows[None, :]), lower_gram(F_p, pieces),
                                 accumulate=True)
        small.diagonal().add_(1.0)
        L_small, info = torch.linalg.cholesky_ex(small)
        if int(info) != 0:
            return None

        def times_A(x):                                      # A x, x by blocks (B, w)
            return At.T @ (x[:half] - x[half:]).flatten()

        def times_At(u):                                     # A' u, by blocks (B, w)
            g = (At @ u).view(half, w)
            return torch.cat([g, -g])

        def once(r):
            x0 = torch.bmm(D_inv, r.view(B, w, 1)).view(B, w)
            c = times_At(cholesky_apply(L_small, times_A(x0)))
            return (x0 - torch.bmm(D_inv, c.view(B, w, 1)).view(B, w)).flatten()

        def apply(x):                                                     # H x
            x = x.view(B, w)
            return (times_At(times_A(x)) + torch.bmm(D, x.view(B, w, 1)).view(B, w)).flatten()

        return lambda r, accept=LOW_RANK_RESIDUAL: preconditioned_cg(apply, once, r, accept)
