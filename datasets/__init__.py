"""Datasets, one module each (installed as ``dualnets.datasets``), all returning a seeded
:class:`Dataset` split.

A dataset is one new module in this folder whose loader is decorated with
:func:`~dualnets.datasets.base.dataset`: the modules are found by package discovery on the
first look-up, and nothing else lists them.  ``load_dataset(name, n=..., d=..., seed=...)``
is the single entry point.  Synthetic sets scale in n and d; real sets subsample n.
:func:`describe_datasets` lists the default shapes.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys

from .base import LOADERS, SYNTHETIC, Dataset, Loader, one_vs_rest

_discovered = False


def _discover() -> None:
    global _discovered
    if not _discovered:
        _discovered = True
        for info in pkgutil.iter_modules(__path__):    # base.py registers nothing
            importlib.import_module(f"{__name__}.{info.name}")


def dataset_names() -> list[str]:
    """Every registered dataset, sorted."""
    _discover()
    return sorted(LOADERS)


def loader(name: str) -> Loader:
    _discover()
    if name not in LOADERS:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())}")
    return LOADERS[name]


def check_name(name: str) -> None:
    loader(name)


def is_synthetic(name: str) -> bool:
    """Whether the dataset scales in d (declared by its loader)."""
    check_name(name)
    return name in SYNTHETIC


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load a dataset by name; options it does not take (such as ``d`` for real data) are
    refused with a clear error rather than ignored."""
    load = loader(name)
    accepted = inspect.signature(load).parameters
    given = {k: v for k, v in kwargs.items() if v is not None}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"dataset {name!r} does not take option(s) {unknown}")
    return load(**given)


def describe_datasets() -> list[dict]:
    """One dict per dataset with its default shapes: name, n, n_test, d, task, classes."""
    rows = []
    for name in dataset_names():
        load = LOADERS[name]
        data = load()
        doc = (sys.modules[load.__module__].__doc__ or "").strip().splitlines()[0]
        rows.append({"name": name, "n": data.n, "n_test": data.n_test, "d": data.d,
                     "task": data.task, "classes": data.n_classes,
                     "scales": "n, d" if is_synthetic(name) else "n", "description": doc})
    return rows


__all__ = ["Dataset", "dataset_names", "describe_datasets", "is_synthetic", "load_dataset",
           "one_vs_rest"]
