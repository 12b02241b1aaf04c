"""Two interleaved 2-D spirals (+1 / -1), for decision-boundary pictures; d scales with noise.

Point ``i`` of arm ``a`` sits at radius ``r = t`` and angle ``2 pi turns t + pi a`` for
``t`` uniform in [0.1, 1], plus Gaussian jitter ``noise``.  Columns: the 2 coordinates, then
``d - 3`` standard Gaussian nuisance features, then a ones column (so ``d >= 3``).
"""

from __future__ import annotations

import numpy as np

from .base import Dataset, dataset


@dataset(synthetic=True)
def spirals(n: int = 200, d: int = 3, seed: int = 0, noise: float = 0.05, turns: float = 1.0,
            n_test: int | None = None) -> Dataset:
    if d < 3:
        raise ValueError(f"spirals need d >= 3 (two coordinates and the ones column), got {d}")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    n_test = max(n // 4, 50) if n_test is None else n_test

    def draw(rows: int):
        arm = rng.integers(0, 2, rows)
        t = rng.uniform(0.1, 1.0, rows)
        angle = 2 * np.pi * turns * t + np.pi * arm
        xy = t[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
        xy += noise * rng.standard_normal((rows, 2))
        nuisance = rng.standard_normal((rows, d - 3))
        X = np.hstack([xy / 0.5, nuisance, np.ones((rows, 1))])
        return X, np.where(arm == 0, 1.0, -1.0)

    X, y = draw(n)
    Xt, yt = draw(n_test)
    return Dataset("spirals", X, y, Xt, yt, "binary")
