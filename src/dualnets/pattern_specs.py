"""Pattern strategies named by a spec string such as ``random:200,exhaustive``.

A spec is a comma-separated list applied left to right; each strategy receives the problem with
the patterns gathered so far and returns the patterns to add.  Strategies register themselves
in ``STRATEGIES`` (name -> function), so the CLI, the runner and the tests share one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .exhaustive import exhaustive_patterns
from .patterns import sample_patterns
from .problem import Patterns, Problem


@dataclass
class SpecContext:
    """What a strategy may use besides the problem: the seed and optional inputs."""

    seed: int = 0
    networks: list = field(default_factory=list)   # ParallelNet objects for "network"
    log: list = field(default_factory=list)         # per-strategy records (e.g. dual-search rounds)


Strategy = Callable[[Problem, str | None, SpecContext], Patterns]
STRATEGIES: dict[str, Strategy] = {}
SEARCH_STRATEGY = "dual-search"
DEFAULT_BASELINE = "adam"       # what "network" trains when no network is given


@dataclass(frozen=True)
class PatternStep:
    """One parsed strategy of a spec: ``name`` and its argument (the text after the first
    colon, or None)."""

    name: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.name if self.arg is None else f"{self.name}:{self.arg}"


def strategy(name: str):
    """Decorator registering a pattern strategy under ``name``."""
    def wrap(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn
    return wrap


@strategy("random")
def _random(problem: Problem, arg: str | None, ctx: SpecContext) -> Patterns:
    if arg is None:
        raise ValueError("random patterns need a count, as in random:200")
    try:
        count = int(arg)
    except ValueError:
        raise ValueError(f"random:P needs an integer P, got {arg!r}") from None
    if count < 1:
        raise ValueError(f"random:P needs P >= 1, got {count}")
    return sample_patterns(problem.X, problem.m1, count, ctx.seed, problem.depth)


@strategy("exhaustive")
def _exhaustive(problem: Problem, arg: str | None, ctx: SpecContext) -> Patterns:
    return exhaustive_patterns(problem.X, problem.m1, problem.depth)


@strategy("network")
def _network(problem: Problem, arg: str | None, ctx: SpecContext) -> Patterns:
    """Patterns of ``ctx.networks``; with none, train a baseline first and keep it there.

    ``network[:BASELINE][:TOP]``: BASELINE (default adam) is the one trained when no network
    is given; TOP keeps each network's TOP largest sub-networks (see patterns_from_network).
    """
    from .patterns import patterns_from_network
    baseline, top = _network_arg(arg)
    if not ctx.networks:
        from .registry import get_solver
        baseline = baseline or DEFAULT_BASELINE
        result = get_solver(baseline, seed=ctx.seed).solve(problem)
        if result.network is None:
            raise ValueError(f"network patterns: baseline {baseline!r} trained no network "
                             f"({result.message})")
        ctx.networks.append(result.network)
    found = Patterns.empty(problem.m1, problem.n)
    for net in ctx.networks:
        if net.W1.shape[1:] != (problem.d, problem.m1):
            raise ValueError(f"network patterns need W1 of shape (K, {problem.d}, {problem.m1}), "
                             f"got {net.W1.shape}")
        found = found.concat(patterns_from_network(net, problem.X, problem.depth, top))
    return found


def _network_arg(arg: str | None) -> tuple[str | None, int | None]:
    """``"adam:20"`` -> ``("adam", 20)``; either part may be missing."""
    baseline, top = None, None
    for part in (arg or "").split(":"):
        if part.isdigit():
            top = int(part)
            if top < 1:
                raise ValueError(f"network:TOP needs TOP >= 1, got {top}")
        elif part:
            baseline = part
    return baseline, top


@strategy(SEARCH_STRATEGY)
def _dual_search(problem: Problem, arg: str | None, ctx: SpecContext) -> Patterns:
    """Column generation from the patterns so far; ``dual-search:SOLVER`` picks the solver."""
    from .dual_search import dual_search
    from .registry import get_solver
    solver = get_solver(arg) if arg else None           # None: dual_search picks it
    return dual_search(problem, solver, seed=ctx.seed, log=ctx.log).problem.patterns


def parse_spec(spec: str) -> list[PatternStep]:
    """``"random:5,network"`` -> ``[PatternStep("random", "5"), PatternStep("network")]``,
    names checked."""
    steps = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise ValueError(f"empty strategy in pattern spec {spec!r}")
        name, _, arg = part.partition(":")
        if name not in STRATEGIES:
            raise ValueError(
                f"unknown pattern strategy {name!r} in {spec!r}; choose from "
                f"{', '.join(sorted(STRATEGIES))}")
        steps.append(PatternStep(name, arg or None))
    return steps


def apply_spec(problem: Problem, spec: str, ctx: SpecContext | None = None) -> Problem:
    """The problem over the patterns that ``spec`` generates (replacing any stored ones)."""
    ctx = ctx or SpecContext()
    current = problem.with_patterns(Patterns.empty(problem.m1, problem.n))
    for step in parse_spec(spec):
        found = STRATEGIES[step.name](current, step.arg, ctx)
        current = current.with_patterns(current.patterns.concat(found))
    return current
