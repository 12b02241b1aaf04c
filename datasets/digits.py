"""scikit-learn's bundled 8x8 digits (1797 x 64, 10 classes), standardized."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from .base import Dataset, dataset, split, standardize


@dataset()
def digits(n: int | None = None, seed: int = 0) -> Dataset:
    """1348 train / 449 test rows, d = 65 (64 pixels and a ones column), classes 0..9.

    Pixels that are constant on the training rows keep their centred value (std taken as 1).
    """
    data = load_digits()
    Xtr, ytr, Xte, yte = split(data.data.astype(np.float64), data.target.astype(np.int64), n, seed)
    Xtr, Xte = standardize(Xtr, Xte)
    return Dataset("digits", Xtr, ytr, Xte, yte, "multiclass")
