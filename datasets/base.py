"""The dataset record and shared preprocessing (train-only standardization, bias column)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

Task = Literal["binary", "multiclass", "regression"]
Loader = Callable[..., "Dataset"]
LOADERS: dict[str, Loader] = {}
SYNTHETIC: set[str] = set()


def dataset(synthetic: bool = False, name: str | None = None) -> Callable[[Loader], Loader]:
    """Decorator registering a loader under ``name`` (default: the function's name).

    ``synthetic`` loaders generate their data and take ``d`` (they scale in n and d); the
    others load real data and subsample n.
    """
    def wrap(loader: Loader) -> Loader:
        key = name or loader.__name__
        if key in LOADERS and LOADERS[key] is not loader:
            raise ValueError(f"dataset name {key!r} is registered twice")
        LOADERS[key] = loader
        if synthetic:
            SYNTHETIC.add(key)
        return loader
    return wrap


@dataclass(frozen=True, eq=False)
class Dataset:
    """Seeded train/test split: ``X_train`` (n, d), ``y_train`` (n,), ``X_test`` (n_test, d).

    Binary labels are +1/-1; multiclass labels are the integers 0..C-1, trained one-vs-rest
    (:func:`one_vs_rest`) and predicted by the argmax of the C outputs; regression targets are
    standardized floats.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: Task

    @property
    def n(self) -> int:
        return self.X_train.shape[0]

    @property
    def d(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_test(self) -> int:
        return self.X_test.shape[0]

    @property
    def n_classes(self) -> int:
        """C for multiclass data, 2 for binary, 0 for regression."""
        if self.task == "multiclass":
            return int(max(self.y_train.max(), self.y_test.max())) + 1
        return 2 if self.task == "binary" else 0


def one_vs_rest(y: np.ndarray, n_classes: int) -> np.ndarray:
    """+1/-1 targets of shape (C, n): row c is +1 where ``y == c``."""
    y = np.asarray(y)
    return np.where(y[None, :] == np.arange(n_classes)[:, None], 1.0, -1.0)


def standardize(X_train: np.ndarray, X_test: np.ndarray, bias: bool = True):
    """Scale features with the training mean and std; append a column of ones if ``bias``."""
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    out = [(X - mean) / std for X in (X_train, X_test)]
    if bias:
        out = [np.hstack([X, np.ones((X.shape[0], 1))]) for X in out]
    return out


def split(X: np.ndarray, y: np.ndarray, n_train: int | None, seed: int, test_fraction: float = 0.25):
    """Seeded shuffle into train and test; ``n_train`` subsamples the training part."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(X.shape[0])
    n_test = max(1, int(round(test_fraction * X.shape[0])))
    test, train = order[:n_test], order[n_test:]
    if n_train is not None:
        if n_train < 2:
            raise ValueError(f"n must be >= 2, got {n_train}")
        if n_train > train.size:
            raise ValueError(f"n = {n_train} exceeds the {train.size} training rows available")
        train = train[:n_train]
    return X[train], y[train], X[test], y[test]


def validation_split(data: Dataset, fraction: float, seed: int) -> Dataset:
    """The training rows of ``data`` split again, for choosing hyperparameters: ``fraction`` of
    them become the test rows (stratified by class for classification) and the rest the
    training rows, standardized anew on those alone, so that the held-out fold is never seen.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation must be a fraction in (0, 1), got {fraction!r}")
    X, y = data.X_train, data.y_train
    if not np.all(X[:, -1] == 1.0):
        raise ValueError(f"dataset {data.name!r}: expected a ones column last in X_train")
    n_val = int(round(fraction * X.shape[0]))
    if not 1 <= n_val <= X.shape[0] - 2:
        raise ValueError(f"validation = {fraction:g} of {X.shape[0]} training rows leaves "
                         f"{n_val} validation rows; expected at least 1 and 2 to train on")
    from sklearn.model_selection import train_test_split

    stratify = y if data.task != "regression" and np.unique(y, return_counts=True)[1].min() \
        >= 2 else None
    train, val = train_test_split(np.arange(X.shape[0]), test_size=n_val, random_state=seed,
                                  stratify=stratify)
    Xtr, Xval = standardize(X[train, :-1], X[val, :-1])
    return Dataset(data.name, Xtr, y[train], Xval, y[val], data.task)
