"""Solver-independent duality-gap certificate of the convex program (docs/design.md section 4).

Primal  ``P = 1/2 ||A z - y||^2 + beta sum_g ||z_g||``  subject to ``B z >= 0``.
Dual    ``D(v, lam) = -v'y - 1/2 ||v||^2``  subject to ``||(A'v - B'lam)_g|| <= beta``, ``lam >= 0``.

From a primal ``z`` and multipliers ``lam`` (zero when a solver has none) we take ``v = A z - y``
and scale ``(v, lam)`` by the ``t`` in ``[0, beta / max_g ||(A'v - B'lam)_g||]`` that maximizes
``-t v'y - t^2/2 ||v||^2`` (this contains the design's ``t = min(1, ...)`` and is never worse).

This module is the one home of these formulas: :func:`primal_value`, :func:`dual_value`,
:func:`best_dual_scale` (the dual at that scale: :func:`scaled_dual`; all three:
:func:`primal_and_dual`), :func:`capped_dual_value`,
:func:`relative_gap`, the certification rule :func:`is_certified` and their assembly
:func:`certificate_from` take numpy arrays or torch tensors (any device), and every solver, the
gated relaxation, dual-search, the global bound and the rebuild call them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .lifting import Lifting

TINY = 1e-300
GAP_TOL = 1e-6
VIOLATION_TOL = 1e-6


def group_norm_sum(Z) -> float:
    """``sum_g ||z_g||`` over the rows of ``Z`` (G, d), numpy or torch."""
    if isinstance(Z, np.ndarray):
        return float(np.linalg.norm(Z, axis=1).sum())
    return float(Z.norm(dim=1).sum())


def primal_value(v, Z, beta: float) -> float:
    """``P = 1/2 ||v||^2 + beta sum_g ||z_g||`` with the residual ``v = A z - y``."""
    return 0.5 * float(v @ v) + beta * group_norm_sum(Z)


def dual_value(v, y, t: float) -> float:
    """``D(t v) = -t v'y - t^2/2 ||v||^2``."""
    return -t * float(v @ y) - 0.5 * t * t * float(v @ v)


def best_dual_scale(v, y, t_max: float) -> float:
    """The ``t`` in ``[0, t_max]`` that maximizes :func:`dual_value` (a concave parabola)."""
    vv, vy = float(v @ v), float(v @ y)
    t_best = -vy / vv if vv > 0 else 0.0
    return float(min(max(t_best, 0.0), t_max))


def feasible_scale(worst: float, beta: float) -> float:
    """Largest ``t`` with ``t * worst <= beta``: ``worst`` is ``max_g ||(A'v - B'lam)_g||``."""
    return math.inf if worst <= 0 else beta / worst


def scaled_dual(v, y, beta: float, worst: float, cap: float = math.inf) -> tuple[float, float]:
    """``(D(t v), t)`` at the best ``t`` in ``[0, min(cap, beta / worst)]``, given
    ``worst = max_g ||(A'v - B'lam)_g||``: the dual point of the certificate."""
    t = best_dual_scale(v, y, min(cap, feasible_scale(worst, beta)))
    return dual_value(v, y, t), t


def capped_dual_value(v, y, beta: float, worst: float) -> float:
    """``D(t v)`` at the best ``t`` in ``[0, min(1, beta / worst)]`` (docs/design.md section 10).

    ``worst`` bounds the dual constraint ``max_b p_b(v)`` over a set of blocks; when it bounds
    it over *every* realizable block (exact pricing), ``t v`` is feasible for the program over
    all patterns and the value is a lower bound on the NC objective of every network.
    """
    return scaled_dual(v, y, beta, worst, cap=1.0)[0]


def relative_gap(primal: float, dual: float) -> float:
    """``(P - D) / max(|P|, tiny)``."""
    return (primal - dual) / max(abs(primal), TINY)


def primal_and_dual(v, y, Z, beta: float, worst: float) -> tuple[float, float, float]:
    """``(P, D, t)`` at the residual ``v = A z - y``: the primal value, the dual value of
    ``t v`` at the best feasible scale ``t``, given ``worst = max_g ||(A'v - B'lam)_g||``."""
    return (primal_value(v, Z, beta), *scaled_dual(v, y, beta, worst))


def is_certified(rel_gap: float, violation: float, gap_tol: float = GAP_TOL,
                 violation_tol: float = VIOLATION_TOL) -> bool:
    """The one certification rule: ``|relative gap| <= gap_tol`` and ``violation <=
    violation_tol``.  Two-sided: a gap below ``-gap_tol`` comes only from an infeasible point
    whose objective sits below the optimum, and certifies nothing."""
    return bool(abs(rel_gap) <= gap_tol and violation <= violation_tol)


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
    worst = float(np.linalg.norm(lift.adjoint(v, lam_inner, lam_outer), axis=1).max(initial=0.0))
    return certificate_from(v, y, beta, primal_value(v, Z, beta), worst,
                            relative_violation(lift, y, Z), gap_tol, violation_tol)


def certificate_from(v: np.ndarray, y: np.ndarray, beta: float, primal: float, worst: float,
                     violation: float, gap_tol: float = GAP_TOL,
                     violation_tol: float = VIOLATION_TOL) -> Certificate:
    """The certificate of a point from its residual ``v = A z - y``, its primal value, the
    largest dual row norm ``worst = max_g ||(A'v - B'lam)_g||`` and its relative violation.

    :func:`certify` computes these pieces over every group at once; a working-set solver
    gathers ``worst`` from the restricted program and the priced blocks outside it.
    """
    dual, t = scaled_dual(v, y, beta, worst)
    rel_gap = relative_gap(primal, dual)
    return Certificate(primal, dual, primal - dual, rel_gap, violation,
                       is_certified(rel_gap, violation, gap_tol, violation_tol), t)
