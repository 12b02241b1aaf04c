"""The registry of solvers and baselines, read by the tests, the benchmarks and the CLI.

Built-in modules register themselves on import with :func:`register`; they are imported lazily,
on the first look-up, so that no module has to import all the others.
"""

from __future__ import annotations

import importlib

BUILTIN_MODULES: tuple[str, ...] = (
    "dualnets.solvers.cvxpy_solver",
    "dualnets.solvers.al",
    "dualnets.solvers.gated_fista",
    "dualnets.baselines.sgd",
    "dualnets.baselines.adam",
    "dualnets.baselines.plain_wd",
)

_REGISTRY: dict[str, type] = {}
_loaded = False


def register(cls: type) -> type:
    """Class decorator adding a solver (or baseline) under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def available_solvers() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def solver_class(name: str) -> type:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown solver {name!r}; choose one of {', '.join(available_solvers())}") from None


def get_solver(name: str, **options):
    """An instance of the registered solver ``name`` with the given hyperparameters."""
    return solver_class(name)(**options)
