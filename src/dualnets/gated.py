"""The gated relaxation: the masks of the ReLU program as fixed features, no cone constraints.

A model of its own (Mishkin, Sahiner & Pilanci, ICML 2022, "gated ReLU"), not the ReLU program::

    G(z) = 1/2 ||A z - y||^2 + beta sum_g ||z_g||      (same A as dualnets.lifting, no B z >= 0)

Its optimum is <= the ReLU program's over the same patterns (it drops constraints).  Its dual is
the plain group-lasso dual ``max -v'y - 1/2||v||^2  s.t.  ||(A'v)_g|| <= beta``; from
``v = A z - y`` scaled by the best ``t`` in ``[0, beta / max_g ||(A'v)_g||]`` we report the gap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .certificate import GAP_TOL, TINY
from .lifting import Lifting


@dataclass(frozen=True)
class GatedCertificate:
    """Primal and dual values of the gated relaxation at one point (not the ReLU program)."""

    objective: float
    dual_objective: float
    gap: float
    relative_gap: float
    certified: bool
    dual_scale: float

    def as_dict(self) -> dict:
        return asdict(self)


def gated_objective(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray) -> float:
    """``G(z)`` for weights Z (G, d)."""
    r = lift.predict(Z) - y
    return 0.5 * float(r @ r) + beta * float(np.linalg.norm(Z, axis=1).sum())


def gated_certificate(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray,
                      gap_tol: float = GAP_TOL) -> GatedCertificate:
    """Group-lasso duality gap of the gated relaxation at Z (G, d)."""
    Z = np.asarray(Z, dtype=np.float64)
    v = lift.predict(Z) - y
    primal = 0.5 * float(v @ v) + beta * float(np.linalg.norm(Z, axis=1).sum())
    worst = float(np.linalg.norm(lift.adjoint(v, None, None), axis=1).max(initial=0.0))
    vv, vy = float(v @ v), float(v @ y)
    t_max = np.inf if worst <= 0 else beta / worst
    t = float(min(max(-vy / vv if vv > 0 else 0.0, 0.0), t_max))
    dual = -t * vy - 0.5 * t * t * vv
    rel = (primal - dual) / max(abs(primal), TINY)
    return GatedCertificate(primal, dual, primal - dual, rel, bool(rel <= gap_tol), t)
