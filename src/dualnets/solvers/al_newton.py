"""Semismooth Newton steps for the augmented Lagrangian subproblem (``al`` with ``inner="newton"``).

The subproblem of :mod:`.al` is ``min_z phi(z) = f(z) + beta sum_g ||z_g||`` with
``f(z) = L(Az) + 1/(2 rho)||(lam - rho B z)_+||^2``, whose generalized Hessian is
``H = A'WA + rho B_S' B_S`` (``S``: rows with ``lam - rho Bz > 0``; ``W = grad^2 L(Az)``, the
identity for the squared loss, where ``f`` is piecewise quadratic, and ``diag(s (1 - s))`` for
the logistic loss).
One step, in the spirit of SSNAL (Li, Sun & Toh, 2018) applied to the primal:

1. a proximal gradient step ``z' = prox_{t beta}(z - t grad f(z))``, ``t = 1/L`` with ``L`` an
   upper bound of ``lmax(H)``, fixes which groups are zero and measures the optimality residual;
2. on the nonzero groups ``N`` of ``z'``, where ``phi`` is smooth,
   ``(H_NN + diag_g beta/||z'_g|| (I - u_g u_g') + (eps + tau) I) dz = -(grad f(z')_N +
   beta u_N)`` with ``u_g = z'_g / ||z'_g||`` and the Levenberg-Marquardt damping
   ``tau = ||rhs|| / (STEP_RATIO ||z'_N||)`` (it vanishes with the residual), solved by a
   dense Cholesky of the system folded onto the patterns (:mod:`.al_fold`: at most
   ``|N| d / 2`` unknowns, as ``A = [A_+, -A_+]``; planted n = 1200, d = 10, P = 50: 22 s
   to 6.3 s for the same 286 steps), or, when ``n < |N| d / LOW_RANK_RATIO``, by
   Woodbury: everything but ``A_N'A_N`` is block diagonal per network block, so only an
   ``n x n`` matrix is factored (checked by iterative refinement; dense if that fails);
3. Armijo backtracking on ``phi`` along ``dz``, where a group whose step would carry it
   through zero (``<z'_g, z'_g + a dz_g> <= 0``) is set to zero instead (a bent line search,
   as in projected Newton methods): without it, groups that are zero at the optimum circled
   around zero and the subproblem residual stalled.  Bent, groups that are small but nonzero
   at the optimum can cycle through zero instead (features scaled by 1e3, m1 = 3, a warm
   dual-search round: residual stuck at ~7e-4 beta, 60 s uncertified; Clarabel 1.4 s), so a
   subproblem that ends ``NEWTON_STEPS`` steps unsolved switches the bending for the next one
   (that round: certified in 7-8 s).

Only ``(Gd)^2``-sized pieces are formed, never the lifted matrix: ``A'A`` once, in chunks of
rows (``A = [A_+, -A_+]``, so only ``K = A_+'A_+`` is computed and kept), and ``B_S'B_S``,
which is block diagonal (a ``d x d`` block per group for the inner cones, ``(m1 d)^2`` per
block for the outer cones), kept as sums of the upper triangles of ``x_i x_i'``
(:class:`ConeSums`).  A loss whose Hessian ``W`` changes with the point (logistic) has no
fixed ``A'WA``: each step forms ``A_+'WA_+`` on the positive groups of the nonzero ones'
patterns from their columns in row chunks (dense solve, at most ``n (|N| d)^2`` flops), or
scales the rows of ``A_N`` by ``sqrt(W)`` (Woodbury); ``A'A`` then only
bounds ``lmax(H)``, by ``curvature lmax(A'A)``.  Everything here is float64; gradients and
values come from the caller's :class:`TorchLifting` in its dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.sparse.linalg import eigsh

from .al_fold import Folding, cholesky_apply
from .al_inner import InnerSolver
from .torch_ops import TorchLifting, Workspace

MAX_VARIABLES = 5000      # G d above this: the dense Newton system is too large (use fista)
MAX_LOW_RANK_ENTRIES = 2.5e7   # n G d: the columns of A held by the low-rank solve (200 MB)
MAX_LOW_RANK_FLOPS = 1e10      # n^2 G d: one A D^{-1} A' product (~0.5 s on one core)
EXACT_EIGEN = 400         # rows up to which lmax(A'A) comes from a full eigvalsh
LANCZOS_TOL = 1e-8        # above: Lanczos to this relative residual, ...
LANCZOS_MARGIN = 1.0 + 1e-6   # ... raised by this factor (a Ritz value is a lower bound)
CHUNK_ENTRIES = 1 << 23   # rows of the lifted matrix per chunk of the Gram product
ARMIJO = 1e-4
MAX_HALVINGS = 30
VALUE_NOISE = 100.0       # round-off allowed in the Armijo test, in machine epsilons of phi
RIDGE = 1e-12             # eps = RIDGE * max diag(H): A'A is singular (A = [A_+, -A_+])
REFINEMENTS = 2           # iterative refinement steps of the low-rank (Woodbury) solve
LOW_RANK_RESIDUAL = 1e-4   # relative residual it must reach, else the dense solve is used:
#                           an inexact Newton direction (the line search checks descent).  At
#                           1e-10, 124 of 240 systems of a breast_cancer restricted program
#                           (cond(D) ~ 1e17, refinement stalls at ~7e-6, the floor of the
#                           residual's own round-off) went to the dense solve: 50 of its 70 s,
#                           for the same 247 Newton iterates as with 1e-4 (19 s)
LOW_RANK_RATIO = 4         # Woodbury rather than the folded dense solve when n < a d / this
#                           (flops n^2 a d against (a d)^3 / 24; measured n = 120 and 200 at
#                           a d = 720: 2.1 ms against 2.8, and 3.9 against 2.6)
RECOUNT_FRACTION = 0.02   # more switched cone rows than this: recount with one GEMM
NEWTON_STEPS = 50         # cap on Newton steps per subproblem
MAX_STALLS = 3            # line searches in a row without decrease that end a subproblem
STEP_RATIO = 10.0          # damping ||rhs|| / (STEP_RATIO ||z_N||): the step stays within
#                           ~STEP_RATIO ||z_N|| (A'A is singular; undamped steps of 1e6 ||z||
#                           needed 33 halvings, more than the line search allows)
CURVATURE_CAP = 1e8       # beta/||z_g|| capped at this times max diag(H): a group of norm
#                           ~1e-30 (float32 round-off) made the matrix numerically indefinite


def dense_fits(n_groups: int, d: int) -> bool:
    """Whether the dense Newton system (``G d`` unknowns) is small enough."""
    return n_groups * d <= MAX_VARIABLES


def low_rank_fits(n: int, n_groups: int, d: int) -> bool:
    """Whether the Woodbury solve pays and fits: ``n < G d / 2``, the ``n x G d`` columns of
    ``A`` within ``MAX_LOW_RANK_ENTRIES``, and ``n^2 G d`` (the flops of ``A D^{-1} A'``)
    within ``MAX_LOW_RANK_FLOPS``."""
    Gd = n_groups * d
    return 2 * n < Gd and n * Gd <= MAX_LOW_RANK_ENTRIES and n * n * Gd <= MAX_LOW_RANK_FLOPS


def newton_fits(n: int, n_groups: int, d: int) -> bool:
    """Whether ``inner="newton"`` can run: a dense or a low-rank Newton system."""
    return dense_fits(n_groups, d) or low_rank_fits(n, n_groups, d)


def largest_eigenvalue(M: torch.Tensor) -> float:
    """An upper bound of ``lmax(M)`` for a symmetric positive semidefinite ``M``: exact
    (``eigvalsh``) up to ``EXACT_EIGEN`` rows, else Lanczos (``scipy.sparse.linalg.eigsh``, on
    the CPU) to relative residual ``LANCZOS_TOL``, raised by ``LANCZOS_MARGIN``.  A full
    ``eigvalsh`` of the 1984-row Gram matrix took 0.5 s of every 4 s working-set round
    (breast_cancer, loaded machine)."""
    if M.shape[0] <= EXACT_EIGEN:
        return float(torch.linalg.eigvalsh(M)[-1])
    A = M.cpu().numpy()
    start = np.random.default_rng(0).standard_normal(A.shape[0])   # ARPACK's own start is
    #                             random per call: rho, and every iterate after it, varied run to run
    top = eigsh(A, k=1, which="LA", tol=LANCZOS_TOL, v0=start, return_eigenvectors=False)
    return float(top[0]) * LANCZOS_MARGIN


def lifted_columns(weight: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Columns ``weight_g * X`` of the lifted matrix for the rows of ``weight`` (k, n): an
    (n, k d) matrix, group-major (the layout of Z flattened)."""
    return (weight.T[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)


def lifted_columns_t(weight: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The transpose of :func:`lifted_columns`, ``(k d, n)``, contiguous (rows group-major)."""
    return (weight[:, None, :] * X.T[None, :, :]).reshape(-1, X.shape[0])


class _BlockBatches:
    """A block-diagonal matrix over the active groups, one block per network block, batched by
    width: a block with ``k`` active groups is ``k d`` wide.  ``order`` sorts the active groups
    by (k, block), so that every width's blocks are one contiguous run of the variables."""

    def __init__(self, block: torch.Tensor, d: int):
        """``block``: the network block of every active group (sorted, as the groups are)."""
        self.d = d
        _, slot, count = torch.unique_consecutive(block, return_inverse=True, return_counts=True)
        width = count[slot]                                   # k of each active group's block
        key = width * block.numel() + slot                    # groups of a block stay in order
        self.order = torch.argsort(key, stable=True)
        self.rank = torch.empty_like(self.order)
        self.rank[self.order] = torch.arange(block.numel(), device=block.device)
        self.runs = []                           # (k, first position, blocks) of every width
        first = 0
        for k in torch.unique(count).tolist():
            groups = int((width == k).sum())
            self.runs.append((k, first, groups // k))
            first += groups

    def blocks(self, p: torch.Tensor, q: torch.Tensor, C: torch.Tensor,
               ridge: float) -> list[torch.Tensor]:
        """The (blocks, k d, k d) batches of the matrix whose ``(p, q)`` blocks are ``C``
        (positions among the active groups, ``p <= q``, the ``(q, p)`` block is ``C'``), plus
        ``ridge`` on the diagonal."""
        d, out = self.d, []
        rp, rq = self.rank[p], self.rank[q]
        for k, first, count in self.runs:
            M = torch.zeros((count, k, k, d, d), dtype=C.dtype, device=C.device)
            mine = (rp >= first) & (rp < first + count * k)
            lp, lq, Cm = rp[mine] - first, rq[mine] - first, C[mine]
            M.index_put_((lp // k, lp % k, lq % k), Cm, accumulate=True)
            off = lp != lq
            M.index_put_((lq[off] // k, lq[off] % k, lp[off] % k), Cm[off].mT, accumulate=True)
            M = M.permute(0, 1, 3, 2, 4).reshape(count, k * d, k * d)
            M.diagonal(dim1=1, dim2=2).add_(ridge)
            out.append(M)
        return out

    def apply(self, batches: list[torch.Tensor], V: torch.Tensor) -> torch.Tensor:
        """The block-diagonal matrix (one tensor per width, as :meth:`blocks` gives) times
        ``V`` (a d, c), in ``order``."""
        out = torch.empty_like(V)
        d = self.d
        for M, (k, first, count) in zip(batches, self.runs):
            rows = slice(first * d, (first + count * k) * d)
            torch.bmm(M, V[rows].view(count, k * d, -1), out=out[rows].view(count, k * d, -1))
        return out

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """A vector over the active groups (group-major) in ``order``."""
        return x.view(-1, self.d)[self.order].flatten()

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`gather`."""
        out = torch.empty_like(x).view(-1, self.d)
        out[self.order] = x.view(-1, self.d)
        return out.flatten()


def upper_products(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(upper, XX)``: the upper-triangle indices of a d x d matrix and ``XX`` (n,
    d(d+1)/2), the upper triangles of the rows' ``x_i x_i'``."""
    upper = torch.triu_indices(X.shape[1], X.shape[1], device=X.device)
    return upper, X[:, upper[0]] * X[:, upper[1]]


def unpack_symmetric(values: torch.Tensor, upper: torch.Tensor, d: int) -> torch.Tensor:
    """Symmetric (k, d, d) matrices from their upper triangles ``values`` (k, d(d+1)/2)."""
    out = torch.empty((values.shape[0], d, d), dtype=values.dtype, device=values.device)
    out[:, upper[0], upper[1]] = values
    out[:, upper[1], upper[0]] = values
    return out


def lifted_weights(ops: TorchLifting) -> torch.Tensor:
    """A's column weights ``sigma E s D`` per group (depth 2: ``sigma s D``), (G, n) float64:
    the columns of group ``g`` are ``weight_g * X``."""
    if ops.depth == 3:
        return ops.coef.to(torch.float64) * ops.out_weight.to(torch.float64).repeat_interleave(
            ops.m1, dim=0)
    return ops.coef_out.to(torch.float64)


def prox_step(Z: torch.Tensor, grad: torch.Tensor, t: float,
              beta: float) -> tuple[torch.Tensor, float]:
    """``z' = prox_{t beta}(z - t grad)`` and ``max_g ||z_g - z'_g|| / (t beta)``.

    The residual is computed without the cancellation of ``z - z'``, which at large ``rho``
    (``t ~ 1e-10``) is a few ulps of ``z`` and read as 1e-6: on a group that stays nonzero,
    ``(z - z')_g / t = grad_g + beta w_g / ||w_g||`` with ``w = z - t grad``.
    """
    W = Z - t * grad
    norms = torch.linalg.vector_norm(W, dim=1, keepdim=True)
    keep = norms > t * beta
    unit = W / norms.clamp_min(torch.finfo(W.dtype).tiny)
    Zp = torch.where(keep, W - (t * beta) * unit, 0.0)
    kept = torch.linalg.vector_norm(grad + beta * unit, dim=1) / beta
    dropped = torch.linalg.vector_norm(Z, dim=1) / (t * beta)
    return Zp, float(torch.where(keep.squeeze(1), kept, dropped).max())


class ConeSums:
    """``sum_{i in S} x_i x_i'`` (upper triangles) over the active rows of every cone, kept
    current from one step to the next by adding and removing only the rows that switched.

    ``inner`` (G, d(d+1)/2): rows of group g's inner cone with ``mu_i > 0``.  ``outer`` (B, m1,
    m1, d(d+1)/2), depth 3: rows of block b's outer cone with ``mu_o > 0``, weighted by
    ``D_bj D_bk`` (the signs ``s_j s_k`` and ``rho`` are applied at assembly).  A full
    recount is one GEMM with ``XX`` (n x d(d+1)/2); an update costs O(switched rows), which
    at n = 64000 replaced ~0.25 s per Newton step by a few ms.
    """

    def __init__(self, ops: TorchLifting, XX: torch.Tensor):
        self.ops, self.XX = ops, XX
        self.inner = self.outer = None
        self.S_inner = self.S_outer = None

    def update(self, ws: Workspace) -> None:
        S_inner = ws.mu_i > 0
        self.inner = self._track(S_inner, self.S_inner, self.inner, self._inner_weights,
                                 self._recount_inner)
        self.S_inner = S_inner
        if self.ops.depth == 3:
            S_outer = ws.mu_o > 0
            self.outer = self._track(S_outer, self.S_outer, self.outer, self._outer_weights,
                                     self._recount_outer)
            self.S_outer = S_outer

    def _track(self, S, S_old, sums, weights, recount):
        if S_old is not None:
            rows, cols = torch.nonzero(S ^ S_old, as_tuple=True)
            if rows.numel() <= RECOUNT_FRACTION * S.numel():
                sign = torch.where(S[rows, cols], 1.0, -1.0).to(self.XX.dtype)
                for index, w in weights(rows, cols):
                    sums.view(-1, sums.shape[-1]).index_add_(
                        0, index, (sign * w)[:, None] * self.XX[cols])
                return sums
        return recount(S)

    def _recount_inner(self, S: torch.Tensor) -> torch.Tensor:
        """Inner sums from scratch: ``S`` (G, n)."""
        return S.to(self.XX.dtype) @ self.XX

    def _recount_outer(self, S: torch.Tensor) -> torch.Tensor:
        """Outer sums from scratch: ``S`` (B, n).  (With m1 = 1, B = G: the kind of the
        cones is never guessed from the shape.)"""
        f64 = self.XX.dtype
        B, n = S.shape
        m1 = self.ops.m1
        D = self.ops.inner.view(B, m1, n)
        sums = torch.empty((B, m1, m1, self.XX.shape[1]), dtype=f64, device=self.XX.device)
        for j in range(m1):
            for k in range(m1):
                sums[:, j, k] = (S & D[:, j] & D[:, k]).to(f64) @ self.XX
        return sums

    def _inner_weights(self, rows, cols):
        yield rows, torch.ones_like(cols, dtype=self.XX.dtype)

    def _outer_weights(self, rows, cols):
        m1, inner = self.ops.m1, self.ops.inner
        for j in range(m1):
            for k in range(m1):
                both = inner[rows * m1 + j, cols] & inner[rows * m1 + k, cols]
                yield (rows * m1 + j) * m1 + k, both.to(self.XX.dtype)


class NewtonInner(InnerSolver):
    """Gram pieces of one problem and the Newton step on its AL subproblem.

    Its subproblem solves are accurate enough to grow ``rho`` 10x whenever infeasibility
    limits the certificate, and the outer loop converges in ~10 multiplier updates.
    ``rho_defaults``: (100, 10) took 172-186 steps to 1e-6 at planted n = 1600 against 215
    with fista's (10, 5); float32 keeps (10, 5): with (100, 10) one of 16 float32 test
    problems stalled at gap 2e-4 (rounding noise grows with rho), with (10, 10) another one
    did, with (10, 5) all 16 certified at 1e-4.  ``rho`` grows at most 1e5x (n = 16000 capped
    at 1e3 took 50 updates from gap 1.5e-5 to 1e-6).

    Parameters
    ----------
    ops : TorchLifting
        Operators in the working dtype (gradients, values, cone masks).
    gram : tensor or None
        ``K = A_+'A_+`` when the loss is not over the samples of ``ops`` (the row set of
        :mod:`.al_rows`: its cones cover some samples, its loss every one); then the
        system is always the dense, folded one.
    """

    name = "newton"
    max_rho_growth = 1e5
    softens = True
    step_cap = NEWTON_STEPS

    def __init__(self, ops: TorchLifting, gram: torch.Tensor | None = None):
        self.rho_defaults = (10.0, 5.0) if ops.dtype == torch.float32 else (100.0, 10.0)
        f64, dev = torch.float64, ops.device
        self.ops, self.G, self.d, self.m1 = ops, ops.G, ops.d, ops.m1
        self.loss = ops.loss
        X = ops.X.to(f64)
        self.upper, self.XX = upper_products(X)     # XX (n, d(d+1)/2): x_i x_i'
        weight = lifted_weights(ops)
        # columns of A for the low-rank solve, kept only where it can be used
        self.X64 = X
        self.col_weight = weight if gram is None and low_rank_fits(ops.n, self.G, self.d) \
            else None
        self.dense = gram is not None or dense_fits(self.G, self.d)
        if self.dense:
            K = self.half_gram(X, weight[: self.G // 2]) if gram is None else gram
            self.gram = K                       # A'A = [[K, -K], [-K, K]]
            self.gram_diagonal = K.diagonal().repeat(2)
            lmax = 2.0 * largest_eigenvalue(K) if K.numel() else 0.0
        else:                                   # low rank only: A (n x G d) is small
            A = lifted_columns(weight, X)
            self.gram, self.gram_diagonal = None, (A * A).sum(dim=0)
            lmax = largest_eigenvalue(A @ A.T)
        if not self.loss.identity_hessian:      # A'WA changes with the point: no fixed Gram
            self.gram = self.gram_diagonal = None
        self.lmax_loss = self.loss.curvature * lmax       # >= lmax(A'WA)
        xtx = float(torch.linalg.eigvalsh(X.T @ X)[-1])
        self.lmax_cones = xtx * (1 + self.m1 if ops.depth == 3 else 1)   # >= lmax(B'B)
        self.block_of = torch.arange(self.G, device=dev) // self.m1
        self.sign = ops.group_sign.to(f64)
        self.cones = ConeSums(ops, self.XX)
        self._evaluated = None   # the point whose forward pass is in the workspace
        self.stalled = False     # the last step's line search found no decrease
        self.bend = True         # the line search sets groups that cross zero to zero

    def forget(self) -> None:
        """The workspace or the multipliers changed: the next step starts from scratch."""
        self._evaluated = None

    @staticmethod
    def half_gram(X: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``K = A_+' A_+`` with columns ``weight_g * X`` of A_+, accumulated over row chunks."""
        Gh, n = weight.shape
        d = X.shape[1]
        K = torch.zeros((Gh * d, Gh * d), dtype=X.dtype, device=X.device)
        rows = max(1, CHUNK_ENTRIES // max(Gh * d, 1))
        for start in range(0, n, rows):
            sl = slice(start, start + rows)
            Ac = lifted_columns(weight[:, sl], X[sl])
            K.addmm_(Ac.T, Ac)
        return K

    def lipschitz(self, rho: float) -> float:
        """Upper bound of ``lmax(A'A + rho B'B)``."""
        return self.lmax_loss + rho * self.lmax_cones

    def solve(self, Z, sub, stop, on_step):
        """Newton steps until solved, ``NEWTON_STEPS`` steps, ``MAX_STALLS`` line searches
        in a row without decrease (round-off: back to the outer loop, unsolved, so that
        ``rho`` neither grows nor softens) or ``stop()``."""
        solved, steps, stalls = False, 0, 0
        while not solved and steps < NEWTON_STEPS and stalls < MAX_STALLS and not stop():
            self.stalled = False
            Z, _, solved = self.step(Z, sub.lam_i, sub.lam_o, sub.rho, sub.beta, sub.eta, sub.ws)
            stalls = stalls + 1 if self.stalled else 0
            steps += 1
            on_step(Z)
        if not solved and steps >= NEWTON_STEPS:
            self.bend = not self.bend            # module docstring, step 3
        return Z, solved, steps

    # one step --------------------------------------------------------------------------------
    def step(self, Z: torch.Tensor, lam_i: torch.Tensor, lam_o: torch.Tensor, rho: float,
             beta: float, eta: float, ws: Workspace) -> tuple[torch.Tensor, float, bool]:
        """``(Z_next, residual, done)``: ``residual = max_g ||(z - z')_g|| / (t beta)`` at ``Z``;
        ``done`` only when it is ``<= eta`` (then ``Z_next = z'``, the prox point).  Without
        a Newton step (no active group, no definite system, no descent, or a line search that
        found no decrease above round-off) ``Z_next`` is the prox point and ``done`` False."""
        ops = self.ops
        t = 1.0 / self.lipschitz(rho)
        if Z is self._evaluated:                 # the last accepted trial: r, mu are in ws
            grad = ops.al_gradient_after_value(ws)
        else:
            grad = ops.al_gradient(Z, lam_i, lam_o, rho, ws)
        self._evaluated = None
        Zp, residual = prox_step(Z, grad, t, beta)
        if residual <= eta:
            return Zp, residual, True
        grad = ops.al_gradient(Zp, lam_i, lam_o, rho, ws).clone()
        phi0 = ops.al_value_after_gradient(rho, ws) + beta * float(
            torch.linalg.vector_norm(Zp, dim=1).sum())
        h = None if self.loss.identity_hessian else \
            self.loss.hessian_diagonal(ws.yhat, ops.y).to(torch.float64)     # W at z'
        norms = torch.linalg.vector_norm(Zp, dim=1)
        active = torch.nonzero(norms > 0).flatten()
        if active.numel() == 0:
            return Zp, residual, False
        u = Zp[active].to(torch.float64) / norms[active, None].to(torch.float64)
        rhs = -(grad[active].to(torch.float64) + beta * u).flatten()
        damping = float(torch.linalg.vector_norm(rhs)) / (
            STEP_RATIO * float(torch.linalg.vector_norm(Zp[active])))
        p, q, C, scale = self._local_terms(active, u, norms[active].to(torch.float64), rho,
                                           beta, ws, damping, h)
        direction, accurate = None, False
        if self.col_weight is not None and (
                not self.dense or LOW_RANK_RATIO * self.ops.n < active.numel() * self.d):
            direction, accurate = self._solve_low_rank(active, p, q, C, rhs, scale, h)
        if not accurate and self.dense:
            direction = self._solve_dense(active, p, q, C, rhs, scale, h)
        # without A'A an inaccurate low-rank direction is still tried: the line search
        # accepts it only if it descends
        if direction is None:                    # not numerically definite: the prox step
            return Zp, residual, False
        slope = -float(torch.vdot(rhs, direction))
        direction = direction.view(-1, self.d)
        if not slope < 0:                        # not a descent direction: the prox step
            return Zp, residual, False
        step = torch.zeros_like(Zp)
        step[active] = direction.to(Zp.dtype)
        alpha, noise = 1.0, VALUE_NOISE * torch.finfo(Zp.dtype).eps * abs(phi0)
        for _ in range(MAX_HALVINGS):
            trial = Zp + alpha * step
            if self.bend:
                crossed = (trial * Zp).sum(dim=1) <= 0      # bent onto zero, not through it
                trial[crossed] = 0.0
            value = ops.al_value(trial, lam_i, lam_o, rho, ws) + beta * float(
                torch.linalg.vector_norm(trial, dim=1).sum())
            if value <= phi0 + ARMIJO * alpha * slope + noise:
                self._evaluated = trial
                return trial, residual, False
            alpha *= 0.5
        # no decrease along the direction: the prox point (a descent step), and not solved;
        # calling this "solved" grew rho 10x per multiplier update on a stalled subproblem
        # (test grid, depth 3: rho 2e2 -> 2e8 and a gap of 0.9 for 60 s)
        self.stalled = True
        return Zp, residual, False

    def _local_terms(self, active: torch.Tensor, u: torch.Tensor, norms: torch.Tensor,
                     rho: float, beta: float, ws: Workspace, damping: float = 0.0,
                     h: torch.Tensor | None = None):
        """The Newton matrix less ``A'WA``, as blocks ``(p, q, C)`` with ``p <= q`` (positions
        in ``active``; ``C`` is (k, d, d), and the ``(q, p)`` block is its transpose): the cone
        Hessian ``rho B_S'B_S`` at the point whose multipliers are in ``ws`` (mu > 0 marks S)
        and the norms' curvature.  Also the largest diagonal entry of ``H = A'WA + rho
        B_S'B_S`` (``W = diag(h)``, the identity when ``h`` is None; the scale of the ridge;
        the curvature ``beta/||z_g||`` is left out of it, as it blows up on groups near zero).
        ``damping`` is added to the diagonal of every group's block (the Levenberg-Marquardt
        term of :meth:`step`)."""
        a, d, f64 = active.numel(), self.d, torch.float64
        pos = torch.arange(a, device=active.device)
        self.cones.update(ws)
        p, q, C = [pos], [pos], [self._unpack(rho * self.cones.inner[active])]
        if self.ops.depth == 3:
            # rows of the outer cone of block b: rho X' diag(S_b s_j D_j s_k D_k) X for j, k in b
            b = self.block_of[active]
            pp, qq = torch.nonzero((b[:, None] == b[None, :]).triu(), as_tuple=True)
            j, k = active[pp] % self.m1, active[qq] % self.m1
            weight = rho * self.sign[active[pp]] * self.sign[active[qq]]
            p, q = p + [pp], q + [qq]
            C.append(self._unpack(weight[:, None] * self.cones.outer[b[pp], j, k]))
        p, q, C = torch.cat(p), torch.cat(q), torch.cat(C)
        if h is None:
            diagonal = self.gram_diagonal.view(self.G, d)[active].clone()
        else:                                   # diag(A_N'WA_N), group by group
            diagonal = (self._column_weights(active) ** 2 * h) @ (self.X64 ** 2)
        same = p == q
        diagonal.index_add_(0, p[same], C[same].diagonal(dim1=1, dim2=2))
        scale = float(diagonal.max())
        eye = torch.eye(d, dtype=f64, device=active.device)
        weight = (beta / norms).clamp_max(CURVATURE_CAP * max(scale, beta))
        curvature = weight[:, None, None] * (eye - u[:, :, None] * u[:, None, :]) + \
            damping * eye
        return torch.cat([p, pos]), torch.cat([q, pos]), torch.cat([C, curvature]), scale

    def _column_weights(self, rows: torch.Tensor) -> torch.Tensor:
        """A's column weights ``sigma E s D`` (depth 2: ``sigma s D``) of the groups ``rows``,
        shape (len(rows), n), float64."""
        ops = self.ops
        if ops.depth == 3:
            return ops.coef[rows].to(torch.float64) * ops.out_weight[rows // self.m1].to(
                torch.float64)
        return ops.coef_out[rows].to(torch.float64)

    def _solve_dense(self, active: torch.Tensor, p: torch.Tensor, q: torch.Tensor,
                     C: torch.Tensor, rhs: torch.Tensor, scale: float,
                     h: torch.Tensor | None = None) -> torch.Tensor | None:
        """The Newton direction by the folded system (:mod:`.al_fold`), or, if its elimination
        fails, by the full dense one; None if neither factorizes."""
        fold = Folding(active, self.G // 2, self.m1, self.d)
        direction = fold.solve(self._half_block(fold.U, h), p, q, C, rhs, RIDGE * scale,
                               lambda R: ridged_cholesky(R, scale))
        if direction is not None:
            return direction
        return self._solve(self._dense(active, p, q, C, h), rhs, scale)

    def _half_block(self, half_groups: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """``A_+'WA_+`` on the columns of the (positive-sign) groups ``half_groups`` (sorted,
        distinct)."""
        if h is not None:
            return self.half_gram(self.X64, self._column_weights(half_groups) * h.sqrt())
        if half_groups.numel() == self.G // 2:
            return self.gram                    # the stored matrix itself: not to be modified
        return self._gram_block(half_groups)

    def _gram_block(self, half_groups: torch.Tensor) -> torch.Tensor:
        """A copy of ``K = A_+'A_+`` on the columns of the positive groups ``half_groups``
        (repeats allowed)."""
        d = self.d
        cols = (half_groups[:, None] * d + torch.arange(d, device=half_groups.device)).flatten()
        return self.gram.index_select(0, cols).index_select(1, cols)

    def _dense(self, active: torch.Tensor, p: torch.Tensor, q: torch.Tensor,
               C: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """The Newton matrix ``A'WA + blocks`` on the groups ``active``, dense (``W =
        diag(h)``, the identity when ``h`` is None: a slice of the Gram matrix)."""
        a, d = active.numel(), self.d
        if h is not None:
            M = self.half_gram(self.X64, self._column_weights(active) * h.sqrt())
        else:
            half = self.G // 2
            sign = torch.where(active < half, 1.0, -1.0).to(torch.float64).repeat_interleave(d)
            M = self._gram_block(active % half) * sign[:, None] * sign[None, :]
        blocks = M.view(a, d, a, d).permute(0, 2, 1, 3)          # a view: (a, a, d, d)
        blocks.index_put_((p, q), C, accumulate=True)
        off = p != q
        blocks.index_put_((q[off], p[off]), C[off].mT, accumulate=True)
        return M

    def _solve_low_rank(self, active: torch.Tensor, p: torch.Tensor, q: torch.Tensor,
                        C: torch.Tensor, rhs: torch.Tensor, scale: float,
                        h: torch.Tensor | None = None):
        """``(A_N'WA_N + D)^{-1} rhs`` by Woodbury when ``n < a d / 2`` (the rows of ``A_N``
        scaled by ``sqrt(h)``, ``W = diag(h)``; none when ``h`` is None): ``D`` (the blocks, plus
        the ridge) is block diagonal per network block, so only an ``n x n`` system is dense.
        The blocks are batched by how many of their ``m1`` groups are active (``k d`` wide,
        :class:`_BlockBatches`) and inverted explicitly, so that ``D^{-1} A'`` is one batched
        GEMM per width (a batched ``cholesky_solve`` on blocks padded to ``m1 d`` was 2-3x
        slower, and the padding copies cost as much again).  ``D`` can be nearly singular (a
        group with no active cone row has only the ridge along its own direction), so up to
        ``REFINEMENTS`` steps of iterative refinement follow while the residual is above
        ``LOW_RANK_RESIDUAL``.  Returns ``(x, accurate)``: ``accurate`` when the
        relative residual ends below ``LOW_RANK_RESIDUAL`` (else the caller uses the dense solve
        where it has one); ``x`` is None when a factorization failed."""
        batches = _BlockBatches(self.block_of[active], self.d)
        D = batches.blocks(p, q, C, RIDGE * scale)
        inverse = []
        for block in D:
            L, info = torch.linalg.cholesky_ex(block)
            if bool(info.any()):
                return None, False
            inverse.append(torch.cholesky_inverse(L))
        # A = [A_+, -A_+]: the rows of A' of group g + G/2 are minus those of g, so
        # A D^{-1} A' = A_+ (sum of +-D^{-1} A' rows per positive group), half the GEMM when
        # both signs of a pattern are active (as they are through most of a solve)
        half, ordered = self.G // 2, active[batches.order]
        positive, slot = torch.unique(ordered % half, return_inverse=True)
        At_plus = lifted_columns_t(self.col_weight[positive], self.X64)     # (u d, n)
        if h is not None:
            At_plus = At_plus * h.sqrt()[None, :]
        n, d = self.X64.shape[0], self.d
        sign = torch.where(ordered >= half, -1.0, 1.0).to(torch.float64)[:, None, None]
        At = (At_plus.view(-1, d, n)[slot] * sign).view(-1, n)          # A', (a d, n)
        Y = batches.apply(inverse, At)                                 # D^{-1} A', (a d, n)
        folded = torch.zeros_like(At_plus).view(-1, d, n).index_add_(
            0, slot, Y.view(-1, d, n) * sign)
        small = At_plus.T @ folded.view(-1, n)
        small.diagonal().add_(1.0)
        Lc, info = torch.linalg.cholesky_ex(small)
        if int(info) != 0:
            return None, False

        def solve(r):
            x0 = batches.apply(inverse, r)
            return x0 - Y @ torch.cholesky_solve(At.T @ x0, Lc)

        def apply(x):
            return At @ (At.T @ x) + batches.apply(D, x)

        b = batches.gather(rhs)[:, None]
        target = LOW_RANK_RESIDUAL * float(torch.linalg.vector_norm(b))
        x = solve(b)
        residual = b - apply(x)
        error = float(torch.linalg.vector_norm(residual))
        for _ in range(REFINEMENTS):
            if not error > target:          # accurate (usually 1e-14 relative) or not finite
                break
            x = x + solve(residual)
            residual = b - apply(x)
            error = float(torch.linalg.vector_norm(residual))
        if not math.isfinite(error):
            return None, False
        accurate = error <= target
        return batches.scatter(x.flatten()), accurate

    def _unpack(self, upper: torch.Tensor) -> torch.Tensor:
        return unpack_symmetric(upper, self.upper, self.d)

    @classmethod
    def _solve(cls, M: torch.Tensor, rhs: torch.Tensor, scale: float) -> torch.Tensor | None:
        """``M^{-1} rhs`` by Cholesky (M is overwritten), with a ridge ``RIDGE * scale`` grown
        until the factorization succeeds; None if it fails even with a ridge of ``scale``."""
        L = ridged_cholesky(M, scale, RIDGE * scale)
        return None if L is None else cholesky_apply(L, rhs)


def ridged_cholesky(M: torch.Tensor, scale: float | torch.Tensor,
                    ridge: float = 0.0) -> torch.Tensor | None:
    """The lower Cholesky factors of ``M + ridge I`` (one matrix or a batch, overwritten), the
    ridge of each matrix that fails grown 100x (from ``RIDGE * scale`` if it starts at 0)
    until it factors; None if one fails even with a ridge of ``scale`` (a float, or one per
    matrix)."""
    batch = M.view(-1, *M.shape[-2:])
    count, eye = batch.shape[0], torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
    scale = torch.as_tensor(scale, dtype=M.dtype, device=M.device).expand(count)
    ridges = torch.full((count,), float(ridge), dtype=M.dtype, device=M.device)
    batch.diagonal(dim1=1, dim2=2).add_(ridges[:, None])
    L, info = torch.linalg.cholesky_ex(batch)
    while bool(info.any()):
        bad = info != 0
        grown = torch.maximum(100.0 * ridges[bad], RIDGE * scale[bad])
        if not bool(((grown > 0) & (grown <= scale[bad])).all()):
            return None
        batch[bad] += (grown - ridges[bad])[:, None, None] * eye
        ridges[bad] = grown
        L[bad], info[bad] = torch.linalg.cholesky_ex(batch[bad])
    return L.view(M.shape)
