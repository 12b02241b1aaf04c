"""The convex program in cvxpy, solved by any installed conic solver (docs/design.md section 2).

The model is vectorised: with ``Z`` (d, G) and ``U = X Z`` (n, G), the inner cones are one
elementwise constraint ``(2D - 1) * U >= 0``, the block outputs are ``H = (S D * U) M`` with
``M`` the (G, B) group-to-block indicator, and the outer cones ``(2E - 1) * H >= 0``.  The
loss is ``1/2 ||yhat - y||^2`` (a second-order cone) or the logistic
``sum_i log(1 + exp(-y_i yhat_i))`` (``cp.logistic``: two exponential cones per row).

Clarabel on the logistic (exp-cone) program: with its default settings it stopped with
InsufficientProgress (breast_cancer, n = 100, d = 31, P = 60: step length 0 from iteration 21,
gap 6e-5), and also with faer, a larger static regularization, ``max_step_fraction = 0.9``
or equilibration bounded to [1e-2, 1e2]; with equilibration off
(``equilibrate_enable = False``) it reached "optimal" in 47 iterations (10 s on the shared
machine), 1.3e-8 relative above SCS at 1e-9 (20 s).  So Clarabel runs the logistic program
with equilibration off (``--solver-option equilibrate_enable=true`` restores it).  ECOS failed
on the same problem.  As for every solver, "certified" comes from
:mod:`dualnets.certificate`, never from this status.
"""

from __future__ import annotations

import math
import time
import warnings
from functools import lru_cache

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from ..certificate import zero_is_optimal
from ..lifting import Lifting
from ..losses import ConvexLoss, get_loss
from ..problem import Problem
from ..result import Result
from ..registry import register
from .base import Solver, check_budget

_STATUS = {
    cp.OPTIMAL: "optimal",
    cp.OPTIMAL_INACCURATE: "inaccurate",
    cp.USER_LIMIT: "max_iterations",
    cp.INFEASIBLE: "infeasible",
    cp.INFEASIBLE_INACCURATE: "infeasible",
    cp.UNBOUNDED: "error",
    cp.UNBOUNDED_INACCURATE: "error",
}


class ConvexModel:
    """The cvxpy problem of one :class:`Problem`, with handles on its constraints."""

    def __init__(self, problem: Problem, lift: Lifting | None = None):
        lift = Lifting.from_problem(problem) if lift is None else lift
        self.lift = lift
        d, G, B = problem.d, lift.n_groups, lift.n_blocks
        tile = lambda a: np.concatenate([a, a]).T  # noqa: E731  (n, G) or (n, B)
        self.Z = cp.Variable((d, G), name="Z")
        U = problem.X @ self.Z
        coef = tile(lift.coef)
        out_weight = (lift.block_sign[:, None] * np.concatenate([lift.outer, lift.outer])).T
        yhat = cp.sum(cp.multiply(coef * np.repeat(out_weight, lift.m1, axis=1), U), axis=1)
        self.inner = cp.multiply(np.where(tile(lift.inner), 1.0, -1.0), U) >= 0
        constraints = [self.inner]
        self.outer = None
        if problem.depth == 3:
            M = sp.kron(sp.eye(B), np.ones((lift.m1, 1)), format="csc")
            H = cp.multiply(coef, U) @ M
            self.outer = cp.multiply(np.where(tile(lift.outer), 1.0, -1.0), H) >= 0
            constraints.append(self.outer)
        objective = loss_expression(get_loss(problem.loss), yhat, problem.y) + \
            problem.beta * cp.sum(cp.norm(self.Z, 2, axis=0))
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def duals(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Multipliers in the Lifting layout: inner (G, n), outer (B, n)."""
        lam_in = None if self.inner.dual_value is None else np.asarray(self.inner.dual_value).T
        lam_out = None
        if self.outer is not None and self.outer.dual_value is not None:
            lam_out = np.asarray(self.outer.dual_value).T
        return lam_in, lam_out


def loss_expression(loss: ConvexLoss, yhat: cp.Expression, y: np.ndarray) -> cp.Expression:
    """The loss ``L(yhat)`` of :mod:`dualnets.losses` as a cvxpy expression (DCP)."""
    if loss.name == "squared":
        return 0.5 * cp.sum_squares(yhat - y)
    if loss.name == "logistic":
        return cp.sum(cp.logistic(cp.multiply(-y, yhat)))
    raise ValueError(f"cvxpy has no expression for the {loss.name!r} loss")


def cone_rows(problem: Problem) -> int:
    """Rows of the cone constraints, ``n (G + B)``: what an interior-point step's cost grows
    with (about 60000 rows took ~7 s and 320000 rows ~85 s with Clarabel on 2 cores)."""
    return problem.n * 2 * problem.n_patterns * (problem.m1 + (problem.depth == 3))


class CvxpySolver(Solver):
    """Interior-point (or SCS) solve of the exact program through cvxpy.

    Parameters
    ----------
    tol : float
        Relative tolerance handed to the backend (gap and feasibility).
    max_iters : int
    max_seconds : float
        Wall-clock limit handed to the backend where it has one (Clarabel, SCS, MOSEK; ECOS
        has none).
    max_cone_rows : int or None
        ``supports`` refuses problems with more cone rows ``n (G + B)`` (None: no limit).
    options : extra keyword arguments for the backend, e.g. ``direct_solve_method="qdldl"``.
    """

    backend: str = "CLARABEL"
    interior_point = True
    losses = ("squared", "logistic")

    def __init__(self, tol: float = 1e-8, max_iters: int = 500, verbose: bool = False,
                 max_seconds: float = math.inf, max_cone_rows: int | None = None, **options):
        if tol <= 0:
            raise ValueError(f"tol must be > 0, got {tol}")
        if max_cone_rows is not None and max_cone_rows < 1:
            raise ValueError(f"max_cone_rows must be >= 1 or None, got {max_cone_rows}")
        self.tol, self.max_iters, self.verbose, self.options = tol, int(max_iters), verbose, options
        self.max_seconds, self.max_cone_rows = check_budget(max_seconds), max_cone_rows

    def supports(self, problem: Problem) -> tuple[bool, str]:
        ok, why = super().supports(problem)
        if not ok:
            return ok, why
        rows = cone_rows(problem)
        if self.max_cone_rows is not None and rows > self.max_cone_rows:
            return False, (f"interior-point size limit: n*(G+B) = {rows} cone rows > "
                           f"{self.max_cone_rows} (raise max_cone_rows or ip_limit to force)")
        return backend_available(self.backend)

    def backend_options(self, loss: str = "squared") -> dict:
        """The backend's settings for a program with ``loss`` (the user's options last)."""
        tol, it = self.tol, self.max_iters
        return self._time_limit() | {
            # qdldl: Clarabel's own choice (faer above some size) measured 3.6x slower at
            # n = 400 and 4x slower at n = 1600 with P = 20 patterns and one thread
            # (bench/run_clarabel_scaling.py); with P = 50 at n = 1600 faer was 1.4x faster
            # (226 s against 325 s, side by side) and at n = 400 they tied
            "CLARABEL": dict(tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, max_iter=it,
                             direct_solve_method="qdldl") | (
                # exp cones: equilibration made it stall (module docstring)
                {"equilibrate_enable": False} if loss == "logistic" else {}),
            "ECOS": dict(abstol=tol, reltol=tol, feastol=tol, max_iters=it),
            "SCS": dict(eps_abs=tol, eps_rel=tol, max_iters=100 * it),
            "MOSEK": {},
        }[self.backend] | self.options

    def _time_limit(self) -> dict:
        """The backend's own wall-clock limit, where it has one."""
        if not math.isfinite(self.max_seconds):
            return {}
        return {"CLARABEL": {"time_limit": self.max_seconds},
                "SCS": {"time_limit_secs": self.max_seconds},
                "MOSEK": {"mosek_params": {"MSK_DPAR_OPTIMIZER_MAX_TIME": self.max_seconds}},
                }.get(self.backend, {})

    def solve(self, problem: Problem, warm_start: Result | None = None) -> Result:
        """Solve from scratch (interior-point methods do not warm-start; ``warm_start`` is
        accepted and ignored).  Where ``z = 0`` certifies (:func:`zero_is_optimal`, as when
        ``y = 0``) it is returned without calling the backend, whose ``z ~ 1e-10`` would
        read as a relative gap of 1."""
        self.check_supported(problem)
        start = time.perf_counter()
        lift = Lifting.from_problem(problem)
        if zero_is_optimal(lift, problem.y, problem.beta, problem.loss):
            return Result(self.name, "optimal", Z=np.zeros((lift.n_groups, problem.d)),
                          setup_seconds=time.perf_counter() - start,
                          message="z = 0 certified before the solve: max_g ||A_g' grad L(0)|| "
                                  "<= beta", info={"patterns": problem.patterns})
        model = ConvexModel(problem, lift)
        build = time.perf_counter() - start
        try:
            start = time.perf_counter()
            with warnings.catch_warnings():   # "inaccurate" is reported as a status instead
                warnings.simplefilter("ignore", UserWarning)
                model.problem.solve(solver=self.backend, verbose=self.verbose,
                                    **self.backend_options(problem.loss))
            wall = time.perf_counter() - start
        except TypeError as exc:          # cvxpy's word for an unknown backend setting
            raise ValueError(f"{self.name}: {exc}") from None
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            return Result(self.name, "error", setup_seconds=build, message=str(exc).splitlines()[0])
        compile_seconds = float(model.problem.compilation_time or 0.0)
        stats = model.problem.solver_stats
        status = _STATUS.get(model.problem.status, "error")
        Z = None if model.Z.value is None else np.asarray(model.Z.value).T.copy()
        lam_in, lam_out = model.duals()
        return Result(
            self.name, status, Z=Z, lam_inner=lam_in, lam_outer=lam_out,
            setup_seconds=build + compile_seconds, solve_seconds=wall - compile_seconds,
            iterations=int(stats.num_iters or 0), message=str(model.problem.status),
            info={"backend_solve_seconds": stats.solve_time, "patterns": problem.patterns},
        )


@lru_cache(maxsize=None)
def backend_available(backend: str) -> tuple[bool, str]:
    """Whether cvxpy can use ``backend`` here, and if not, why (MOSEK needs a license)."""
    if backend not in cp.installed_solvers():
        return False, f"{backend} is not installed (pip install {backend.lower()})"
    if backend == "MOSEK":
        x = cp.Variable()
        try:
            cp.Problem(cp.Minimize(cp.abs(x - 1))).solve(solver="MOSEK")
        except Exception as exc:  # noqa: BLE001 - any license or runtime failure means "skip"
            return False, f"MOSEK is installed but cannot run: {str(exc).splitlines()[0]}"
    return True, ""


@register
class ClarabelSolver(CvxpySolver):
    name = "clarabel"
    backend = "CLARABEL"


@register
class EcosSolver(CvxpySolver):
    name = "ecos"
    backend = "ECOS"
    honours_budget = False  # ECOS has no time limit
    benchmarked = False     # a second interior-point backend: asv times Clarabel


@register
class ScsSolver(CvxpySolver):
    name = "scs"
    backend = "SCS"
    benchmarked = False     # ADMM, but compiled by cvxpy like the others: same size limit

    def __init__(self, tol: float = 1e-7, max_iters: int = 1000, **kwargs):
        super().__init__(tol=tol, max_iters=max_iters, **kwargs)


@register
class MosekSolver(CvxpySolver):
    name = "mosek"
    backend = "MOSEK"
    benchmarked = False     # needs a license
