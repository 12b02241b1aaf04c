"""The activation patterns of rank-2 data, by angles (exact pricing at any n; docs/design.md 10).

When the nonzero rows of X span a plane (1-D data with a ones column is the case of interest),
the coordinates ``Y = X V`` (V (d, 2) orthonormal) lose nothing: a sub-network's output depends
on ``z`` only through ``V'z``, and the rest only lengthens ``z``.  In the plane:

- Row i's half-plane ``{w : y_i.w >= 0}`` is bounded by the line through ``rot(y_i)``.  The L
  distinct lines give ``M = 2L`` boundary directions; sorted by angle they are centrally
  symmetric (direction ``k + L`` is ``-u_k``) and cut the circle into M open arcs, the cells:
  cell k runs from ``u_k`` to ``u_{k+1}`` and its closed cone is the sector between them (less
  than pi wide, since the rows have rank 2).  ``max_{z in K, ||z|| <= 1} c'z = ||Pi_K(c)||``
  is ``||c||`` inside the sector and ``max(0, c.u_k, c.u_{k+1})`` outside it.
- A (+, -) pair of cells (k1, k2): where both neurons are active (rows S = D1 & D2) the outer
  mask is the sign of ``y_i.(z1 - z2)``, with ``z1 - z2`` in ``K1 - K2 = K1 + K_{k2 + L}`` (the
  antipodal cell is ``-K2``): the smallest arc holding both cells, or the whole plane when that
  arc is wider than pi.  The outer masks are the arcs of the S-lines that meet it; each begins
  at the sum's first cell or at an S-direction inside the sum, and on S equals the mask of
  the cell that begins there.  The block's closed cone has six rows: the two inward normals of
  K1, of K2, and of the S-arc Q (in ``z1 - z2``).

No LPs: the enumeration is index arithmetic on the M directions, and it agrees with the LP
enumeration of :mod:`dualnets.exhaustive` (tests/test_plane.py).  Block prices are bounded in
batches, each bound valid for any multipliers: with none on Q (:func:`block_bounds`), then
over Q's two multipliers by golden-section search (:func:`coupled_bounds`); the blocks left
above the cut are solved exactly (:func:`block_price`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

ANGLE_TOL = 1e-12   # boundary lines closer than this (radians) count as one: the sliver cell
#                     between them changes no price by more than ~1e-12 relative
_RANK_TOL = 1e-10


def unit(angle: np.ndarray) -> np.ndarray:
    """Unit vectors ``(cos a, sin a)``, shape (..., 2)."""
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a_x b_y - a_y b_x`` (> 0 when b is counter-clockwise of a)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]


def _in_sector(c: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (cross(p, c) >= 0) & (cross(c, q) >= 0)


def sector_value(c: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``max c'z`` over unit z in the closed sector from p to q (counter-clockwise, <= pi wide):
    ``||c||`` inside it, else ``max(0, c.p, c.q)``.  Shapes (..., 2) -> (...)."""
    edge = np.maximum(np.maximum(dot(c, p), dot(c, q)), 0.0)
    return np.where(_in_sector(c, p, q), np.sqrt(dot(c, c)), edge)


def sector_max(c: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sector_value` and the maximizing unit direction (0 where the maximum is 0)."""
    value = sector_value(c, p, q)
    edge = np.where((dot(c, p) >= dot(c, q))[..., None], p, q)
    norm = np.sqrt(dot(c, c))[..., None]
    best = np.where(_in_sector(c, p, q)[..., None], c / np.where(norm > 0, norm, 1.0),
                    np.where((value > 0)[..., None], edge, 0.0))
    return value, best


def inward_normals(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The two rows g with ``g.z >= 0`` on the sector from p to q: shape (..., 2, 2)."""
    return np.stack([np.stack([-p[..., 1], p[..., 0]], -1),
                     np.stack([q[..., 1], -q[..., 0]], -1)], axis=-2)


@dataclass(frozen=True, eq=False)
class Plane:
    """The cells of a rank-2 arrangement, with the geometry of its (+, -) blocks.

    Y : (n, 2) coordinates of the rows; live : (n,) the nonzero rows
    angles : (M,) the boundary directions' angles, increasing (``angles[k + L] = angles[k] + pi``)
    cells : (M, n) bool, cell k's mask ``1[Y w >= 0]`` (zero rows: True)
    line_of : (n,) the line (0 .. L-1) of each live row's boundary (-1 for zero rows)
    """

    Y: np.ndarray
    live: np.ndarray
    angles: np.ndarray
    cells: np.ndarray
    line_of: np.ndarray

    @property
    def M(self) -> int:
        return self.angles.shape[0]

    @property
    def L(self) -> int:
        return self.M // 2

    @cached_property
    def live_cells(self) -> np.ndarray:
        """The cell masks on the nonzero rows, as floats (M, n)."""
        return (self.cells & self.live).astype(np.float64)

    @cached_property
    def lines(self) -> np.ndarray:
        """One-hot (n, L): the boundary line of each nonzero row."""
        onehot = np.zeros((self.Y.shape[0], self.L))
        onehot[np.flatnonzero(self.live), self.line_of[self.live]] = 1.0
        return onehot

    def ends(self, k: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Unit end directions ``u_k``, ``u_{k+1}`` of cells k."""
        k = np.asarray(k)
        return unit(self.angles[k % self.M]), unit(self.angles[(k + 1) % self.M])

    def blocks_from(self, k1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (+, -) blocks with first cell k1: second cells k2 (B,), the cell c where each
        outer arc begins (B,) and the closed S-arc as (first, last) direction (B, 2); -1 when S
        is empty (no outer rows).  See the module docstring."""
        M, L = self.M, self.L
        k2 = np.arange(M)
        S = self.live_cells[k1] * self.cells                             # (M, n), by k2
        on_line = (S @ self.lines) > 0
        s_dir = np.concatenate([on_line, on_line], axis=1)                # (k2, direction)
        anti = (k2 + L) % M                                               # -K2 is cell anti
        one, two = (anti + 1 - k1 - 1) % M + 1, (k1 + 1 - anti - 1) % M + 1
        start = np.where(anti == k1, k1, np.where(one <= two, k1, anti))
        span = np.where(anti == k1, 1, np.minimum(one, two))
        offset = (k2[None, :] - start[:, None]) % M                       # (k2, c)
        inside = (offset >= 1) & (offset < span[:, None])
        first = np.where((span > L)[:, None], s_dir, (offset == 0) | (inside & s_dir))
        empty = ~on_line.any(axis=1)
        first[empty] = False
        first[empty, k1] = True
        where = np.where(s_dir, k2[None, :], -M)
        prev = np.maximum.accumulate(np.concatenate([where - M, where], axis=1), axis=1)[:, M:]
        after = np.where(s_dir, k2[None, :], 3 * M)
        after = np.concatenate([after, after + M], axis=1)
        nxt = np.minimum.accumulate(after[:, ::-1], axis=1)[:, ::-1][:, 1:M + 1]
        rows, cols = np.nonzero(first)
        arcs = np.stack([prev[rows, cols] % M, nxt[rows, cols] % M], axis=1)
        arcs[empty[rows]] = -1
        return rows, cols, arcs

    def outer_mask(self, k1: int, k2: int, c: int) -> np.ndarray:
        """E of block (k1, k2, c): 1 where only D1 or neither neuron is active, 0 where only D2
        is, and cell c's mask where both are."""
        D1, D2 = self.cells[k1], self.cells[k2]
        return np.where(D1 & D2 & self.live, self.cells[c], ~D2 | D1)


def plane_of(X: np.ndarray) -> Plane | None:
    """The :class:`Plane` of X, or None unless its nonzero rows have rank exactly 2."""
    X = np.asarray(X, dtype=np.float64)
    live = np.linalg.norm(X, axis=1) > 0
    if live.sum() < 2:
        return None
    _, s, Vt = np.linalg.svd(X[live], full_matrices=False)
    if s.size < 2 or s[1] <= _RANK_TOL * s[0] or (s.size > 2 and s[2] > _RANK_TOL * s[0]):
        return None
    Y = X @ Vt[:2].T
    Y[~live] = 0.0
    line = np.mod(np.arctan2(Y[live, 1], Y[live, 0]) + np.pi / 2, np.pi)   # in [0, pi)
    order = np.argsort(line)
    new = np.concatenate([[True], np.diff(line[order]) > ANGLE_TOL])
    group = np.cumsum(new) - 1
    if group[-1] > 0 and line[order][-1] - line[order][0] > np.pi - ANGLE_TOL:
        group[group == group[-1]] = 0                           # the wrap-around at pi
    line_of = np.full(X.shape[0], -1)
    live_rows = np.flatnonzero(live)
    line_of[live_rows[order]] = group
    L = int(group.max()) + 1
    first = line[order][new][:L]
    angles = np.concatenate([first, first + np.pi])
    width = np.diff(np.concatenate([angles, [angles[0] + 2 * np.pi]]))
    mids = unit(angles + width / 2)
    cells = (Y @ mids.T).T >= 0
    cells[:, ~live] = True
    return Plane(Y, live, angles, cells, line_of)


def golden_min(f, lo: np.ndarray, hi: np.ndarray, steps: int) -> np.ndarray:
    """Batched golden-section search of convex 1-D functions ``f(t) -> (B,)`` on ``[lo, hi]``:
    ``steps + 2`` evaluations narrow the bracket of a minimizer to ``0.618^steps (hi - lo)``;
    returns the better of the two inner points."""
    ratio = (np.sqrt(5.0) - 1) / 2
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        left = fc <= fd                                   # a minimizer lies in [a, d]
        a, b = np.where(left, a, c), np.where(left, d, b)
        new = np.where(left, b - ratio * (b - a), a + ratio * (b - a))
        fnew = f(new)
        c, d = np.where(left, new, d), np.where(left, c, new)
        fc, fd = np.where(left, fnew, fd), np.where(left, fc, fnew)
    return np.where(fc <= fd, c, d)


def coupled_bounds(c1: np.ndarray, c2: np.ndarray, ends1: tuple, ends2: tuple,
                   normals: np.ndarray, steps: int, sweeps: int) -> np.ndarray:
    """Multiplier bounds ``min_{o in Q*} max(||Pi_K1(c1 + o)||, ||Pi_K2(c2 - o)||)`` of blocks,
    approximately: ``o = l1 n1 + l2 n2`` over the S-arc's two inward normals, by coordinate-wise
    golden-section search from ``o = 0`` (``l <= 2 (||c1|| + ||c2||)``).  Valid at whatever o it
    ends (B,); shapes: c (B, 2), ends ((B, 2), (B, 2)), normals (B, 2, 2) (zero where S is
    empty)."""
    def value(lam: np.ndarray) -> np.ndarray:
        o = lam[:, :1] * normals[:, 0] + lam[:, 1:] * normals[:, 1]
        return np.maximum(sector_value(c1 + o, *ends1), sector_value(c2 - o, *ends2))

    lam = np.zeros((c1.shape[0], 2))
    reach = 2 * (np.linalg.norm(c1, axis=1) + np.linalg.norm(c2, axis=1))
    best = value(lam)
    for _ in range(sweeps):
        for k in range(2):
            def along(t: np.ndarray, k=k) -> np.ndarray:
                trial = lam.copy()
                trial[:, k] = t
                return value(trial)
            lam[:, k] = golden_min(along, np.zeros_like(reach), reach, steps)
            best = np.minimum(best, value(lam))
    return best


@dataclass(frozen=True)
class Blocks:
    """(+, -) blocks (k1, k2, c) (B,) with their S-arcs (B, 2) and, for one output weighting
    u, their gradients ``c1 = Y'(D1 E u)``, ``c2 = -Y'(D2 E u)`` (B, 2)."""

    k1: np.ndarray
    k2: np.ndarray
    c: np.ndarray
    arcs: np.ndarray
    c1: np.ndarray
    c2: np.ndarray

    def take(self, index: np.ndarray) -> Blocks:
        return Blocks(*(a[index] for a in (self.k1, self.k2, self.c, self.arcs, self.c1,
                                           self.c2)))

    @staticmethod
    def concat(parts: list[Blocks]) -> Blocks:
        return Blocks(*(np.concatenate([getattr(b, f) for b in parts]) for f in
                        ("k1", "k2", "c", "arcs", "c1", "c2")))


def blocks_of(plane: Plane, k1: int, u: np.ndarray) -> Blocks:
    """The blocks with first cell k1 and their gradients for u.

    On S the outer mask is cell c's, so with ``T = Y'(D1 D2 Dc u)`` and ``a = Y'(D1 u)``:
    ``c1 = a - Y'(D1 D2 u) + T`` and ``c2 = -T`` (rows where only D2 is active have E = 0).
    """
    k2, c, arcs = plane.blocks_from(k1)
    D = plane.live_cells
    weighted = (D[k1] * u)[:, None] * plane.Y                              # (n, 2)
    T = np.stack([(D * weighted[:, j]) @ D.T for j in range(2)], axis=-1)  # (k2, c, 2)
    both = D @ weighted                                                    # (k2, 2)
    T = T[k2, c]
    return Blocks(np.full(k2.size, k1), k2, c, arcs, D[k1] @ weighted - both[k2] + T, -T)


COARSE, FINE = (6, 1), (30, 2)   # (golden steps, sweeps) of the two coupled passes: at
#                                   n = 50 the coarse pass keeps 3% of the blocks, the fine 1%


def block_bounds(plane: Plane, blocks: Blocks, effort: tuple[int, int] | None) -> np.ndarray:
    """Upper prices of ``blocks`` (B,): ``max_j ||Pi_Kj(c_j)||`` (no outer multipliers) when
    ``effort`` is None, else :func:`coupled_bounds` with ``(steps, sweeps) = effort``."""
    ends1, ends2 = plane.ends(blocks.k1), plane.ends(blocks.k2)
    if effort is None:
        return np.maximum(sector_value(blocks.c1, *ends1), sector_value(blocks.c2, *ends2))
    normals = np.zeros((blocks.k1.size, 2, 2))
    has = blocks.arcs[:, 0] >= 0
    normals[has] = inward_normals(unit(plane.angles[blocks.arcs[has, 0]]),
                                  unit(plane.angles[blocks.arcs[has, 1]]))
    return coupled_bounds(blocks.c1, blocks.c2, ends1, ends2, normals, *effort)


def block_price(plane: Plane, blocks: Blocks, j: int,
                u: np.ndarray) -> tuple[float, float]:
    """Upper and lower price of block j of ``blocks``.

    One Clarabel solve of ``max c1'z1 + c2'z2`` s.t. ``G1 z1 >= 0``, ``G2 z2 >= 0``,
    ``N (z1 - z2) >= 0`` (two rows each: the inward normals of K1, K2 and the S-arc),
    ``||z_j|| <= r_j``, ``r1 + r2 <= 1``.  ``upper = max_j ||c_j + (B' lambda)_j||`` at the
    solver's cone duals clipped to >= 0, valid for any lambda >= 0; ``lower`` is the value
    ``u'((Y z1)_+ - (Y z2)_+)_+ / (||z1|| + ||z2||)`` of the primal point, realizable.
    """
    import clarabel
    import scipy.sparse as sp
    k1, k2, arc, c1, c2 = (blocks.k1[j], blocks.k2[j], blocks.arcs[j], blocks.c1[j],
                           blocks.c2[j])
    G1 = inward_normals(*plane.ends(k1))
    G2 = inward_normals(*plane.ends(k2))
    N = np.zeros((0, 2)) if arc[0] < 0 else \
        inward_normals(unit(plane.angles[arc[0]]), unit(plane.angles[arc[1]]))
    r = N.shape[0]
    Z = np.zeros((2, 2))
    lin = np.vstack([np.hstack([-G1, Z]), np.hstack([Z, -G2]), np.hstack([-N, N])])
    lin = np.hstack([lin, np.zeros((4 + r, 2))])
    soc = np.zeros((6, 6))
    soc[0, 4] = soc[3, 5] = -1.0
    soc[1:3, 0:2] = soc[4:6, 2:4] = -np.eye(2)
    A = sp.csc_matrix(np.vstack([lin, [[0, 0, 0, 0, 1.0, 1.0]], soc]))
    b = np.concatenate([np.zeros(4 + r), [1.0], np.zeros(6)])
    cones = [clarabel.NonnegativeConeT(5 + r), clarabel.SecondOrderConeT(3),
             clarabel.SecondOrderConeT(3)]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-12
    sol = clarabel.DefaultSolver(sp.csc_matrix((6, 6)), -np.concatenate([c1, c2, [0.0, 0.0]]),
                                 A, b, cones, settings).solve()
    lam = np.maximum(np.asarray(sol.z)[:4 + r], 0.0)
    coupling = N.T @ lam[4:]
    upper = max(np.linalg.norm(c1 + G1.T @ lam[:2] + coupling),
                np.linalg.norm(c2 + G2.T @ lam[2:4] - coupling))
    x = np.asarray(sol.x)
    z1, z2 = x[:2], x[2:4]
    size = np.linalg.norm(z1) + np.linalg.norm(z2)
    out = np.maximum(np.maximum(plane.Y @ z1, 0.0) - np.maximum(plane.Y @ z2, 0.0), 0.0)
    lower = float(u @ out) / size if size > 0 else 0.0
    return max(float(upper), lower), lower
