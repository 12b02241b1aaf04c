"""scikit-learn's bundled iris (150 x 4, 3 classes), standardized, one-vs-rest by the caller."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris

from .base import Dataset, dataset, split, standardize


@dataset()
def iris(n: int | None = None, seed: int = 0) -> Dataset:
    """112 train / 38 test rows, d = 5 (4 features and a ones column), classes 0, 1, 2."""
    data = load_iris()
    Xtr, ytr, Xte, yte = split(data.data.astype(np.float64), data.target.astype(np.int64), n, seed)
    Xtr, Xte = standardize(Xtr, Xte)
    return Dataset("iris", Xtr, ytr, Xte, yte, "multiclass")
