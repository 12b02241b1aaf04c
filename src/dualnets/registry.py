"""The registry of solvers and baselines, read by the tests, the benchmarks and the CLI.

Plugins are discovered, not listed: on the first look-up every module of the packages
``PLUGIN_PACKAGES`` is imported (a module registers its classes with :func:`register`), and so
is every entry point of the group ``ENTRY_POINT_GROUP`` of the installed distributions, which
is how a third-party package adds a solver::

    [project.entry-points."dualnets.solvers"]
    my-solver = "my_package.my_solver:MySolver"

A module or entry point that fails to import is never hidden: :func:`unavailable` gives its
error, and the look-up of a name it would have provided says so.
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback
from importlib.metadata import entry_points

PLUGIN_PACKAGES: tuple[str, ...] = ("dualnets.solvers", "dualnets.baselines")
ENTRY_POINT_GROUP = "dualnets.solvers"

_REGISTRY: dict[str, type] = {}
_UNAVAILABLE: dict[str, str] = {}
_loaded = False


def register(cls: type) -> type:
    """Class decorator adding a solver (or baseline) under ``cls.name``."""
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(f"solver name {cls.name!r} is registered twice: by "
                         f"{other.__module__}.{other.__qualname__} and "
                         f"{cls.__module__}.{cls.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _failure(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _discover() -> None:
    """Import every plugin module and entry point once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            module = f"{package_name}.{info.name}"
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - an optional dependency may be missing
                _UNAVAILABLE[module] = _failure(exc)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin is reported
            _UNAVAILABLE[point.name] = _failure(exc)
            continue
        if isinstance(loaded, type):
            register(loaded)


def available_solvers(model: str | None = None) -> list[str]:
    """Registered names, sorted; with ``model`` ("relu", "gated" or "network") only those
    whose results have that meaning (``model="network"``: the baselines)."""
    _discover()
    return sorted(name for name, cls in _REGISTRY.items() if model in (None, cls.model))


def convex_solvers() -> list[str]:
    """Registered solvers of a convex program (every model but "network")."""
    _discover()
    return sorted(name for name, cls in _REGISTRY.items() if cls.model != "network")


def unavailable() -> dict[str, str]:
    """Plugin modules and entry points that failed to import, with their error."""
    _discover()
    return dict(_UNAVAILABLE)


def solver_class(name: str) -> type:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        broken = "".join(f"; plugin {key} failed to import: {why}"
                         for key, why in _UNAVAILABLE.items())
        raise ValueError(f"unknown solver {name!r}; choose one of "
                         f"{', '.join(available_solvers())}{broken}") from None


def get_solver(name: str, **options):
    """An instance of the registered solver ``name`` with the given hyperparameters."""
    return solver_class(name)(**options)
