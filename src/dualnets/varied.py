"""Generated data across the parameter space users hit, for tests and benchmarks alike: a
tanh target of scale 1 with Gaussian inputs, plain or degenerate in one way (``KINDS``)."""

from __future__ import annotations

import numpy as np

KINDS = ("plain", "duplicates", "constant", "scaled_down", "scaled_up", "zero_y")


def varied_data(rng: np.random.Generator, n: int, d: int,
                kind: str = "plain") -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: ``y = tanh(X w) + 0.1 noise``, then, by ``kind``: the second half of the rows
    duplicates the first, the last column is constant, the features are scaled by 1e-3 or
    1e3, or y = 0."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    X = rng.standard_normal((n, d))
    y = np.tanh(X @ rng.standard_normal(d)) + 0.1 * rng.standard_normal(n)
    if kind == "duplicates":
        X[n // 2:], y[n // 2:] = X[: n - n // 2], y[: n - n // 2]
    elif kind == "constant":
        X[:, -1] = 1.0
    elif kind in ("scaled_down", "scaled_up"):
        X = X * (1e-3 if kind == "scaled_down" else 1e3)
    elif kind == "zero_y":
        y = np.zeros(n)
    return X, y
