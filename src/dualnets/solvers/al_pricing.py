"""Pricing of a block held at zero (docs/design.md section 8).

With the dual point ``v = grad L(A z)`` (the code's one convention, section 4: the residual
``A z - y`` for the squared loss), a block ``b`` (pattern
``c``, output sign ``sigma``) at ``z_b = 0`` satisfies its dual constraints iff

    p_b = min_{lam_b >= 0}  max_j || (A_b'v - B_b'lam_b)_j ||_2  <=  beta,

    (A_b'v - B_b'lam)_j = a_j - X'(s_j D_j (2E - 1) lo) - X'((2 D_j - 1) li_j),
    a_j = X'(s_j D_j sigma E v),

with ``li_j`` (n) the inner multipliers of group ``j`` and ``lo`` (n) the outer ones (depth 3;
depth 2 has ``E = 1`` and no ``lo``).  Stacking the ``m1`` groups, ``r = a - M l`` with ``l >= 0``
and ``M`` of ``m1 d`` rows: for ``m1 = 1`` the price is one nonnegative least squares (the
distance from ``a`` to the polyhedral cone of ``M``), solved by column generation
(:func:`column_nnls`: ``M`` has ``~(m1 + 1) n`` columns, the solution at most ``m1 d`` nonzeros).  For ``m1 > 1`` the min-max is the saddle
point ``p_b^2 = max_{w in simplex} min_l sum_j w_j ||r_j(l)||^2`` (convex in ``l``, linear in
``w``): every weighted NNLS gives a lower bound ``sqrt(g(w))`` and an upper bound
``max_j ||r_j(l_w)||``, and Lawson's update ``w_j <- w_j ||r_j||`` moves ``w`` towards the
saddle point.  A block is decided as soon as the upper bound is within ``threshold`` (no
violation, and its multipliers certify it) or the lower bound exceeds it (a violator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from ..lifting import Lifting

WEIGHT_FLOOR = 1e-4   # least Lawson weight of a group
LAWSON_STEPS = 8      # weighted NNLS solves per undecided block (m1 > 1)
NNLS_ITERATIONS = 20  # Lawson-Hanson iterations allowed per unknown of a restricted NNLS
COLUMNS_FIRST = 2     # column generation starts from 2 k columns (k = m1 d rows) ...
COLUMN_ROUNDS = 10    # ... and adds at most 2 k per round, for at most this many rounds
CORRELATION_TOL = 1e-10   # a column enters when M_i'r > this ||M_i|| ||r||
ZERO_RESIDUAL = 1e-13     # ||r|| below this ||b||: b is in the cone (exact, up to round-off)


def column_nnls(M: np.ndarray, b: np.ndarray,
                rounds: int = COLUMN_ROUNDS) -> tuple[np.ndarray, float, bool]:
    """``min_{x >= 0} ||b - M x||`` for a wide ``M`` (k x N, k << N), by column generation:
    Lawson-Hanson on the ``COLUMNS_FIRST k`` columns most correlated with ``b``, then on those
    plus the ``2 k`` columns most correlated with the residual ``r``, until ``M'r <= 0`` (the
    KKT condition: exact; or ``||r||`` at round-off) or ``rounds`` rounds.  Any ``x >= 0`` is dual feasible for the
    certificate, so an unfinished ``x`` is still a valid upper bound.  Returns ``(x, ||r||,
    exact)``.  (A Lawson-Hanson solve over every column took 0.13 s per block at d = 50,
    n = 1600.)"""
    k, N = M.shape
    x = np.zeros(N)
    norms = np.maximum(np.linalg.norm(M, axis=0), 1e-300)
    score = (M.T @ b) / norms
    cols = np.argsort(-score)[: COLUMNS_FIRST * k]
    cols = cols[score[cols] > 0]
    r = b.copy()
    for _ in range(rounds):
        if cols.size:
            try:
                sub, _ = nnls(M[:, cols], b, maxiter=NNLS_ITERATIONS * max(k, cols.size))
            except RuntimeError:         # Lawson-Hanson did not finish: keep the last x
                break
            x[:] = 0.0
            x[cols] = sub
            r = b - M[:, cols] @ sub
        score = (M.T @ r) / norms
        rnorm = float(np.linalg.norm(r))
        fresh = np.flatnonzero(score > CORRELATION_TOL * rnorm)
        if fresh.size == 0 or rnorm <= ZERO_RESIDUAL * float(np.linalg.norm(b)):
            return x, rnorm, True
        keep = cols[x[cols] > 0]
        cols = np.union1d(keep, fresh[np.argsort(-score[fresh])[: 2 * k]])
    return x, float(np.linalg.norm(r)), False


@dataclass(frozen=True)
class BlockPrice:
    """The price of one block: ``upper`` is ``max_j ||(A_b'v - B_b'lam)_j||`` at the multipliers
    ``lam_inner`` (m1, n) and ``lam_outer`` (n,) (depth 3, else None); ``lower`` is a lower
    bound of ``p_b`` (0 when not computed)."""

    upper: float
    lower: float
    lam_inner: np.ndarray
    lam_outer: np.ndarray | None


class BlockPricer:
    """Prices of the blocks of one :class:`Lifting` for a dual point ``v`` (module docstring)."""

    def __init__(self, lift: Lifting):
        self.lift, self.m1, self.depth = lift, lift.m1, lift.depth
        self.n, self.d = lift.X.shape

    def _pattern(self, b: int):
        """``(c, sigma, D (m1, n) bool, s (m1,), E (n,) bool)`` of block ``b``."""
        lift, m1 = self.lift, self.m1
        c = b % lift.n_patterns
        sigma = 1.0 if b < lift.n_patterns else -1.0
        rows = slice(c * m1, (c + 1) * m1)
        return c, sigma, lift.inner[rows], lift.coef_sign[rows], lift.outer[c]

    def targets(self, v: np.ndarray, b: int) -> np.ndarray:
        """``a_j = X'(s_j D_j sigma E v)``, shape (m1, d)."""
        _, sigma, D, s, E = self._pattern(b)
        return (D * s[:, None] * (sigma * np.where(E, v, 0.0))[None, :]) @ self.lift.X

    def residuals(self, b: int, a: np.ndarray, lam_inner: np.ndarray,
                  lam_outer: np.ndarray | None) -> np.ndarray:
        """``r_j = (A_b'v - B_b'lam)_j`` (m1, d) from the targets ``a`` (:meth:`targets`)."""
        _, _, D, s, E = self._pattern(b)
        W = np.where(D, lam_inner, -lam_inner)
        if lam_outer is not None and self.depth == 3:
            W = W + D * s[:, None] * np.where(E, lam_outer, -lam_outer)[None, :]
        return a - W @ self.lift.X

    def _columns(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """``M`` (m1 d, k) and the index of each column in ``l = [lo, li_1, .., li_m1]``
        (zero columns of ``lo``, rows outside every inner mask, are left out)."""
        _, _, D, s, E = self._pattern(b)
        X, n, d, m1 = self.lift.X, self.n, self.d, self.m1
        blocks, index = [], []
        if self.depth == 3:
            rows = np.flatnonzero(D.any(axis=0))
            weight = D[:, rows] * s[:, None] * np.where(E[rows], 1.0, -1.0)[None, :]
            blocks.append((weight[:, None, :] * X[rows].T[None]).reshape(m1 * d, rows.size))
            index.append(rows)
        offset = n if self.depth == 3 else 0
        for j in range(m1):
            col = np.zeros((m1, d, n))
            col[j] = (X * np.where(D[j], 1.0, -1.0)[:, None]).T
            blocks.append(col.reshape(m1 * d, n))
            index.append(offset + j * n + np.arange(n))
        return np.hstack(blocks), np.concatenate(index)

    def _split(self, x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(lam_inner (m1, n), lam_outer (n,) or None)`` from the NNLS solution."""
        full = np.zeros(((self.m1 + (self.depth == 3)) * self.n))
        full[index] = x
        if self.depth == 3:
            return full[self.n:].reshape(self.m1, self.n), full[: self.n]
        return full.reshape(self.m1, self.n), None

    def _price(self, b: int, a: np.ndarray, lam_i: np.ndarray, lam_o) -> BlockPrice:
        norms = np.linalg.norm(self.residuals(b, a, lam_i, lam_o), axis=1)
        return BlockPrice(float(norms.max(initial=0.0)), 0.0, lam_i, lam_o)

    def price(self, v: np.ndarray, b: int, threshold: float, start: BlockPrice | None = None,
              lawson_steps: int = LAWSON_STEPS,
              column_rounds: int = COLUMN_ROUNDS) -> BlockPrice:
        """The price of block ``b`` at the dual point ``v``, decided against ``threshold`` (beta).

        Cheap tries first: no multipliers, then ``start`` (the block's multipliers of an
        earlier round); then NNLS (exact for m1 = 1; ``column_rounds`` of column generation)
        and up to ``lawson_steps`` weighted ones.
        """
        a = self.targets(v, b)
        zeros = np.zeros((self.m1, self.n))
        best = self._price(b, a, zeros, np.zeros(self.n) if self.depth == 3 else None)
        if best.upper <= threshold:
            return best
        if start is not None:
            warm = self._price(b, a, start.lam_inner, start.lam_outer)
            if warm.upper <= threshold:
                return warm
            best = min(best, warm, key=lambda p: p.upper)
        if lawson_steps < 1:
            return best
        return self._refine(b, a, threshold, best, lawson_steps, column_rounds)

    def _refine(self, b: int, a: np.ndarray, threshold: float, best: BlockPrice,
                lawson_steps: int, column_rounds: int) -> BlockPrice:
        """Weighted NNLS solves (Lawson's weights), keeping the best upper bound and the
        largest lower bound."""
        M, index = self._columns(b)
        m1, d = self.m1, self.d
        w, lower = np.full(m1, 1.0 / m1), 0.0
        for _ in range(1 if m1 == 1 else lawson_steps):
            scale = np.repeat(np.sqrt(w), d)
            x, rnorm, exact = column_nnls(M * scale[:, None], a.ravel() * scale, column_rounds)
            if exact:
                lower = max(lower, rnorm)
            lam_i, lam_o = self._split(x, index)
            trial = self._price(b, a, lam_i, lam_o)
            if trial.upper < best.upper:
                best = trial
            if best.upper <= threshold or lower > threshold or m1 == 1:
                break
            norms = np.linalg.norm(self.residuals(b, a, lam_i, lam_o), axis=1)
            if not norms.sum() > 0:
                break
            # floored: a weight at 0 never comes back, and its group can become the max
            w = np.maximum(w * norms / float(w @ norms), WEIGHT_FLOOR)
            w /= w.sum()
        return BlockPrice(best.upper, min(lower, best.upper), best.lam_inner, best.lam_outer)
