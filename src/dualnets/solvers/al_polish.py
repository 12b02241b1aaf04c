"""Final polishing of an augmented Lagrangian iterate: a Newton step on the identified active
set, then multipliers chosen for the certificate (docs/design.md section 7: first-order solvers need
accurate multipliers and a polishing phase to certify).

1. Primal.  With the active groups ``S = {g : ||z_g|| > 1e-4 max ||z||}`` and the rows of their
   cones whose AL multiplier ``mu`` is positive (``T``), the optimum solves the smooth problem
   ``min L(A_S z) + beta sum_{g in S} ||z_g||  s.t.  B_T z = 0``; Newton on its KKT system
   ``[[H, B_T'], [B_T, 0]]`` with ``H = A_S' grad^2 L A_S`` plus the norms' curvature (least
   squares: z is not unique) converges in a few steps.  The multipliers of ``T`` solve
   ``B_T' lam_T = grad`` (stationarity).
2. Dual.  The certificate only needs ``||(A'v - B'lam)_g|| <= beta`` for some ``lam >= 0``.  For
   each zero group, with the outer multipliers of its block fixed, the inner ones come from the
   nonnegative least squares ``min_{l >= 0} ||X'(s D gh_b) - X' diag(2D - 1) l||`` (d rows),
   ``gh_b = sigma_b E_b v - (2 E_b - 1) lam_outer_b`` at the dual point ``v = grad L(A z)``.

Nothing here is trusted: the caller certifies the result and keeps iterating if it fails.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.linalg import lstsq
from scipy.optimize import nnls

from ..certificate import dual_point, primal_value
from ..lifting import Lifting
from ..losses import ConvexLoss, get_loss

ACTIVE_REL = 1e-4
NEWTON_STEPS = 10
MAX_KKT = 2000      # skip the polish when the reduced KKT system is larger (AL not settled)
MAX_ROWS = 20_000   # and above this n (dense A_S and per-group NNLS; not measured beyond)
STEP_REL = 1e-13


def _tiled(lift: Lifting):
    inner = np.concatenate([lift.inner, lift.inner])
    return np.concatenate([lift.coef, lift.coef]), np.where(inner, 1.0, -1.0), np.concatenate(
        [lift.outer, lift.outer])


def _tight_rows(lift: Lifting, S: np.ndarray, mu_i: np.ndarray, mu_o: np.ndarray | None):
    """Rows of B over the columns of S (|S| d) where the AL multiplier is positive."""
    X, d, m1 = lift.X, lift.X.shape[1], lift.m1
    coef, ds, outer = _tiled(lift)
    rows, keys = [], []
    for s, g in enumerate(S):
        idx = np.flatnonzero(mu_i[g] > 0)
        R = np.zeros((idx.size, S.size * d))
        R[:, s * d:(s + 1) * d] = ds[g, idx, None] * X[idx]
        rows.append(R)
        keys.append(("inner", g, idx))
    if lift.depth == 3 and mu_o is not None:
        for b in np.unique(S // m1):
            idx = np.flatnonzero(mu_o[b] > 0)
            R = np.zeros((idx.size, S.size * d))
            sign = np.where(outer[b, idx], 1.0, -1.0)
            for s in np.flatnonzero(S // m1 == b):
                R[:, s * d:(s + 1) * d] = (sign * coef[S[s], idx])[:, None] * X[idx]
            rows.append(R)
            keys.append(("outer", b, idx))
    return np.vstack(rows), keys


def _kkt_size(lift: Lifting, S: np.ndarray, d: int, mu_i: np.ndarray, mu_o) -> int:
    """Unknowns of the reduced KKT system, counted before anything is allocated."""
    rows = int(np.count_nonzero(mu_i[S] > 0))
    if lift.depth == 3 and mu_o is not None:
        rows += int(np.count_nonzero(mu_o[np.unique(S // lift.m1)] > 0))
    return S.size * d + rows


class OutOfTime(Exception):
    """The polish passed its deadline."""


def _check_time(deadline: float) -> None:
    if time.perf_counter() > deadline:
        raise OutOfTime


def _newton(A: np.ndarray, y: np.ndarray, C: np.ndarray, beta: float, z: np.ndarray, d: int,
            deadline: float, loss: ConvexLoss):
    """Damped Newton on the equality-constrained reduced problem; returns z and its gradient.

    A step is halved (up to 20 times) until the merit ``f(z) + ||C z||_1 * scale`` decreases,
    so that a wrong active set cannot blow the point up.
    """
    k, m = z.size // d, z.size

    def merit(w):
        return primal_value(A @ w, y, w.reshape(k, d), beta, loss) + 1e3 * np.abs(C @ w).sum()

    def gradient(w):
        wg = w.reshape(k, d)
        return A.T @ loss.gradient(A @ w, y) + beta * (
            wg / np.linalg.norm(wg, axis=1)[:, None]).ravel()

    def loss_hessian(w):
        if fixed is not None:
            return fixed.copy()
        return A.T @ (loss.hessian_diagonal(A @ w, y)[:, None] * A)

    fixed = A.T @ A if loss.identity_hessian else None
    current = merit(z)
    for _ in range(NEWTON_STEPS):
        _check_time(deadline)
        zg = z.reshape(k, d)
        norms = np.linalg.norm(zg, axis=1)
        u = zg / norms[:, None]
        grad = gradient(z)
        H = loss_hessian(z)
        for s in range(k):
            blk = slice(s * d, (s + 1) * d)
            H[blk, blk] += beta / norms[s] * (np.eye(d) - np.outer(u[s], u[s]))
        K = np.block([[H, C.T], [C, np.zeros((C.shape[0], C.shape[0]))]])
        step = lstsq(K, -np.concatenate([grad, C @ z]), cond=1e-12,
                     lapack_driver="gelsy")[0][:m]
        for _halving in range(20):
            trial = merit(z + step)
            if trial <= current:
                break
            step = step / 2
        else:
            break
        z, current = z + step, trial
        if np.linalg.norm(step) <= STEP_REL * np.linalg.norm(z):
            break
    return z, gradient(z)


def zero_group_multipliers(lift: Lifting, y: np.ndarray, Z: np.ndarray, lam_i: np.ndarray,
                           lam_o: np.ndarray | None, deadline: float = math.inf,
                           loss: str | ConvexLoss = "squared") -> np.ndarray:
    """``lam_i`` with the rows of zero groups replaced by their NNLS multipliers."""
    X, m1 = lift.X, lift.m1
    coef, ds, outer = _tiled(lift)
    v = dual_point(lift.predict(Z), y, loss)
    gh = lift.block_sign[:, None] * outer * v[None, :]
    if lift.depth == 3 and lam_o is not None:
        gh = gh - np.where(outer, lam_o, -lam_o)
    out = lam_i.copy()
    for g in np.flatnonzero(np.linalg.norm(Z, axis=1) == 0):
        _check_time(deadline)
        M = X.T * ds[g][None, :]                                  # (d, n)
        out[g] = nnls(M, X.T @ (coef[g] * gh[g // m1]), maxiter=50 * M.shape[1])[0]
    return out


def polish(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray, mu_i: np.ndarray,
           mu_o: np.ndarray | None, deadline: float = math.inf,
           loss: str | ConvexLoss = "squared"):
    """Polished ``(Z, lam_inner, lam_outer)`` in the Lifting layout, or None (nothing active,
    a reduced system above ``MAX_KKT`` unknowns, n above ``MAX_ROWS``, or past ``deadline``,
    a ``time.perf_counter`` value)."""
    try:
        return _polish(lift, y, beta, Z, mu_i, mu_o, deadline, get_loss(loss))
    except OutOfTime:
        return None


def _polish(lift: Lifting, y: np.ndarray, beta: float, Z: np.ndarray, mu_i: np.ndarray,
            mu_o: np.ndarray | None, deadline: float, loss: ConvexLoss):
    d, m1 = Z.shape[1], lift.m1
    norms = np.linalg.norm(Z, axis=1)
    S = np.flatnonzero(norms > ACTIVE_REL * norms.max(initial=0.0))
    if S.size == 0 or lift.X.shape[0] > MAX_ROWS or _kkt_size(lift, S, d, mu_i, mu_o) > MAX_KKT:
        return None
    coef, _, outer = _tiled(lift)
    weight = coef[S] * (lift.block_sign[S // m1, None] * outer[S // m1])
    n = lift.X.shape[0]
    A = (weight[:, :, None] * lift.X[None]).transpose(1, 0, 2).reshape(n, S.size * d)
    C, keys = _tight_rows(lift, S, mu_i, mu_o)
    z, grad = _newton(A, y, C, beta, Z[S].ravel().copy(), d, deadline, loss)
    lam_T = lstsq(C.T, grad, lapack_driver="gelsy")[0] if C.shape[0] else np.zeros(0)
    Z_new = np.zeros_like(Z)
    Z_new[S] = z.reshape(S.size, d)
    lam_i = mu_i.copy()
    lam_i[S] = 0.0
    lam_o = None if mu_o is None else mu_o.copy()
    if lam_o is not None:
        lam_o[np.unique(S // m1)] = 0.0
    offset = 0
    for kind, row, idx in keys:
        (lam_i if kind == "inner" else lam_o)[row, idx] = lam_T[offset:offset + idx.size]
        offset += idx.size
    lam_o = None if lam_o is None else np.maximum(lam_o, 0.0)
    return Z_new, zero_group_multipliers(lift, y, Z_new, np.maximum(lam_i, 0.0), lam_o,
                                         deadline, loss), lam_o
