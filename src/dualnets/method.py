"""A method string parsed once, at the edge, into one typed value used by compare, sweep and
the runner alike.

``SOLVER[+STRATEGY...]``: a registry name, then pattern strategies joined with ``+``, e.g.
``"clarabel"``, ``"adam"``, ``"al+network"``, ``"al+network:adam:20+dual-search"``,
``"al+dual-search:clarabel"``.  The strategies before a trailing ``dual-search`` build the
starting patterns (after ``random:P``, see :mod:`dualnets.pattern_specs`); a trailing
``dual-search[:SOLVER]`` is column generation (:mod:`dualnets.dual_search`) with the run's
``[search]`` settings and time budget, its rounds solved by SOLVER (default: the method's own
solver), and the final patterns solved by the method's solver.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pattern_specs import SEARCH_STRATEGY, PatternStep, parse_spec
from .registry import solver_class


@dataclass(frozen=True)
class Method:
    """``solver``: registry name; ``patterns``: the strategies before the search;
    ``search_solver``: None without a trailing dual-search, else the name of the solver of
    its rounds; ``text``: the method as written."""

    solver: str
    patterns: tuple[PatternStep, ...] = ()
    search_solver: str | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Method:
        """Parse and check ``text``; every mistake is a one-line ValueError."""
        solver, *parts = [p.strip() for p in str(text).split("+")]
        try:
            model = solver_class(solver).model
        except ValueError as exc:
            raise ValueError(f"unknown method {text!r}: {exc}") from None
        steps = tuple(parse_spec(",".join(parts))) if parts else ()
        if steps and model == "network":
            raise ValueError(f"method {text!r}: the network baseline {solver!r} takes no "
                             "pattern strategies")
        search = None
        if steps and steps[-1].name == SEARCH_STRATEGY:
            search, steps = steps[-1].arg or solver, steps[:-1]
            solver_class(search)                  # the rounds' solver must exist
        if any(step.name == SEARCH_STRATEGY for step in steps):
            raise ValueError(f"method {text!r}: {SEARCH_STRATEGY} must be its last strategy")
        return cls(solver, steps, search, str(text))

    @property
    def model(self) -> str:
        """What the results' weights mean ("relu", "gated" or "network")."""
        return solver_class(self.solver).model

    @property
    def searches(self) -> bool:
        return self.search_solver is not None

    @property
    def uses_networks(self) -> bool:
        """Whether its patterns come (partly) from trained networks."""
        return any(step.name == "network" for step in self.patterns)

    def pattern_spec(self, n_random: int) -> str:
        """The pattern spec of the starting patterns: ``random:P`` then the strategies."""
        return ",".join([f"random:{n_random}", *(str(step) for step in self.patterns)])
