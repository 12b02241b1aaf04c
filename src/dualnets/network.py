"""The non-convex parallel network: weights, forward pass, NC objective and torch module.

Depth 3 (docs/design.md section 1)::

    f(X) = sum_k ((X W1_k)_+ w2_k)_+ w3_k,   NC = L(f) + beta/2 sum_k (||w2_k||^2 + w3_k^2)
    subject to ||W1_k||_F <= 1.

Depth 2 (Pilanci & Ergen 2020), every neuron of every sub-network in parallel::

    f(X) = sum_kj (X W1_kj)_+ w2_kj,          NC = L(f) + beta/2 sum_kj (||W1_kj||^2 + w2_kj^2)

with the problem's loss ``L`` (:mod:`dualnets.losses`; squared: ``1/2||f - y||^2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .losses import ConvexLoss, get_loss


@dataclass(frozen=True, eq=False)
class ParallelNet:
    """Weights of K parallel sub-networks: W1 (K, d, m1), w2 (K, m1), w3 (K,)."""

    W1: np.ndarray
    w2: np.ndarray
    w3: np.ndarray
    depth: int = 3

    def __post_init__(self) -> None:
        W1, w2, w3 = (np.asarray(a, dtype=np.float64) for a in (self.W1, self.w2, self.w3))
        if W1.ndim != 3 or w2.shape != (W1.shape[0], W1.shape[2]) or w3.shape != (W1.shape[0],):
            raise ValueError(
                f"expected W1 (K, d, m1), w2 (K, m1), w3 (K,), got {W1.shape}, {w2.shape}, {w3.shape}")
        object.__setattr__(self, "W1", W1)
        object.__setattr__(self, "w2", w2)
        object.__setattr__(self, "w3", w3)

    @property
    def n_subnetworks(self) -> int:
        return self.W1.shape[0]

    def first_layer_norms(self) -> np.ndarray:
        """||W1_k||_F, shape (K,)."""
        return np.sqrt((self.W1 ** 2).sum(axis=(1, 2)))

    def subnetwork_outputs(self, X: np.ndarray) -> np.ndarray:
        """f_k(X), shape (K, n)."""
        hidden = np.maximum(np.einsum("nd,kdm->knm", X, self.W1), 0.0)
        inner = np.einsum("knm,km->kn", hidden, self.w2)
        if self.depth == 2:
            return inner
        return np.maximum(inner, 0.0) * self.w3[:, None]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.subnetwork_outputs(X).sum(axis=0)

    def penalty(self) -> float:
        """The weight-decay term without beta."""
        if self.depth == 2:
            return 0.5 * float((self.W1 ** 2).sum() + (self.w2 ** 2).sum())
        return 0.5 * float((self.w2 ** 2).sum() + (self.w3 ** 2).sum())

    def save(self, path) -> None:
        np.savez(path, W1=self.W1, w2=self.w2, w3=self.w3, depth=np.int64(self.depth))

    @classmethod
    def load(cls, path) -> ParallelNet:
        with np.load(path) as f:
            missing = {"W1", "w2", "w3"} - set(f.files)
            if missing:
                raise ValueError(f"{path}: network file lacks keys {sorted(missing)}")
            depth = int(f["depth"]) if "depth" in f.files else 3
            return cls(f["W1"], f["w2"], f["w3"], depth)


def nc_objective(net: ParallelNet, X: np.ndarray, y: np.ndarray, beta: float,
                 loss: str | ConvexLoss = "squared") -> float:
    """The non-convex training objective NC(theta) (norm constraint not enforced here)."""
    return float(get_loss(loss).value(net.predict(X), y)) + beta * net.penalty()


def norm_violation(net: ParallelNet) -> float:
    """How far the largest ||W1_k||_F exceeds 1 (0 when feasible, always 0 at depth 2)."""
    if net.depth == 2 or net.n_subnetworks == 0:
        return 0.0
    return max(0.0, float(net.first_layer_norms().max()) - 1.0)


class ParallelReLUNet(nn.Module):
    """Torch module of :class:`ParallelNet`, for training and GPU evaluation."""

    def __init__(self, W1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor, depth: int = 3):
        super().__init__()
        self.W1 = nn.Parameter(W1)
        self.w2 = nn.Parameter(w2)
        self.w3 = nn.Parameter(w3)
        self.depth = depth

    @classmethod
    def random(cls, K: int, d: int, m1: int, depth: int = 3, *, generator=None,
               dtype=torch.float64, scale: float = 1.0) -> ParallelReLUNet:
        """Gaussian weights; W1_k scaled to unit Frobenius norm at depth 3."""
        W1 = torch.randn(K, d, m1, generator=generator, dtype=dtype)
        if depth == 3:
            W1 = W1 / W1.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
        w2 = scale * torch.randn(K, m1, generator=generator, dtype=dtype)
        w3 = scale * torch.randn(K, generator=generator, dtype=dtype)
        return cls(W1, w2, w3, depth)

    @classmethod
    def from_net(cls, net: ParallelNet, dtype=torch.float64) -> ParallelReLUNet:
        t = lambda a: torch.as_tensor(a, dtype=dtype).clone()  # noqa: E731
        return cls(t(net.W1), t(net.w2), t(net.w3), net.depth)

    def to_net(self) -> ParallelNet:
        a = lambda p: p.detach().cpu().double().numpy().copy()  # noqa: E731
        return ParallelNet(a(self.W1), a(self.w2), a(self.w3), self.depth)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        inner = torch.einsum("knm,km->kn", torch.relu(torch.einsum("nd,kdm->knm", X, self.W1)),
                             self.w2)
        if self.depth == 2:
            return inner.sum(dim=0)
        return (torch.relu(inner) * self.w3[:, None]).sum(dim=0)

    def penalty(self) -> torch.Tensor:
        if self.depth == 2:
            return 0.5 * (self.W1.pow(2).sum() + self.w2.pow(2).sum())
        return 0.5 * (self.w2.pow(2).sum() + self.w3.pow(2).sum())

    def objective(self, X: torch.Tensor, y: torch.Tensor, beta: float,
                  loss: str | ConvexLoss = "squared") -> torch.Tensor:
        return get_loss(loss).value(self(X), y) + beta * self.penalty()

    @torch.no_grad()
    def project_(self) -> None:
        """Project every W1_k onto the unit Frobenius ball (depth 3 only)."""
        if self.depth == 3:
            norms = self.W1.flatten(1).norm(dim=1).clamp_min(1.0)
            self.W1.div_(norms[:, None, None])
