"""Solver-independent duality-gap certificate of the convex program (DESIGN.md section 4).

Primal  ``P = 1/2 ||A z - y||^2 + beta sum_g ||z_g||``  subject to ``B z >= 0``.
Dual    ``D(v, lam) = -v'y - 1/2 ||v||^2``  subject to ``||(A'v - B'lam)_g|| <= beta``, ``lam >= 0``.

From a primal ``z`` and multipliers ``lam`` (zero when a solver has none) we take ``v = A z - y``
and scale ``(v, lam)`` by the ``t`` in ``[0, beta / max_g ||(A'v - B'lam)_g||]`` that maximizes
``-t v'y - t^2/2 ||v||^2`` (this contains DESIGN's ``t = min(1, ...)`` and is never worse).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .lifting import Lifting

TINY = 1e-300
GAP_TOL = 1e-6
VIOLATION_TOL = 1e-6


@dataclass(frozen=True)
class Certificate:
    """Primal and dual values of one point, and whether they certify optimality."""

    objective: float            # primal P at z
    dual_objective: float       # D at the scaled (v, lam)
    gap: float                  # P - D
    relative_gap: float         # (P - D) / max(P, tiny)
    constraint_violation: float  # max_i (-(B z)_i)_+ / max(||y||_inf, tiny)
    certified: bool
    dual_scale: float           # the t used

    def as_dict(self) -> dict:
        return asdict(self)


def relative_violation(lift: Lifting, y: np.ndarray, Z: np.ndarray) -> float:
    """Largest cone-constraint violation of ``Z`` relative to ``||y||_inf``."""
    U = lift.activations(Z)
    worst = -min(0.0, float(lift.inner_values(U).min(initial=0.0)))
    if lift.depth == 3:
        H = lift.block_outputs(U)
        worst = max(worst, -min(0.0, float(lift.outer_values(H).min(initial=0.0))))
    return worst / max(float(np.abs(y).max()), TINY)


def certify(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray,
            lam_inner: np.ndarray | None = None, lam_outer: np.ndarray | None = None,
            gap_tol: float = GAP_TOL, violation_tol: float = VIOLATION_TOL) -> Certificate:
    """Duality-gap certificate for the primal point ``Z`` (G, d) and multipliers.

    ``lam_inner`` has shape (G, n) and ``lam_outer`` shape (B, n); negative entries are
    clipped to zero, since only ``lam >= 0`` is dual feasible.
    """
    Z = np.asarray(Z, dtype=np.float64)
    lam_inner = None if lam_inner is None else np.maximum(np.asarray(lam_inner, float), 0.0)
    lam_outer = None if lam_outer is None else np.maximum(np.asarray(lam_outer, float), 0.0)
    v = lift.predict(Z) - y
    primal = 0.5 * float(v @ v) + beta * float(np.linalg.norm(Z, axis=1).sum())
    worst = float(np.linalg.norm(lift.adjoint(v, lam_inner, lam_outer), axis=1).max(initial=0.0))
    t_max = np.inf if worst <= 0 else beta / worst
    vv, vy = float(v @ v), float(v @ y)
    t_best = -vy / vv if vv > 0 else 0.0
    t = float(min(max(t_best, 0.0), t_max))
    dual = -t * vy - 0.5 * t * t * vv
    gap = primal - dual
    rel_gap = gap / max(abs(primal), TINY)
    viol = relative_violation(lift, y, Z)
    ok = bool(rel_gap <= gap_tol and viol <= violation_tol)
    return Certificate(primal, dual, gap, rel_gap, viol, ok, t)
