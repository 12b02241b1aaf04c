"""Datasets: one small module each, all returning a seeded :class:`Dataset` split.

``load_dataset(name, n=..., d=..., seed=...)`` is the single entry point; ``DATASETS`` maps
names to loaders.  Synthetic sets (those whose loader takes ``d``) scale in n and d; real sets
shipped by scikit-learn subsample n.  :func:`describe_datasets` lists the default shapes.
"""

from __future__ import annotations

import inspect
import sys
from typing import Callable

from .base import Dataset, one_vs_rest
from .breast_cancer import breast_cancer
from .diabetes import diabetes
from .digits import digits
from .iris import iris
from .planted import planted
from .spirals import spirals
from .wine import wine

DATASETS: dict[str, Callable[..., Dataset]] = {
    "planted": planted,
    "spirals": spirals,
    "breast_cancer": breast_cancer,
    "wine": wine,
    "iris": iris,
    "digits": digits,
    "diabetes": diabetes,
}


def check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {', '.join(sorted(DATASETS))}")


def is_synthetic(name: str) -> bool:
    """Whether the dataset scales in d (its loader takes ``d``)."""
    check_name(name)
    return "d" in inspect.signature(DATASETS[name]).parameters


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load a dataset by name; options it does not take (such as ``d`` for real data) are
    refused with a clear error rather than ignored."""
    check_name(name)
    loader = DATASETS[name]
    accepted = inspect.signature(loader).parameters
    given = {k: v for k, v in kwargs.items() if v is not None}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"dataset {name!r} does not take option(s) {unknown}")
    return loader(**given)


def describe_datasets() -> list[dict]:
    """One dict per dataset with its default shapes: name, n, n_test, d, task, classes."""
    rows = []
    for name, loader in DATASETS.items():
        data = loader()
        doc = (sys.modules[loader.__module__].__doc__ or "").strip().splitlines()[0]
        rows.append({"name": name, "n": data.n, "n_test": data.n_test, "d": data.d,
                     "task": data.task, "classes": data.n_classes,
                     "scales": "n, d" if is_synthetic(name) else "n", "description": doc})
    return rows


__all__ = ["DATASETS", "Dataset", "describe_datasets", "is_synthetic", "load_dataset",
           "one_vs_rest"]
