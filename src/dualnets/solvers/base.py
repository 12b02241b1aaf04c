"""The solver contract and the registry that tests, benchmarks and the CLI all read."""

from __future__ import annotations

from typing import ClassVar

from ..problem import Problem
from ..result import Result


class Solver:
    """``__init__`` stores hyperparameters; ``solve(problem) -> Result`` does the work.

    ``supports(problem)`` says *why* a problem cannot be taken instead of failing half-way.
    """

    name: ClassVar[str] = "solver"
    model: ClassVar[str] = "relu"          # "relu" program, "gated" relaxation or "network"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def supports(self, problem: Problem) -> tuple[bool, str]:
        return True, ""

    def solve(self, problem: Problem) -> Result:
        raise NotImplementedError


_REGISTRY: dict[str, type[Solver]] = {}


def register(cls: type[Solver]) -> type[Solver]:
    """Class decorator adding a solver to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_solvers() -> list[str]:
    return sorted(_REGISTRY)


def get_solver(name: str, **options) -> Solver:
    """Instantiate a registered solver; a clear ValueError for unknown names."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown solver {name!r}; choose one of {', '.join(available_solvers())}") from None
    return cls(**options)
