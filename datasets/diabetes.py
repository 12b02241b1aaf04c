"""scikit-learn's bundled diabetes regression (442 x 10); targets standardized on train."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_diabetes

from .base import Dataset, dataset, split, standardize


@dataset()
def diabetes(n: int | None = None, seed: int = 0) -> Dataset:
    """332 train / 110 test rows, d = 11 (10 features and a ones column).

    ``y = (target - mean_train) / std_train``, so that one beta suits it and the other sets.
    """
    data = load_diabetes()
    Xtr, ytr, Xte, yte = split(data.data.astype(np.float64), data.target.astype(np.float64), n, seed)
    Xtr, Xte = standardize(Xtr, Xte)
    mean, std = ytr.mean(), ytr.std()
    return Dataset("diabetes", Xtr, (ytr - mean) / std, Xte, (yte - mean) / std, "regression")
