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

from .certificate import GAP_TOL, dual_point, is_certified, primal_and_dual, relative_gap
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


def gated_certificate(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray,
                      gap_tol: float = GAP_TOL) -> GatedCertificate:
    """Group-lasso duality gap of the gated relaxation at Z (G, d)."""
    Z = np.asarray(Z, dtype=np.float64)
    yhat = lift.predict(Z)
    v = dual_point(yhat, y)
    worst = float(np.linalg.norm(lift.adjoint(v, None, None), axis=1).max(initial=0.0))
    primal, dual, t = primal_and_dual(yhat, v, y, Z, beta, worst)
    rel = relative_gap(primal, dual)
    return GatedCertificate(primal, dual, primal - dual, rel, is_certified(rel, 0.0, gap_tol), t)
