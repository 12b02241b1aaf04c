"""The pieces that the row working sets of :mod:`.ipm_rows` and :mod:`.al_rows` share: the
loss over every sample as its Gram matrix, and the pass over every cone row that names the
samples to add.

With ``w = z_+ - z_-`` (``A = [A_+, -A_+]``) the squared loss over every sample is
``1/2 ||A z - y||^2 = 1/2 w'K w - w'b + 1/2 y'y`` with ``K = A_+'A_+`` and ``b = A_+'y``
(:class:`LossGram`); the cone rows are those of the samples of the working set only.
"""

from __future__ import annotations

import numpy as np
import torch

from ..lifting import Lifting
from .al_newton import NewtonInner, lifted_weights
from .torch_ops import TorchLifting

INITIAL_ROWS = 2000     # samples of the first round's cone rows
ROWS_PER_CONE = 10      # samples added per violated cone and round, the most violated first
CHUNK_ROWS = 16384      # samples per chunk of the passes over every sample
MAX_ROUNDS = 30


class LossGram:
    """``K = A_+'A_+``, ``b = A_+'y`` and ``y'y`` of every sample, in chunks of
    ``CHUNK_ROWS`` samples (``A_+``: the columns of the first sign copy of every group)."""

    def __init__(self, lift: Lifting, y: np.ndarray, device: str):
        half = lift.n_groups // 2
        size = half * lift.X.shape[1]
        f64 = torch.float64
        self.K = torch.zeros((size, size), dtype=f64, device=device)
        self.b = torch.zeros(size, dtype=f64, device=device)
        for rows in chunks(lift.X.shape[0]):
            ops = TorchLifting(lift.rows(rows), y[rows], device, "float64")
            weight = lifted_weights(ops)[:half]
            self.K += NewtonInner.half_gram(ops.X, weight)
            self.b += ((weight * ops.y) @ ops.X).flatten()
        self.yy = float(np.dot(y, y))

    @staticmethod
    def merged(Z: torch.Tensor) -> torch.Tensor:
        """``w = z_+ - z_-``, flattened: the weights of ``A_+`` that give ``A z``."""
        half = Z.shape[0] // 2
        return (Z[:half] - Z[half:]).flatten()

    def residual_products(self, wKw: float, wb: float) -> tuple[float, float]:
        """``(v'v, v'y)`` of the residual ``v = A z - y``: ``w'K w - 2 w'b + y'y`` and
        ``w'b - y'y`` (the loss is ``v'v / 2``)."""
        return wKw - 2.0 * wb + self.yy, wb - self.yy


def chunks(n: int):
    """Slices of at most ``CHUNK_ROWS`` samples covering ``range(n)``."""
    return [slice(start, min(n, start + CHUNK_ROWS)) for start in range(0, n, CHUNK_ROWS)]


def violated_rows(lift: Lifting, Z: torch.Tensor, floor: float,
                  per_cone: int) -> tuple[float, np.ndarray]:
    """``(worst, rows)``: the largest violation ``max (-(B z))_+`` over every cone row, and the
    samples of the ``per_cone`` most violated rows of every cone (inner and outer), among those
    violated by more than ``floor``; one pass over the samples, chunk by chunk, in torch on the
    CPU, keeping each chunk's ``per_cone`` lowest rows of every cone (numpy's ``where`` and
    partial sorts of the whole rows took 1.0 s a pass at n = 64000; this, 0.2 s)."""
    Zc = Z.detach().to("cpu", torch.float64)
    G, n = Zc.shape[0], lift.X.shape[0]
    X, inner, outer = (torch.tensor(a) for a in (lift.X, lift.inner, lift.outer))
    sign = torch.tensor(lift.coef_sign)[:, None]                     # s_cj
    P, m1 = lift.n_patterns, lift.m1
    worst, found = 0.0, []          # (cone, value, sample) of the rows below -floor
    for rows in chunks(n):
        U = (Zc @ X[rows].T).view(2, P * m1, -1)           # the two sign copies
        values = [torch.where(inner[:, rows], U, -U).view(G, -1)]
        if lift.depth == 3:
            H = torch.where(inner[:, rows], sign * U, 0.0).view(2, P, m1, -1).sum(dim=2)
            values.append(torch.where(outer[:, rows], H, -H).view(2 * P, -1))
        V = torch.cat(values)
        worst = max(worst, -float(V.min().clamp(max=0.0)))
        low, column = torch.topk(V, min(per_cone, V.shape[1]), dim=1, largest=False)
        keep = low < -floor
        cone = torch.arange(V.shape[0])[:, None].expand_as(low)[keep]
        found.append((cone.numpy(), low[keep].numpy(), column[keep].numpy() + rows.start))
    cone, value, sample = (np.concatenate(parts) for parts in zip(*found))
    order = np.lexsort((value, cone))             # by cone, the most violated first
    cone, sample = cone[order], sample[order]
    rank = np.arange(cone.size) - np.searchsorted(cone, cone)
    return worst, np.unique(sample[rank < per_cone])
