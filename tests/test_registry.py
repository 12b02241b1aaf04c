"""Plugin discovery: package modules, third-party entry points, and failures reported."""

from __future__ import annotations

import pytest

from dualnets import registry
from dualnets.solvers.base import Solver


class ThirdPartySolver(Solver):
    name = "third-party"

    def __init__(self, max_seconds: float = float("inf")):
        self.max_seconds = max_seconds


class FakeEntryPoint:
    def __init__(self, name: str, target):
        self.name, self.target = name, target

    def load(self):
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry that discovers again, with the given entry points."""
    registry.available_solvers()      # the real registry is complete before it is swapped

    def with_points(*points):
        monkeypatch.setattr(registry, "_REGISTRY", {})
        monkeypatch.setattr(registry, "_UNAVAILABLE", {})
        monkeypatch.setattr(registry, "_loaded", False)
        monkeypatch.setattr(registry, "entry_points", lambda group: list(points))
    return with_points


def test_an_entry_point_adds_a_solver(fresh_registry):
    fresh_registry(FakeEntryPoint("third-party", ThirdPartySolver))
    assert "third-party" in registry.available_solvers()
    assert registry.solver_class("third-party") is ThirdPartySolver


def test_a_broken_entry_point_is_reported_not_hidden(fresh_registry):
    fresh_registry(FakeEntryPoint("broken", ImportError("No module named 'broken_dep'")))
    assert registry.unavailable() == {"broken": "ImportError: No module named 'broken_dep'"}
    with pytest.raises(ValueError, match="plugin broken failed to import: ImportError"):
        registry.solver_class("broken")


def test_builtin_modules_are_discovered_without_a_list():
    from dualnets.solvers.al import AugmentedLagrangian
    from dualnets.baselines.sgd import ProjectedSGD

    assert registry.solver_class("al") is AugmentedLagrangian
    assert registry.solver_class("sgd") is ProjectedSGD
    assert not hasattr(registry, "BUILTIN_MODULES")


def test_a_name_registered_twice_is_refused():
    class Clash(Solver):
        name = "al"

    with pytest.raises(ValueError, match="solver name 'al' is registered twice"):
        registry.register(Clash)
