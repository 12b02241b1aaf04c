"""Synthetic data from a planted three-layer teacher network (Gaussian inputs, ones column)."""

from __future__ import annotations

import numpy as np

from .base import Dataset, dataset


@dataset(synthetic=True)
def planted(n: int = 200, d: int = 10, seed: int = 0, noise: float = 0.1, m1: int = 2,
            K: int = 3, n_test: int | None = None, classification: bool = False) -> Dataset:
    """``y = sum_k ((X W1_k)_+ w2_k)_+ w3_k + noise``, X Gaussian with its last column ones.

    ``d`` counts the ones column.  With ``classification`` the labels are ``sign(y)``.
    """
    if d < 2:
        raise ValueError(f"planted data need d >= 2 (features plus the ones column), got {d}")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    rng = np.random.default_rng(seed)
    n_test = max(n // 4, 50) if n_test is None else n_test
    W1 = rng.standard_normal((K, d, m1))
    W1 /= np.linalg.norm(W1.reshape(K, -1), axis=1)[:, None, None]
    w2 = rng.standard_normal((K, m1))
    w3 = rng.standard_normal(K)

    def draw(rows: int):
        X = np.hstack([rng.standard_normal((rows, d - 1)), np.ones((rows, 1))])
        hidden = np.maximum(np.einsum("nd,kdm->knm", X, W1), 0.0)
        f = (np.maximum(np.einsum("knm,km->kn", hidden, w2), 0.0) * w3[:, None]).sum(axis=0)
        scale = max(float(np.std(f)), 1e-12)
        y = f / scale + noise * rng.standard_normal(rows)
        return X, (np.where(y >= np.median(y), 1.0, -1.0) if classification else y)

    X, y = draw(n)
    Xt, yt = draw(n_test)
    return Dataset("planted", X, y, Xt, yt, "binary" if classification else "regression")
