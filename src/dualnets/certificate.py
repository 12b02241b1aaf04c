"""Solver-independent duality-gap certificate of the convex program (docs/design.md sections 4
and 9).

Primal  ``P = L(A z) + beta sum_g ||z_g||``  subject to ``B z >= 0``.
Dual    ``D(v, lam) = -L*(v)``  subject to ``||(A'v - B'lam)_g|| <= beta``, ``lam >= 0``.

From a primal ``z`` and multipliers ``lam`` (zero when a solver has none) we take the dual point
``v = grad L(A z)`` (for the squared loss the residual ``A z - y``; :func:`dual_point`), put
into the domain of ``L*`` first, and scale ``(v, lam)`` by the ``t`` in ``[0, beta / max_g
||(A'v - B'lam)_g||]`` (and within the domain: ``t <= 1 / max_i (-y_i v_i)`` for the logistic
loss) that maximizes ``-L*(t v)`` (squared: ``-t v'y - t^2/2 ||v||^2``, which contains the
design's ``t = min(1, ...)`` and is never worse).  The loss formulas are those of
:mod:`dualnets.losses`; every function here takes the loss (a name or a
:class:`~dualnets.losses.ConvexLoss`, default "squared") as its last argument ``loss``.

This module is the one home of these formulas: :func:`primal_value`, :func:`dual_point`,
:func:`dual_value`, :func:`best_dual_scale` (the dual at that scale: :func:`scaled_dual`;
primal and dual: :func:`primal_and_dual`, from the squared loss's products alone:
:func:`squared_primal_and_dual`), :func:`capped_dual_value`,
:func:`relative_gap`, the certification rule :func:`is_certified` and their assembly
:func:`certificate_from` take numpy arrays or torch tensors (any device), and every solver, the
gated relaxation, dual-search, the global bound and the rebuild call them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .lifting import Lifting
from .losses import ConvexLoss, get_loss

TINY = 1e-300
GAP_TOL = 1e-6
VIOLATION_TOL = 1e-6


def group_norm_sum(Z) -> float:
    """``sum_g ||z_g||`` over the rows of ``Z`` (G, d), numpy or torch."""
    if isinstance(Z, np.ndarray):
        return float(np.linalg.norm(Z, axis=1).sum())
    return float(Z.norm(dim=1).sum())


def primal_value(yhat, y, Z, beta: float, loss: str | ConvexLoss = "squared") -> float:
    """``P = L(yhat) + beta sum_g ||z_g||`` at the prediction ``yhat = A z``."""
    return float(get_loss(loss).value(yhat, y)) + beta * group_norm_sum(Z)


def dual_point(yhat, y, loss: str | ConvexLoss = "squared"):
    """``v = grad L(yhat)``, clipped into the domain of ``L*`` (before any scaling: a point
    outside the domain stays outside at every scale ``t > 0``)."""
    fn = get_loss(loss)
    return fn.clip(fn.gradient(yhat, y), y)


def dual_value(v, y, t: float, loss: str | ConvexLoss = "squared") -> float:
    """``D(t v) = -L*(t v)`` (squared: ``-t v'y - t^2/2 ||v||^2``)."""
    return get_loss(loss).dual_value(v, y, t)


def best_dual_scale(v, y, t_max: float, loss: str | ConvexLoss = "squared") -> float:
    """The ``t`` in ``[0, t_max]`` (and in the domain of ``L*``) that maximizes
    :func:`dual_value`, a concave function of ``t``."""
    fn = get_loss(loss)
    return fn.best_scale(v, y, min(t_max, fn.scale_cap(v, y)))


def feasible_scale(worst: float, beta: float) -> float:
    """Largest ``t`` with ``t * worst <= beta``: ``worst`` is ``max_g ||(A'v - B'lam)_g||``."""
    return math.inf if worst <= 0 else beta / worst


def scaled_dual(v, y, beta: float, worst: float, cap: float = math.inf,
                loss: str | ConvexLoss = "squared") -> tuple[float, float]:
    """``(D(t v), t)`` at the best ``t`` in ``[0, min(cap, beta / worst)]``, given
    ``worst = max_g ||(A'v - B'lam)_g||``: the dual point of the certificate."""
    t = best_dual_scale(v, y, min(cap, feasible_scale(worst, beta)), loss)
    return dual_value(v, y, t, loss), t


def capped_dual_value(v, y, beta: float, worst: float,
                      loss: str | ConvexLoss = "squared") -> float:
    """``D(t v)`` at the best ``t`` in ``[0, min(1, beta / worst)]`` (docs/design.md section 10).

    ``worst`` bounds the dual constraint ``max_b p_b(v)`` over a set of blocks; when it bounds
    it over *every* realizable block (exact pricing), ``t v`` is feasible for the program over
    all patterns and the value is a lower bound on the NC objective of every network.
    """
    return scaled_dual(v, y, beta, worst, cap=1.0, loss=loss)[0]


def relative_gap(primal: float, dual: float) -> float:
    """``(P - D) / max(|P|, tiny)``."""
    return (primal - dual) / max(abs(primal), TINY)


def primal_and_dual(yhat, v, y, Z, beta: float, worst: float,
                    loss: str | ConvexLoss = "squared") -> tuple[float, float, float]:
    """``(P, D, t)`` at the prediction ``yhat`` and its dual point ``v`` (:func:`dual_point`):
    the primal value, the dual value of ``t v`` at the best feasible scale ``t``, given
    ``worst = max_g ||(A'v - B'lam)_g||``."""
    return (primal_value(yhat, y, Z, beta, loss), *scaled_dual(v, y, beta, worst, loss=loss))


def squared_primal_and_dual(vv: float, vy: float, Z, beta: float,
                            worst: float) -> tuple[float, float, float]:
    """:func:`primal_and_dual` of the squared loss from ``v'v`` and ``v'y`` alone (``v = A z
    - y``, ``L = v'v / 2``): for a solver that holds the loss as its Gram matrix ``A'A`` (the
    row working set of :mod:`dualnets.solvers.ipm_rows`)."""
    fn = get_loss("squared")
    t = fn.scale_from_products(vy, vv, feasible_scale(worst, beta))
    return 0.5 * vv + beta * group_norm_sum(Z), fn.dual_from_products(vy, vv, t), t


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
    constraint_violation: float  # max_i (-(B z)_i)_+ / violation_scale(y)
    certified: bool
    dual_scale: float           # the t used

    def as_dict(self) -> dict:
        return asdict(self)


def violation_scale(y) -> float:
    """What cone violations are measured against: ``||y||_inf`` (the cone values ``X z`` scale
    with the targets), or 1 when ``y = 0``, a program without a scale of its own (dividing by
    a floor such as 1e-300 read a violation of 1e-11 as 1e289)."""
    top = float(np.abs(y).max()) if isinstance(y, np.ndarray) else float(y.abs().max())
    return top if top > 0 else 1.0


def relative_violation(lift: Lifting, y: np.ndarray, Z: np.ndarray) -> float:
    """Largest cone-constraint violation of ``Z`` over :func:`violation_scale`."""
    U = lift.activations(Z)
    worst = max(0.0, -float(lift.inner_values(U).min(initial=0.0)))
    if lift.depth == 3:
        H = lift.block_outputs(U)
        worst = max(worst, -float(lift.outer_values(H).min(initial=0.0)))
    return worst / violation_scale(y)


def certify(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray,
            lam_inner: np.ndarray | None = None, lam_outer: np.ndarray | None = None,
            gap_tol: float = GAP_TOL, violation_tol: float = VIOLATION_TOL,
            loss: str | ConvexLoss = "squared") -> Certificate:
    """Duality-gap certificate for the primal point ``Z`` (G, d) and multipliers.

    ``lam_inner`` has shape (G, n) and ``lam_outer`` shape (B, n); negative entries are
    clipped to zero, since only ``lam >= 0`` is dual feasible.
    """
    Z = np.asarray(Z, dtype=np.float64)
    lam_inner = None if lam_inner is None else np.maximum(np.asarray(lam_inner, float), 0.0)
    lam_outer = None if lam_outer is None else np.maximum(np.asarray(lam_outer, float), 0.0)
    yhat = lift.predict(Z)
    v = dual_point(yhat, y, loss)
    worst = float(np.linalg.norm(lift.adjoint(v, lam_inner, lam_outer), axis=1).max(initial=0.0))
    return certificate_from(v, y, beta, primal_value(yhat, y, Z, beta, loss), worst,
                            relative_violation(lift, y, Z), gap_tol, violation_tol, loss)


def zero_is_optimal(lift: Lifting, y: np.ndarray, beta: float,
                    loss: str | ConvexLoss = "squared") -> bool:
    """Whether ``z = 0`` certifies with ``lam = 0``: ``max_g ||A_g' grad L(0)|| <= beta``
    (then ``t = 1`` closes the gap), as when ``y = 0``.  An interior-point method stops at
    ``z ~ 1e-10`` there, whose objective over the optimum, 0, is a relative gap of 1."""
    Z = np.zeros((lift.n_groups, lift.X.shape[1]))
    return certify(lift, y, beta, Z, loss=loss).certified


def certificate_from(v: np.ndarray, y: np.ndarray, beta: float, primal: float, worst: float,
                     violation: float, gap_tol: float = GAP_TOL,
                     violation_tol: float = VIOLATION_TOL,
                     loss: str | ConvexLoss = "squared") -> Certificate:
    """The certificate of a point from its dual point ``v`` (:func:`dual_point`), its primal
    value, the largest dual row norm ``worst = max_g ||(A'v - B'lam)_g||`` and its relative
    violation.

    :func:`certify` computes these pieces over every group at once; a working-set solver
    gathers ``worst`` from the restricted program and the priced blocks outside it.
    """
    dual, t = scaled_dual(v, y, beta, worst, loss=loss)
    rel_gap = relative_gap(primal, dual)
    return Certificate(primal, dual, primal - dual, rel_gap, violation,
                       is_certified(rel_gap, violation, gap_tol, violation_tol), t)
