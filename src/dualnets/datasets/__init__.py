"""Datasets: one small module each, all returning a seeded :class:`Dataset` split.

``load_dataset(name, n=..., d=..., seed=...)`` is the single entry point; ``DATASETS`` maps
names to loaders and a one-line description.
"""

from __future__ import annotations

import inspect
from typing import Callable

from .base import Dataset
from .breast_cancer import breast_cancer
from .planted import planted
from .wine import wine

DATASETS: dict[str, Callable[..., Dataset]] = {
    "planted": planted,
    "breast_cancer": breast_cancer,
    "wine": wine,
}


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load a dataset by name; options it does not take (such as ``d`` for real data) are
    refused with a clear error rather than ignored."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {', '.join(sorted(DATASETS))}") from None
    accepted = inspect.signature(loader).parameters
    given = {k: v for k, v in kwargs.items() if v is not None}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"dataset {name!r} does not take option(s) {unknown}")
    return loader(**given)


__all__ = ["DATASETS", "Dataset", "load_dataset"]
