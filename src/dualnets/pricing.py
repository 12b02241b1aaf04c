"""Exact pricing over every realizable activation pattern (docs/design.md sections 8 and 10).

For a dual vector ``v`` (``v = A z - y``) the price of block ``b`` = (pattern c, output sign
sigma) is the largest value of its linear function over its closed cone::

    p_b(v) = max  sigma v' (E_c * sum_j s_cj D_cj X z_j)   s.t.  B_b z >= 0,  sum_j ||z_j|| <= 1.

On that cone the masks agree with the ReLUs, so the objective is ``sigma v' f(X)`` of the unit
sub-network ``z`` itself; ``p*(v) = max_b p_b(v)`` over every realizable pattern is therefore the
maximum of the dual constraint over all sub-networks of any weights (section 10).  For every
``lambda >= 0``::

    p_b(v)  <=  max_j || (c_b + B_b' lambda)_j ||_2,        c_b = A_b' v,

because ``lambda' B_b z >= 0`` on the cone (weak duality), with equality at the best lambda
(SOCP duality).  Every price here comes as an interval: ``lower``, the value of a realizable
unit sub-network, and ``upper``, that multiplier bound.  ``upper`` is valid whatever the
accuracy of the sub-solvers, so ``max_b upper_b`` is a valid bound on ``p*``.

Blocks priced (the enumeration of :mod:`dualnets.exhaustive`, under its size guard):

- one neuron per cell D and sign sigma: depth 2, m1 = 1, and the sign pairs (+, +) of depth 3
  (their best unit sub-network puts all its mass on one neuron; (-, -) outputs nothing).  With
  ``K = {w : (2D - 1) * X w >= 0}`` and ``c = sigma X'(D * v)``, ``p = ||Pi_K(c)||``, from the
  non-negative least squares ``min_{lambda >= 0} ||c + G' lambda||`` on the polar cone (G the
  signed rows);
- m1 = 2, depth 3, signs (+, -) with each realizable outer mask E: a two-group SOCP
  (Clarabel).  Its cheap bound with ``lambda_outer = 0`` (two NNLS) prunes most of them:
  only blocks whose cheap bound exceeds the running threshold are solved.

On rank-2 data (:mod:`dualnets.plane`: 1-D data with a ones column) the cells and the (+, -)
blocks come from the angles of the rows, with no LPs and no bound on n but ``MAX_CELLS``: the
sector projections are closed-form, batched bounds over the two multipliers that tie the
neurons prune all but ~0.3% of the blocks, and each block solved is a six-row SOCP.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import nnls

from .exhaustive import (TooLargeToEnumerate, check_size, enumerable_cells,
                         mixed_sign_patterns)
from .plane import (COARSE, FINE, Blocks, Plane, block_bounds, block_price, blocks_of,
                    plane_of, sector_max)
from .problem import Patterns, Problem

_CACHE: dict = {}
_CACHE_SIZE = 4


@dataclass(frozen=True, eq=False)
class PricingSet:
    """Every realizable pattern of a problem, split by how it is priced.

    cells : bool (C, n), the open cells of the arrangement of X (one-neuron blocks)
    mixed : Patterns with signs (+, -) and their outer masks (m1 = 2, depth 3, unless ``plane``;
        else empty)
    plane : the rank-2 geometry, which lists the (+, -) blocks (None otherwise)
    n_mixed : the number of (+, -) patterns
    """

    X: np.ndarray
    cells: np.ndarray
    mixed: Patterns
    m1: int
    depth: int
    plane: Plane | None = None
    n_mixed: int = 0

    @property
    def pairs_mixed(self) -> bool:
        return _prices_pairs(self.m1, self.depth)

    @property
    def n_blocks(self) -> int:
        """Blocks priced per round: both output signs of every cell and mixed pattern."""
        return 2 * (self.cells.shape[0] + self.n_mixed)

    def single(self, index: np.ndarray) -> Patterns:
        """The one-neuron patterns of cells ``index`` in the program's layout (m1 copies, +1)."""
        inner = np.repeat(self.cells[index][:, None, :], self.m1, axis=1)
        return Patterns(inner, np.ones(inner.shape[:2], np.int8),
                        np.ones((len(index), self.cells.shape[1]), bool))


def _prices_pairs(m1: int, depth: int) -> bool:
    """Whether the (+, -) two-neuron blocks are priced: m1 = 2 at depth 3."""
    return m1 == 2 and depth == 3


def build_pricing_set(problem: Problem) -> PricingSet:
    """Enumerate ``problem``'s realizable patterns (cached on X, m1 and depth).

    Raises :class:`TooLargeToEnumerate` beyond the enumeration's guard or for m1 > 2 at depth 3.
    """
    key = (problem.X.tobytes(), problem.X.shape, problem.m1, problem.depth)
    if key in _CACHE:
        return _CACHE[key]
    if problem.depth == 3 and problem.m1 > 2:
        raise TooLargeToEnumerate(
            f"exact pricing supports m1 <= 2 at depth 3, got m1 = {problem.m1}")
    pairs = _prices_pairs(problem.m1, problem.depth)
    plane = plane_of(problem.X)
    mixed, n_mixed = Patterns.empty(2, problem.n), 0
    if plane is not None:
        check_size(problem.X)
        cells = plane.cells
        if pairs:
            n_mixed = sum(plane.blocks_from(k1)[0].size for k1 in range(plane.M))
    else:
        cells = enumerable_cells(problem.X)
        if pairs:
            mixed = mixed_sign_patterns(problem.X, cells)
            n_mixed = mixed.n_patterns
    pset = PricingSet(problem.X, cells, mixed, problem.m1, problem.depth, plane, n_mixed)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = pset
    return pset


def try_pricing_set(problem: Problem) -> tuple[PricingSet | None, str]:
    """The pricing set, or None and the reason why the enumeration is refused."""
    try:
        return build_pricing_set(problem), "exact"
    except TooLargeToEnumerate as exc:
        return None, str(exc)


def cone_projection_norm(G: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray]:
    """``||Pi_K(c)||`` and ``Pi_K(c)`` for ``K = {w : G w >= 0}`` (G (m, d), c (d,)).

    Moreau: ``Pi_K(c) = c + G' lambda`` with ``lambda = argmin_{lambda >= 0} ||c + G' lambda||``,
    and ``max_{w in K, ||w|| <= 1} c'w = ||Pi_K(c)||``.  The returned norm is that of
    ``c + G' lambda`` for the NNLS lambda (>= 0), hence a valid upper bound on the maximum.
    """
    if G.shape[0] == 0:
        return float(np.linalg.norm(c)), c.copy()
    lam, _ = nnls(G.T, -c, maxiter=50 * max(G.shape))
    proj = c + G.T @ lam
    return float(np.linalg.norm(proj)), proj


@dataclass(frozen=True)
class Prices:
    """Result of pricing every realizable block against one v.

    upper : valid upper bound on ``p*(v)``
    lower : value of a realizable unit sub-network (so ``lower <= p*(v) <= upper``)
    patterns : the best-priced patterns, largest ``lower`` first
    values : their ``lower`` values
    solved : mixed blocks solved exactly (the rest were pruned by their cheap bound)
    """

    upper: float
    lower: float
    patterns: Patterns
    values: np.ndarray
    solved: int


def _signed_rows(X: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Rows of the cone ``(2D - 1) * X w >= 0``."""
    return np.where(D[:, None], X, -X)


def _cell_prices(X: np.ndarray, v: np.ndarray, cells: np.ndarray):
    """Upper and lower prices of every (cell, sigma), shapes (C, 2) (sigma = +1, -1)."""
    C = cells.shape[0]
    upper, lower = np.empty((C, 2)), np.empty((C, 2))
    for k, D in enumerate(cells):
        G = _signed_rows(X, D)
        for s, sigma in enumerate((1.0, -1.0)):
            up, proj = cone_projection_norm(G, sigma * X.T @ (D * v))
            upper[k, s] = up
            lower[k, s] = _neuron_value(X, v, sigma, proj)
    return upper, lower


def _neuron_value(X: np.ndarray, v: np.ndarray, sigma: float, w: np.ndarray) -> float:
    """``sigma v'(X w)_+ / ||w||``: the value of a realizable unit neuron (0 for w = 0)."""
    norm = np.linalg.norm(w)
    return 0.0 if norm == 0 else float(sigma * v @ np.maximum(X @ w, 0.0)) / norm


def _mixed_parts(X, v, D1, D2, E, sigma):
    """Gradient parts c1, c2 and cone rows G1, G2, O1, O2 of a (+, -) block.

    Objective ``c1'z1 + c2'z2``; cones ``G1 z1 >= 0``, ``G2 z2 >= 0`` and the outer rows
    ``O1 z1 - O2 z2 >= 0`` with ``O_j = (2E - 1) * D_j * X``.
    """
    ev = sigma * (E * v)
    c1, c2 = X.T @ (D1 * ev), -(X.T @ (D2 * ev))
    sgn = np.where(E, 1.0, -1.0)[:, None]
    O1, O2 = sgn * D1[:, None] * X, sgn * D2[:, None] * X
    return c1, c2, _signed_rows(X, D1), _signed_rows(X, D2), O1, O2


def _mixed_cheap_bound(X, v, D1, D2, E, sigma) -> float:
    """The multiplier bound with ``lambda_outer = 0``: ``max_j ||Pi_{K_j}(c_j)||``."""
    c1, c2, G1, G2, _, _ = _mixed_parts(X, v, D1, D2, E, sigma)
    return max(cone_projection_norm(G1, c1)[0], cone_projection_norm(G2, c2)[0])


def _mixed_exact(X, v, D1, D2, E, sigma) -> tuple[float, float]:
    """Upper and lower price of a (+, -) block from one Clarabel solve of its SOCP.

    Variables ``x = (z1, z2, r1, r2)``: ``max c'z`` s.t. the cone rows, ``||z_j|| <= r_j``,
    ``r1 + r2 <= 1``.  The duals of the cone rows are the multipliers lambda (clipped at 0)
    of the bound in the module docstring; the primal z gives the realizable value.
    """
    import clarabel
    c1, c2, G1, G2, O1, O2 = _mixed_parts(X, v, D1, D2, E, sigma)
    n, d = X.shape
    Z = np.zeros((n, d))
    lin = np.vstack([np.hstack([-G1, Z]), np.hstack([Z, -G2]), np.hstack([-O1, O2])])
    lin = np.hstack([lin, np.zeros((3 * n, 2))])
    budget = np.concatenate([np.zeros(2 * d), [1.0, 1.0]])[None, :]
    soc = []
    for j in range(2):
        block = np.zeros((d + 1, 2 * d + 2))
        block[0, 2 * d + j] = -1.0
        block[1:, j * d:(j + 1) * d] = -np.eye(d)
        soc.append(block)
    A = sp.csc_matrix(np.vstack([lin, budget] + soc))
    b = np.concatenate([np.zeros(3 * n), [1.0], np.zeros(2 * d + 2)])
    q = np.concatenate([-c1, -c2, [0.0, 0.0]])
    cones = [clarabel.NonnegativeConeT(3 * n + 1), clarabel.SecondOrderConeT(d + 1),
             clarabel.SecondOrderConeT(d + 1)]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-11
    sol = clarabel.DefaultSolver(sp.csc_matrix((2 * d + 2, 2 * d + 2)), q, A, b, cones,
                                 settings).solve()
    lam = np.maximum(np.asarray(sol.z)[:3 * n], 0.0)
    l1, l2, l3 = lam[:n], lam[n:2 * n], lam[2 * n:]
    upper = max(np.linalg.norm(c1 + G1.T @ l1 + O1.T @ l3),
                np.linalg.norm(c2 + G2.T @ l2 - O2.T @ l3))
    x = np.asarray(sol.x)
    z1, z2 = x[:d], x[d:2 * d]
    size = np.linalg.norm(z1) + np.linalg.norm(z2)
    out = np.maximum(np.maximum(X @ z1, 0.0) - np.maximum(X @ z2, 0.0), 0.0)
    lower = float(sigma * v @ out) / size if size > 0 else 0.0
    return float(upper), lower


def price_all(pset: PricingSet, v: np.ndarray, threshold: float, keep: int) -> Prices:
    """Price every realizable block against ``v``.

    Mixed blocks are solved exactly in decreasing order of their cheap bound until that bound
    falls to ``max(threshold, keep-th best lower price so far)``: the rest can neither reach
    ``threshold`` nor enter the ``keep`` best, and the largest of their cheap bounds enters
    ``upper``.
    """
    if pset.plane is not None:
        return _price_plane(pset, v, threshold, keep)
    X = pset.X
    cup, clow = _cell_prices(X, v, pset.cells)
    lowers = [clow.max(axis=1)]
    upper, solved = float(cup.max(initial=0.0)), 0
    allp = pset.single(np.arange(pset.cells.shape[0]))
    mixed = pset.mixed
    if mixed.n_patterns:
        best = heapq.nlargest(keep, lowers[0].tolist())
        heapq.heapify(best)
        cheap = np.array([[_mixed_cheap_bound(X, v, *_mixed_masks(mixed, i), s)
                           for s in (1.0, -1.0)] for i in range(mixed.n_patterns)])
        mlow = np.full(mixed.n_patterns, -np.inf)
        for flat in np.argsort(-cheap, axis=None):
            i, s = divmod(int(flat), 2)
            if cheap[i, s] <= max(threshold, best[0] if len(best) == keep else -np.inf):
                upper = max(upper, float(cheap[i, s]))
                break
            up, low = _mixed_exact(X, v, *_mixed_masks(mixed, i), (1.0, -1.0)[s])
            if not (np.isfinite(up) and np.isfinite(low)):     # a failed solve: keep the
                up, low = float(cheap[i, s]), -np.inf           # cheap bound, nothing found
            solved += 1
            upper, mlow[i] = max(upper, up), max(mlow[i], low)
            (heapq.heappush if len(best) < keep else heapq.heappushpop)(best, low)
        lowers.append(mlow)
        allp = _stack(allp, mixed)
    values = np.concatenate(lowers)
    top = np.argsort(-values, kind="stable")[:keep]
    top = top[values[top] > -np.inf]
    return Prices(upper, float(values.max(initial=0.0)), allp.take(top), values[top], solved)


def _mixed_masks(mixed: Patterns, i: int):
    return mixed.inner[i, 0], mixed.inner[i, 1], mixed.outer[i]


def _stack(a: Patterns, b: Patterns) -> Patterns:
    """``a`` then ``b`` without deduplication (indices stay aligned with the prices)."""
    return Patterns(np.concatenate([a.inner, b.inner]), np.concatenate([a.inner_sign,
                                                                       b.inner_sign]),
                    np.concatenate([a.outer, b.outer]))


def _price_plane(pset: PricingSet, v: np.ndarray, threshold: float, keep: int) -> Prices:
    """:func:`price_all` on rank-2 data, by levels of ever tighter (and dearer) upper bounds.

    Cells are priced in closed form.  Then for each output sign: the cheap bound of every block
    (listed by first cell); the blocks above the cut, with a coarse then a fine coupled bound;
    the blocks still above it, solved exactly, largest bound first.  The cut is
    ``max(threshold, keep-th best lower price)`` and only rises, so every item pruned stays
    below the final cut; the largest pruned bound enters ``upper``.
    """
    plane = pset.plane
    signs = (1.0, -1.0)
    p, q = plane.ends(np.arange(plane.M))
    grads = np.stack([s * (pset.cells * v) @ plane.Y for s in signs])          # (2, M, 2)
    cup, best_dir = sector_max(grads, p[None], q[None])
    clow = np.stack([s * np.maximum(best_dir[i] @ plane.Y.T, 0.0) @ v
                     for i, s in enumerate(signs)])                            # (2, M)
    upper, solved = float(np.maximum(cup, clow).max(initial=0.0)), 0   # (rounding: a realized
    #                                                                    value is a bound too)
    found = [(float(val), None) for val in clow.max(axis=0)]
    best = heapq.nlargest(keep, [val for val, _ in found])
    heapq.heapify(best)

    def cut() -> float:
        return max(threshold, best[0] if len(best) == keep else -np.inf)

    def prune(bounds: np.ndarray) -> np.ndarray:
        nonlocal upper
        above = bounds > cut()
        upper = max(upper, float(bounds[~above].max(initial=0.0)))
        return np.flatnonzero(above)

    if pset.pairs_mixed:
        for s in signs:
            u = s * v
            blocks = Blocks.concat([b.take(prune(block_bounds(plane, b, None)))
                                    for b in (blocks_of(plane, k1, u) for k1 in range(plane.M))])
            blocks = blocks.take(prune(block_bounds(plane, blocks, COARSE)))
            bounds = block_bounds(plane, blocks, FINE)
            keep_index = prune(bounds)
            for j in keep_index[np.argsort(-bounds[keep_index], kind="stable")]:
                if bounds[j] <= cut():
                    upper = max(upper, float(bounds[j]))
                    break
                up, low = block_price(plane, blocks, j, u)
                if not (np.isfinite(up) and np.isfinite(low)):  # a failed solve: keep the
                    up, low = float(bounds[j]), -np.inf         # bound, nothing found
                solved += 1
                upper = max(upper, min(up, float(bounds[j])))
                if low > -np.inf:
                    found.append((low, (blocks.k1[j], blocks.k2[j], blocks.c[j])))
                (heapq.heappush if len(best) < keep else heapq.heappushpop)(best, low)
    values = np.array([val for val, _ in found])
    top = np.argsort(-values, kind="stable")[:keep]
    top = top[values[top] > -np.inf]
    pats = [_plane_pattern(pset, i, found[i][1]) for i in top]
    patterns = (Patterns(np.stack([a for a, _, _ in pats]), np.stack([b for _, b, _ in pats]),
                         np.stack([c for _, _, c in pats]))
                if pats else Patterns.empty(pset.m1, pset.X.shape[0]))
    return Prices(upper, float(values.max(initial=0.0)), patterns, values[top], solved)


def _plane_pattern(pset: PricingSet, index: int, mixed) -> tuple:
    """(inner, inner_sign, outer) of a cell's one-neuron pattern or of a (+, -) block."""
    if mixed is None:
        one = pset.single(np.array([index]))
        return one.inner[0], one.inner_sign[0], one.outer[0]
    k1, k2, c = mixed
    return (np.stack([pset.cells[k1], pset.cells[k2]]), np.array([1, -1], np.int8),
            pset.plane.outer_mask(k1, k2, c))
