"""Activation patterns: sampled from random sub-networks, or read off a given network.

A pattern is what one sub-network ``(W1, w2)`` does on the data X (docs/design.md section 2)::

    D_j = 1[X w1_j >= 0],   s_j = sign(w2_j) (0 -> +1),   E = 1[sum_j w2_j (X w1_j)_+ >= 0]

Patterns whose inner signs are all -1 output nothing and are dropped.  At depth 2 the outer
mask plays no role and is set to all ones, so that duplicates are recognised.
"""

from __future__ import annotations

import numpy as np

from .network import ParallelNet
from .problem import Patterns

MAX_SAMPLING_ROUNDS = 50


def patterns_of_weights(X: np.ndarray, W1: np.ndarray, w2: np.ndarray, depth: int = 3) -> Patterns:
    """Patterns of sub-networks with weights W1 (K, d, m1) and w2 (K, m1), duplicates removed."""
    pre = np.einsum("nd,kdm->kmn", X, W1)                  # (K, m1, n)
    inner = pre >= 0
    sign = np.where(w2 >= 0, 1, -1).astype(np.int8)
    if depth == 3:
        outer = np.einsum("kmn,km->kn", np.maximum(pre, 0.0), w2) >= 0
    else:
        outer = np.ones((W1.shape[0], X.shape[0]), bool)
    alive = (sign > 0).any(axis=1)
    return Patterns(inner[alive], sign[alive], outer[alive]).unique()


def patterns_from_network(net: ParallelNet, X: np.ndarray, depth: int | None = None,
                          top: int | None = None) -> Patterns:
    """The patterns of a trained network's sub-networks, for seeding the convex program.

    With ``top = None`` every sub-network counts, so that the convex optimum over these
    patterns is <= the network's NC objective.  With ``top = k`` only the ``k`` sub-networks
    with the largest outputs ``||f_k(X)||`` (and nonzero ones) count: a smaller restricted
    program, for column generation to start from.
    """
    if top is None:
        keep = np.arange(net.n_subnetworks)
    else:
        if top < 1:
            raise ValueError(f"top must be >= 1, got {top}")
        size = np.linalg.norm(net.subnetwork_outputs(X), axis=1)
        keep = np.argsort(-size, kind="stable")[:top]
        keep = keep[size[keep] > 0]
    return patterns_of_weights(X, net.W1[keep], net.w2[keep],
                               net.depth if depth is None else depth)


def sample_patterns(X: np.ndarray, m1: int, n_patterns: int, seed: int = 0,
                    depth: int = 3) -> Patterns:
    """Up to ``n_patterns`` distinct patterns of Gaussian sub-networks (W1, w2), seeded.

    Fewer are returned only when the data admit fewer distinct patterns than asked for
    (after ``MAX_SAMPLING_ROUNDS`` rounds of draws).
    """
    if n_patterns < 1:
        raise ValueError(f"number of patterns must be >= 1, got {n_patterns}")
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    found = Patterns.empty(m1, X.shape[0])
    for _ in range(MAX_SAMPLING_ROUNDS):
        draws = 2 * (n_patterns - found.n_patterns) + 8
        W1 = rng.standard_normal((draws, d, m1))
        w2 = rng.standard_normal((draws, m1))
        found = found.concat(patterns_of_weights(X, W1, w2, depth))
        if found.n_patterns >= n_patterns:
            return found.take(np.arange(n_patterns))
    return found
