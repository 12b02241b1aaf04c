"""Exhaustive enumeration of every realizable activation pattern, for tiny problems.

1. The inner masks are the open cells of the central hyperplane arrangement ``{w : x_i . w = 0}``.
   Every cell of an essential arrangement in R^r (r >= 2) touches an extreme ray, the
   intersection of r - 1 independent hyperplanes; the cells around a ray are those of the
   hyperplanes through it, one dimension down (recursion).
2. Outer masks of a two-neuron pattern (depth 3).  With open cells C1, C2 and signs (+, -),
   ``h_i = D1_i x_i.z1 - D2_i x_i.z2`` is >= 0 where only D1 is active, < 0 where only D2 is,
   0 where neither is, and has the sign of ``x_i.(z1 - z2)`` where both are.  The outer masks are
   thus the cells of the rows in ``S = D1 & D2`` that meet the open cone ``C1 - C2``: one
   feasibility LP per candidate.  Signs (+, +) give ``E = 1``; (-, +) is (+, -) with the neurons
   swapped; (-, -) outputs nothing.

Closed cells need no patterns of their own: each point of a closed cell lies in the closure of an
open one, whose cone constraints it satisfies with the same outputs.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
from scipy.optimize import linprog

from .problem import Patterns

MAX_CELLS = 400
MAX_LPS = 30_000   # 10-30 s of LPs: n <= 15 at d = 2, n <= 5 at d = 3 (general position)
_TOL = 1e-10
_CACHE_SIZE = 8
_MIXED_CACHE: dict = {}


class TooLargeToEnumerate(ValueError):
    """The problem has too many patterns for exhaustive enumeration."""


def _unit_rows(Y: np.ndarray) -> np.ndarray:
    return Y / np.linalg.norm(Y, axis=1, keepdims=True)


def _cell_points(Y: np.ndarray) -> np.ndarray:
    """Interior points (one or more per cell) of the arrangement of the nonzero rows Y (m, r)."""
    m, r = Y.shape
    if m == 0:
        return np.zeros((1, r))
    if r == 1:
        return np.array([[1.0], [-1.0]])
    rays = []
    for S in combinations(range(m), r - 1):
        _, sv, Vt = np.linalg.svd(Y[list(S)])
        if sv[-1] < _TOL * sv[0]:
            continue
        rays.append(Vt[-1])
    if not rays:                           # all hyperplanes equal: rank-1 arrangement
        return np.vstack([_unit_rows(Y[:1]), -_unit_rows(Y[:1])])
    points = []
    for rho in np.unique(np.round(np.array(rays), 12), axis=0):
        for ray in (rho, -rho):
            points.extend(_points_around_ray(Y, ray))
    return np.array(points)


def _points_around_ray(Y: np.ndarray, ray: np.ndarray) -> list[np.ndarray]:
    vals = Y @ ray
    through = np.abs(vals) <= 1e-9 * np.linalg.norm(Y, axis=1)
    basis = np.linalg.svd(ray[None, :])[2][1:]          # orthonormal basis of ray's complement
    local = _cell_points(Y[through] @ basis.T) @ basis   # directions in R^r
    off = ~through
    points = []
    for u in local:
        step = 1.0
        if off.any():
            ratios = np.abs(vals[off]) / np.maximum(np.abs(Y[off] @ u), 1e-300)
            step = 0.5 * min(1.0, ratios.min())
        points.append(ray + step * u / max(np.linalg.norm(u), 1e-300))
    return points


def max_cells(X: np.ndarray) -> int:
    """Upper bound ``2 sum_{k < r} C(n - 1, k)`` on the number of cells (r = rank of X)."""
    n, r = X.shape[0], int(np.linalg.matrix_rank(X))
    return 2 * sum(comb(n - 1, k) for k in range(r)) if r > 0 else 1


def arrangement_cells(X: np.ndarray) -> np.ndarray:
    """All distinct masks ``1[X w >= 0]`` of open cells, shape (C, n) bool."""
    X = np.asarray(X, dtype=np.float64)
    nonzero = np.linalg.norm(X, axis=1) > 0
    U, s, Vt = np.linalg.svd(X[nonzero], full_matrices=False) if nonzero.any() else (None, [], None)
    rank = int(np.sum(np.asarray(s) > _TOL * (s[0] if len(s) else 1.0)))
    masks = np.ones((1, X.shape[0]), bool)
    if rank > 0:
        Y = X[nonzero] @ Vt[:rank].T
        points = _cell_points(Y)
        masks = np.ones((points.shape[0], X.shape[0]), bool)
        masks[:, nonzero] = (Y @ points.T).T >= 0
    return np.unique(masks, axis=0)


def _cone_meets(X: np.ndarray, D1: np.ndarray, D2: np.ndarray, S: np.ndarray,
                e: np.ndarray) -> bool:
    """Is there z1 in cell D1, z2 in cell D2 with sign(x_i.(z1 - z2)) = 2e - 1 on rows S?

    Rows of X must be nonzero; strict inequalities become ``>= 1`` since cells are cones.
    """
    zero = np.zeros_like(X)
    s1, s2 = (2.0 * D1 - 1)[:, None], (2.0 * D2 - 1)[:, None]
    se = (2.0 * e - 1)[:, None]
    A = np.vstack([np.hstack([s1 * X, zero]), np.hstack([zero, s2 * X]),
                   np.hstack([se * X[S], -se * X[S]])])
    res = linprog(np.zeros(2 * X.shape[1]), A_ub=-A, b_ub=-np.ones(A.shape[0]),
                  bounds=(None, None), method="highs")
    return res.status == 0


def check_size(X: np.ndarray) -> None:
    """Raise :class:`TooLargeToEnumerate` when ``max_cells(X) > MAX_CELLS`` (a cheap bound)."""
    bound = max_cells(X)
    if bound > MAX_CELLS:
        raise TooLargeToEnumerate(
            f"too many activation regions to enumerate (up to {bound} > {MAX_CELLS}); "
            f"use sampled patterns (random:P) for n = {X.shape[0]}, d = {X.shape[1]}")


def enumerable_cells(X: np.ndarray) -> np.ndarray:
    """:func:`arrangement_cells` of X, shape (C, n), under the ``MAX_CELLS`` guard."""
    X = np.asarray(X, dtype=np.float64)
    check_size(X)
    cells = arrangement_cells(X)
    if cells.shape[0] > MAX_CELLS:
        raise TooLargeToEnumerate(
            f"too many activation regions to enumerate ({cells.shape[0]} > {MAX_CELLS}); "
            f"use sampled patterns (random:P) for n = {X.shape[0]}, d = {X.shape[1]}")
    return cells


def mixed_sign_patterns(X: np.ndarray, cells: np.ndarray) -> Patterns:
    """Every realizable two-neuron pattern with signs (+, -): cells D1, D2 and each outer mask.

    Raises :class:`TooLargeToEnumerate` when it would take more than ``MAX_LPS`` LPs (C^3).
    The last few results are cached on (X, cells): exact pricing and the ``exhaustive``
    strategy enumerate the same data.
    """
    key = (X.tobytes(), X.shape, cells.tobytes(), cells.shape)
    if key not in _MIXED_CACHE:
        if len(_MIXED_CACHE) >= _CACHE_SIZE:
            _MIXED_CACHE.pop(next(iter(_MIXED_CACHE)))
        _MIXED_CACHE[key] = _enumerate_mixed(X, cells)
    return _MIXED_CACHE[key]


def _enumerate_mixed(X: np.ndarray, cells: np.ndarray) -> Patterns:
    C, n = cells.shape
    if C * C * C > MAX_LPS:
        raise TooLargeToEnumerate(
            f"too many outer masks to enumerate ({C} regions, up to {C ** 3} LPs > {MAX_LPS}); "
            "use m1 = 1, fewer rows, or sampled patterns (random:P)")
    inner, outer = [], []
    for D1 in cells:
        for D2 in cells:
            for E in _outer_masks(X, cells, D1, D2):
                inner.append(np.stack([D1, D2]))
                outer.append(E)
    signs = np.tile(np.array([1, -1], np.int8), (len(inner), 1))
    return Patterns(np.array(inner, bool).reshape(-1, 2, n), signs,
                    np.array(outer, bool).reshape(-1, n))


def exhaustive_patterns(X: np.ndarray, m1: int, depth: int = 3) -> Patterns:
    """Every realizable pattern of a sub-network of width m1 <= 2 on the rows of X."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if m1 > 2:
        raise TooLargeToEnumerate(f"exhaustive enumeration supports m1 <= 2, got m1 = {m1}")
    cells = enumerable_cells(X)
    C = cells.shape[0]
    ones = np.ones(n, bool)
    inner, signs, outer = [], [], []
    for D in cells:
        inner.append(np.stack([D] * m1))
        signs.append(np.ones(m1, np.int8))
        outer.append(ones)
    pats = Patterns(np.array(inner), np.array(signs), np.array(outer))
    if m1 == 2 and depth == 3:                     # depth 2: pairs add nothing new
        mixed = mixed_sign_patterns(X, cells)
        pairs = np.array(list(combinations(range(C), 2)), int).reshape(-1, 2)
        both = Patterns(cells[pairs], np.ones((len(pairs), 2), np.int8),   # signs (+, +): E = 1
                        np.ones((len(pairs), n), bool))
        pats = pats.concat(both).concat(mixed)
    return pats.unique()


def _outer_masks(X: np.ndarray, cells: np.ndarray, D1: np.ndarray, D2: np.ndarray):
    """Outer masks of the (+, -) pattern on cells D1, D2 (see module docstring).

    Zero rows of X have h_i = 0, a tie, hence E_i = 1 (they are in D1 and D2, so in ``base``).
    """
    live = np.linalg.norm(X, axis=1) > 0
    S = D1 & D2 & live
    base = ~D2 | D1                   # 1 where only D1 or neither, 0 where only D2
    if not S.any():
        yield base
        return
    for e in np.unique(cells[:, S], axis=0):
        if _cone_meets(X[live], D1[live], D2[live], S[live], e):
            E = base.copy()
            E[S] = e
            yield E
