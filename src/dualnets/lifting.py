"""The group structure of the convex program, as matrix-free numpy operators.

Groups are indexed ``g = b * m1 + j`` with block ``b = sigma_index * P + c``: block ``b`` is the
sub-network of pattern ``c`` with output sign ``sigma_b`` (+1 for the first P blocks, -1 after).
With ``U_g = X z_g`` (an n-vector) and ``h_b = sum_{j} s_cj D_cj * U_{bj}``::

    A z   = sum_b sigma_b E_b * h_b                       (prediction)
    B z  >= 0:  (2 D_g - 1) * U_g >= 0,   (2 E_b - 1) * h_b >= 0    (inner, outer cones)

Depth 2 has ``E_b = 1`` and no outer cones. The lifted matrix is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import Problem


@dataclass(frozen=True, eq=False)
class Lifting:
    """Matrix-free operators of one problem's convex program (docs/design.md sections 2 and 4)."""

    X: np.ndarray          # (n, d)
    inner: np.ndarray      # (P*m1, n) bool, masks of one sign copy
    coef: np.ndarray       # (P*m1, n) float, s_cj * D_cj
    coef_sign: np.ndarray  # (P*m1,) float, s_cj
    outer: np.ndarray      # (P, n) bool
    depth: int
    m1: int

    @classmethod
    def from_problem(cls, problem: Problem) -> Lifting:
        pat = problem.require_patterns()
        P, m1, n = pat.inner.shape
        inner = pat.inner.reshape(P * m1, n)
        sign = pat.inner_sign.reshape(P * m1).astype(np.float64)
        outer = pat.outer if problem.depth == 3 else np.ones((P, n), bool)
        return cls(problem.X, inner, inner * sign[:, None], sign, outer, problem.depth, m1)

    def rows(self, index) -> Lifting:
        """The operators over the samples ``index`` only (a slice gives views)."""
        return Lifting(self.X[index], self.inner[:, index], self.coef[:, index], self.coef_sign,
                       self.outer[:, index], self.depth, self.m1)

    # sizes -----------------------------------------------------------------------------------
    @property
    def n_patterns(self) -> int:
        return self.outer.shape[0]

    @property
    def n_blocks(self) -> int:
        return 2 * self.n_patterns

    @property
    def n_groups(self) -> int:
        return 2 * self.inner.shape[0]

    @property
    def block_sign(self) -> np.ndarray:
        """sigma_b, shape (B,)."""
        P = self.n_patterns
        return np.concatenate([np.ones(P), -np.ones(P)])

    def _tile(self, a: np.ndarray) -> np.ndarray:
        """Repeat a per-pattern array for the two output signs."""
        return np.concatenate([a, a])

    # operators -------------------------------------------------------------------------------
    def activations(self, Z: np.ndarray) -> np.ndarray:
        """U = Z X^T, shape (G, n), for weights Z of shape (G, d)."""
        return Z @ self.X.T

    def block_outputs(self, U: np.ndarray) -> np.ndarray:
        """h_b = sum_j s_cj D_cj U_bj, shape (B, n)."""
        G, n = U.shape
        return (self._tile(self.coef) * U).reshape(G // self.m1, self.m1, n).sum(axis=1)

    def predict_from_blocks(self, H: np.ndarray) -> np.ndarray:
        """A z = sum_b sigma_b E_b h_b, shape (n,)."""
        return (self.block_sign[:, None] * self._tile(self.outer) * H).sum(axis=0)

    def predict(self, Z: np.ndarray) -> np.ndarray:
        return self.predict_from_blocks(self.block_outputs(self.activations(Z)))

    def inner_values(self, U: np.ndarray) -> np.ndarray:
        """(2 D_g - 1) * U_g, shape (G, n); feasible where >= 0."""
        return np.where(self._tile(self.inner), U, -U)

    def outer_values(self, H: np.ndarray) -> np.ndarray:
        """(2 E_b - 1) * h_b, shape (B, n); feasible where >= 0 (depth 3 only)."""
        return np.where(self._tile(self.outer), H, -H)

    def adjoint(self, v: np.ndarray, lam_inner: np.ndarray | None,
                lam_outer: np.ndarray | None) -> np.ndarray:
        """Rows ``(A^T v - B^T lambda)_g``, shape (G, d).

        ``W_g = s_cj D_cj (sigma_b E_b v - (2E_b - 1) lam_outer_b) - (2 D_g - 1) lam_inner_g``
        and the result is ``W X``.
        """
        B = self.n_blocks
        E = self._tile(self.outer)
        per_block = self.block_sign[:, None] * E * v[None, :]
        if lam_outer is not None and self.depth == 3:
            per_block = per_block - np.where(E, lam_outer, -lam_outer)
        W = self._tile(self.coef) * np.repeat(per_block, self.m1, axis=0)
        if lam_inner is not None:
            W = W - np.where(self._tile(self.inner), lam_inner, -lam_inner)
        assert W.shape[0] == B * self.m1
        return W @ self.X
