"""scikit-learn's bundled wine (178 x 13): one class (+1) against the rest (-1), standardized."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_wine

from .base import Dataset, dataset, split, standardize


@dataset()
def wine(n: int | None = None, seed: int = 0, positive_class: int = 0) -> Dataset:
    data = load_wine()
    if positive_class not in set(data.target.tolist()):
        raise ValueError(f"positive_class must be one of 0, 1, 2, got {positive_class}")
    y = np.where(data.target == positive_class, 1.0, -1.0)
    Xtr, ytr, Xte, yte = split(data.data.astype(np.float64), y, n, seed)
    Xtr, Xte = standardize(Xtr, Xte)
    return Dataset("wine", Xtr, ytr, Xte, yte, "binary")
