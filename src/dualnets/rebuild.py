"""Map a convex solution back to a network (docs/design.md section 3), after pruning blocks.

Each block ``b = (c, sigma)`` with nonzero ``z`` becomes one sub-network::

    t = sum_j ||z_j||,  q_j = z_j / t,  w3 = sigma sqrt(t),
    w2_j = s_cj sqrt(t) sqrt(||q_j||),  w1_j = q_j / sqrt(||q_j||)

so that ``||W1||_F = 1``, ``||w2|| = |w3|`` and the penalty equals ``beta t``.  At depth 2 every
nonzero group is one neuron: ``u = z / sqrt(||z||)``, ``a = sigma s sqrt(||z||)``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from .certificate import primal_value, relative_violation
from .lifting import Lifting
from .losses import ConvexLoss
from .network import ParallelNet

ZERO_TOL = 1e-12
PRUNE_REL_TOL = 1e-7
PRUNE_OBJ_TOL = 1e-9
PRUNE_VIOLATION_TOL = 1e-9
PRUNE_MAX_ROWS = 4000


def block_norms(lift: Lifting, Z: np.ndarray) -> np.ndarray:
    """t_b = sum_j ||z_bj||, shape (B,)."""
    return np.linalg.norm(Z, axis=1).reshape(lift.n_blocks, lift.m1).sum(axis=1)


def prune_blocks(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray,
                 loss: str | ConvexLoss = "squared") -> np.ndarray:
    """Rescale blocks to a vertex of ``{c >= 0 : sum_b c_b o_b = yhat, sum_b c_b t_b = sum t}``.

    Scaling block ``b`` (output ``o_b``, norm ``t_b``) by ``c_b >= 0`` keeps every cone
    constraint, so any such ``c`` gives the same prediction and penalty, hence the same
    objective, whatever the loss (a Caratheodory step); a simplex vertex has few nonzero blocks.
    The LP's support is refitted exactly by least squares, and the pruned point is kept only if
    its objective and constraint violation are no worse than the original's (up to a 1e-9
    margin); otherwise ``Z`` comes back unchanged.  Dropping the interior-point noise blocks
    often lowers the objective.
    """
    t = block_norms(lift, Z)
    active = np.flatnonzero(t > PRUNE_REL_TOL * t.max(initial=0.0))
    n = lift.X.shape[0]
    if active.size <= 1 or n + 1 > PRUNE_MAX_ROWS:
        return Z
    H = lift.block_outputs(lift.activations(Z))
    out = (lift.block_sign[:, None] * np.concatenate([lift.outer, lift.outer]) * H)[active]
    A_eq = np.vstack([out.T, t[active][None, :]])
    b_eq = A_eq.sum(axis=1)
    res = linprog(np.zeros(active.size), A_eq=A_eq, b_eq=b_eq, bounds=(0, None),
                  method="highs-ds")
    if res.status != 0:
        return Z
    support = np.flatnonzero(res.x > 1e-7)
    c_support = np.linalg.lstsq(A_eq[:, support], b_eq, rcond=None)[0]
    if np.any(c_support < 0):
        c_support = res.x[support]
    c = np.zeros(lift.n_blocks)
    c[active[support]] = c_support
    pruned = Z * np.repeat(c, lift.m1)[:, None]
    before, after = (_objective_and_violation(lift, y, beta, W, loss) for W in (Z, pruned))
    if after[0] > before[0] + PRUNE_OBJ_TOL * abs(before[0]) or \
            after[1] > max(10 * before[1], PRUNE_VIOLATION_TOL):
        return Z
    return pruned


def _objective_and_violation(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray,
                             loss: str | ConvexLoss):
    return primal_value(lift.predict(Z), y, Z, beta, loss), relative_violation(lift, y, Z)


def rebuild_network(lift: Lifting, Z: np.ndarray) -> ParallelNet:
    """The network whose NC objective equals the convex objective at a feasible ``Z``."""
    Z = np.asarray(Z, dtype=np.float64)
    m1, d = lift.m1, Z.shape[1]
    norms = np.linalg.norm(Z, axis=1)
    signs = np.tile(lift.coef_sign, 2)
    sigma = np.repeat(lift.block_sign, m1)
    if lift.depth == 2:
        keep = np.flatnonzero(norms > ZERO_TOL)
        root = np.sqrt(norms[keep])
        W1 = (Z[keep] / root[:, None])[:, :, None]
        w2 = (sigma[keep] * signs[keep] * root)[:, None]
        return ParallelNet(W1, w2, np.ones(keep.size), depth=2)
    t = norms.reshape(-1, m1).sum(axis=1)
    keep = np.flatnonzero(t > ZERO_TOL)
    Zb = Z.reshape(-1, m1, d)[keep]                      # (K, m1, d)
    q = Zb / t[keep, None, None]
    qn = np.linalg.norm(q, axis=2)                       # (K, m1)
    safe = np.where(qn > 0, np.sqrt(qn), 1.0)
    W1 = np.transpose(np.where(qn[:, :, None] > 0, q / safe[:, :, None], 0.0), (0, 2, 1))
    w2 = signs.reshape(-1, m1)[keep] * np.sqrt(t[keep])[:, None] * np.where(qn > 0, safe, 0.0)
    w3 = lift.block_sign[keep] * np.sqrt(t[keep])
    return ParallelNet(W1, w2, w3, depth=3)
