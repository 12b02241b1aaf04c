"""scikit-learn's bundled breast_cancer (569 x 30): +1 benign, -1 malignant, standardized."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer

from .base import Dataset, dataset, split, standardize


@dataset()
def breast_cancer(n: int | None = None, seed: int = 0) -> Dataset:
    data = load_breast_cancer()
    y = np.where(data.target == 1, 1.0, -1.0)
    Xtr, ytr, Xte, yte = split(data.data.astype(np.float64), y, n, seed)
    Xtr, Xte = standardize(Xtr, Xte)
    return Dataset("breast_cancer", Xtr, ytr, Xte, yte, "binary")
