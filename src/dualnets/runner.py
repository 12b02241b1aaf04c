"""Run one method on one dataset problem and return a tidy row plus trace rows.

A *method* is a registry name, optionally followed by pattern strategies joined with ``+``:
``"clarabel"``, ``"al"``, ``"gated-fista"``, ``"sgd"``, ``"adam"``, ``"al+dual-search"``,
``"clarabel+network"``.  Convex methods solve the program over ``random:P`` patterns plus the
strategies' patterns (``pattern_specs``); network baselines take no strategies.

The chain is the one of DESIGN.md section 6: dataset -> Problem(s) -> solver.solve() -> Result
-> :func:`dualnets.metrics.evaluate` -> row.  Multiclass data are trained one-vs-rest, one
problem (a "part") per class; the row sums objectives and gaps over the parts and predicts by
the argmax of the C networks.  Nothing fails silently: a method that is not registered, or that
``supports()`` refuses, or that is over the interior-point size limit, gives a row with status
``"skipped"`` and the reason; an exception gives status ``"error"`` and its message.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np

from .datasets import Dataset, is_synthetic, load_dataset, one_vs_rest
from .dual_search import SearchConfig, dual_search
from .lifting import Lifting
from .metrics import evaluate
from .network import ParallelNet
from .pattern_specs import STRATEGIES, SpecContext, apply_spec
from .problem import Problem
from .rebuild import prune_blocks, rebuild_network
from .registry import available_solvers, get_solver, solver_class
from .result import TRACE_COLUMNS, Result

# Methods the comparison expects even before their modules land: a missing one is reported
# as a skipped row (with this model label), never dropped.  The value is the Result.model.
EXPECTED_METHODS: dict[str, str] = {
    "clarabel": "relu", "ecos": "relu", "al": "relu", "gated-fista": "gated",
    "sgd": "network", "adam": "network", "plain-wd": "network",
}
EXPECTED_STRATEGIES: tuple[str, ...] = ("random", "exhaustive", "network", "dual-search")
INTERIOR_POINT = ("clarabel", "ecos", "scs", "mosek")
# Interior-point cost grows with the cone rows n * (G + B): about 60000 rows took ~7 s and
# 320000 rows ~85 s with Clarabel on this 2-core machine (DESIGN.md, issue 3).
DEFAULT_IP_LIMIT = 100_000
RUN_STATUSES = ("optimal", "inaccurate", "max_iterations", "time_limit", "infeasible", "error",
                "skipped", "timeout")
TIMING_COLUMNS = ("seconds", "pattern_seconds", "setup_seconds", "solve_seconds",
                  "warmup_seconds", "finished_at", "host")


@dataclass(frozen=True)
class Method:
    """A parsed method string: the registry name and the pattern strategies after it."""

    solver: str
    strategies: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Method:
        solver, *strategies = [p.strip() for p in str(text).split("+")]
        known = set(EXPECTED_METHODS) | set(available_solvers())
        if solver not in known:
            raise ValueError(f"unknown method {text!r}: {solver!r} is not one of "
                             f"{', '.join(sorted(known))}")
        for step in strategies:
            name = step.partition(":")[0]
            if name not in set(EXPECTED_STRATEGIES) | set(STRATEGIES):
                raise ValueError(f"unknown pattern strategy {name!r} in method {text!r}")
        if strategies and cls(solver).model == "network":
            raise ValueError(f"method {text!r}: the network baseline {solver!r} takes no "
                             "pattern strategies")
        return cls(solver, tuple(strategies))

    @property
    def model(self) -> str:
        if self.solver in available_solvers():
            return solver_class(self.solver).model
        return EXPECTED_METHODS[self.solver]

    def pattern_spec(self, n_random: int) -> str:
        return ",".join([f"random:{n_random}", *self.strategies])


@dataclass(frozen=True, eq=False)
class RunSpec:
    """Everything that defines one run; ``run_id`` hashes it (without ``timeout``).

    ``seed`` drives the method's randomness (pattern sampling, initialization); the data split
    uses ``data_seed`` so that every method and seed sees the same data.  ``options`` are the
    hyperparameters of this run's solver (keyword arguments of its class); ``search`` those of
    a trailing "dual-search" (:class:`dualnets.dual_search.SearchConfig` fields).
    """

    dataset: str
    method: str
    seed: int = 0
    n: int | None = None
    d: int | None = None
    beta: float = 1.0
    m1: int = 2
    depth: int = 3
    patterns: int = 50
    data_seed: int = 0
    options: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    ip_limit: int = DEFAULT_IP_LIMIT
    timeout: float | None = None

    @property
    def run_id(self) -> str:
        key = {k: v for k, v in asdict(self).items() if k != "timeout"}
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def base_row(self) -> dict:
        return {"run_id": self.run_id, "dataset": self.dataset, "method": self.method,
                "seed": self.seed, "n": self.n, "d": self.d, "beta": self.beta, "m1": self.m1,
                "depth": self.depth, "random_patterns": self.patterns,
                "options": json.dumps(self.options | ({"search": self.search} if self.search
                                                      else {}), sort_keys=True)}


@dataclass
class Outcome:
    """The tidy row, the trace rows (dicts) and the trained networks (one per part) of a run."""

    row: dict
    trace: list[dict]
    networks: list[ParallelNet | None] = field(default_factory=list)


def unregistered(method: Method) -> str:
    """Why a known method cannot run in this installation ("" if it can)."""
    if method.solver not in available_solvers():
        return (f"solver {method.solver!r} is not registered (available: "
                f"{', '.join(available_solvers())})")
    missing = [s for s in method.strategies if s.partition(":")[0] not in STRATEGIES]
    if missing:
        return f"pattern strategy {missing[0]!r} is not registered"
    return ""


def build_problems(spec: RunSpec) -> tuple[Dataset, list[Problem]]:
    """The dataset and its problems: one, or one per class (one-vs-rest) for multiclass."""
    data = load_dataset(spec.dataset, n=spec.n, seed=spec.data_seed,
                        d=spec.d if is_synthetic(spec.dataset) else None)
    if data.task == "multiclass":
        C = data.n_classes
        targets = zip(one_vs_rest(data.y_train, C), one_vs_rest(data.y_test, C))
        names = [f"{data.name}[{c}]" for c in range(C)]
    else:
        targets, names = [(data.y_train, data.y_test)], [data.name]
    problems = [Problem(data.X_train, ytr, spec.beta, spec.m1, depth=spec.depth,
                        X_test=data.X_test, y_test=yte, name=name)
                for (ytr, yte), name in zip(targets, names)]
    return data, problems


def skip_reason(method: Method, problem: Problem, solver, ip_limit: int) -> str:
    """Why this method cannot run on this problem ("" if it can)."""
    ok, why = solver.supports(problem)
    if not ok:
        return why
    if method.solver in INTERIOR_POINT and problem.patterns is not None:
        rows = problem.n * 2 * problem.n_patterns * (problem.m1 + (problem.depth == 3))
        if rows > ip_limit:
            return (f"interior-point size limit: n*(G+B) = {rows} cone rows > {ip_limit} "
                    "(raise ip_limit to force)")
    return ""


def init_parameters(cls: type) -> set[str]:
    """Keyword arguments a solver class takes, following ``**kwargs`` up its bases."""
    names = set()
    for klass in cls.__mro__[:-1]:
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def make_solver(method: Method, spec: RunSpec, parts: int = 1):
    """The solver instance, with the run's seed and time limit (shared by the ``parts``
    one-vs-rest problems) where its class takes them."""
    accepted = init_parameters(solver_class(method.solver))
    options = dict(spec.options)
    if "seed" in accepted:
        options.setdefault("seed", spec.seed)
    for limit in ("max_seconds", "time_limit"):
        if limit in accepted and spec.timeout is not None and limit not in options:
            options[limit] = float(spec.timeout) / parts
    return get_solver(method.solver, **options)


def network_of(problem: Problem, result: Result) -> ParallelNet | None:
    """The network the metrics evaluate: the baseline's, or the pruned rebuild of Z."""
    if result.network is not None:
        return result.network
    if result.Z is not None and result.model == "relu":
        lift = Lifting.from_problem(problem)
        return rebuild_network(lift, prune_blocks(lift, problem.y, problem.beta, result.Z))
    return None


@dataclass
class Part:
    """One problem's evaluated row, with what the trace needs: the result, the seconds spent
    before the solver's clock started, and the dual-search rounds (if any)."""

    row: dict
    result: Result | None = None
    network: ParallelNet | None = None
    offset: float = 0.0
    rounds: list = field(default_factory=list)


def solve_with_search(method: Method, spec: RunSpec, problem: Problem, solver,
                      rounds: list) -> tuple[Problem, Result]:
    """Solve; a trailing "dual-search" runs column generation with this method's own solver
    and keeps its last solve, which covers the final patterns.  The search starts no new round
    after half the run's timeout, leaving the rest for that last solve."""
    if method.strategies[-1:] != ("dual-search",):
        return problem, solver.solve(problem)
    budget = None if spec.timeout is None else spec.timeout / 2
    config = SearchConfig(**({"time_limit": budget} | spec.search))
    found = dual_search(problem, solver, config, seed=spec.seed, log=rounds)
    return found.problem, found.result


def run_part(method: Method, spec: RunSpec, problem: Problem, networks: list,
             parts: int = 1) -> Part:
    """Patterns, solve and evaluation of one of ``parts`` problems."""
    solver = make_solver(method, spec, parts)
    start = time.perf_counter()
    if method.model != "network":
        ctx = SpecContext(seed=spec.seed, networks=[n for n in networks if n is not None])
        steps = method.pattern_spec(spec.patterns).split(",")
        searched = steps[-1] == "dual-search"
        problem = apply_spec(problem, ",".join(steps[:-1] if searched else steps), ctx)
    reason = skip_reason(method, problem, solver, spec.ip_limit)
    if reason:
        return Part({"status": "skipped", "message": reason, "n_patterns": problem.n_patterns})
    rounds: list = []
    before = time.perf_counter() - start
    problem, result = solve_with_search(method, spec, problem, solver, rounds)
    if rounds:   # the search's time (rounds, re-solves) counts as pattern generation
        before = time.perf_counter() - start - result.setup_seconds - result.solve_seconds
    row = evaluate(problem, result) | {"pattern_seconds": before}
    if rounds:
        row["message"] = f"dual-search: {len(rounds)} rounds, {problem.n_patterns} patterns; " \
            + str(row.get("message", ""))
    return Part(row, result, network_of(problem, result), before + result.setup_seconds, rounds)


def trace_rows(run_id: str, part_index: int, part: Part) -> list:
    """The solver's trace shifted by the time spent before its clock started, after one point
    per dual-search round (its objective at the cumulative search time); a method without a
    trace gets its final point, so that every finished run appears in the figures."""
    result, row = part.result, part.row
    if result is None:
        return []
    rows, clock = [], 0.0
    for rnd in part.rounds:
        clock += rnd["solve_seconds"] + rnd["search_seconds"]
        rows.append({"seconds": clock, "iteration": rnd["round"], "objective": rnd["objective"],
                     "relative_gap": np.nan, "violation": np.nan})
    for r in result.trace:
        rows.append(dict(zip(TRACE_COLUMNS, r)))
        rows[-1]["seconds"] = float(rows[-1]["seconds"]) + part.offset
    if not result.trace:
        rows.append({"seconds": part.offset + result.solve_seconds,
                     "iteration": result.iterations, "objective": row.get("objective", np.nan),
                     "relative_gap": row.get("relative_gap", np.nan),
                     "violation": row.get("constraint_violation", np.nan)})
    return [{"run_id": run_id, "part": part_index, **r} for r in rows]


def argmax_accuracy(nets: list, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of predicting ``argmax_c f_c(X)`` for integer labels ``y``."""
    if any(net is None for net in nets):
        return float("nan")
    scores = np.stack([net.predict(X) for net in nets])
    return float(np.mean(np.argmax(scores, axis=0) == y))


def combine(rows: list[dict], nets: list, data: Dataset) -> dict:
    """One row from the per-class rows of a one-vs-rest run."""
    out = dict(rows[0])
    total = lambda key: float(np.sum([r.get(key, np.nan) for r in rows]))  # noqa: E731
    for key in ("objective", "network_objective", "dual_objective", "gap", "solve_seconds",
                "setup_seconds", "warmup_seconds", "pattern_seconds", "iterations", "n_patterns"):
        out[key] = total(key)
    if np.isfinite(out["gap"]):
        out["relative_gap"] = out["gap"] / max(abs(out["objective"]), 1e-300)
    out["constraint_violation"] = float(np.max([r.get("constraint_violation", np.nan)
                                                for r in rows]))
    out["certified"] = all(bool(r.get("certified", False)) for r in rows)
    out["status"] = next((r["status"] for r in rows if r["status"] != "optimal"), "optimal")
    out["train_accuracy"] = argmax_accuracy(nets, data.X_train, data.y_train)
    out["test_accuracy"] = argmax_accuracy(nets, data.X_test, data.y_test)
    return out


def run(spec: RunSpec, networks: list | None = None) -> Outcome:
    """Run ``spec`` and return its outcome; ``networks`` (one list per part) feed "network"."""
    method = Method.parse(spec.method)
    start = time.perf_counter()
    data, problems = build_problems(spec)
    base = spec.base_row() | {"model": method.model, "solver": method.solver, "task": data.task,
                              "n": data.n, "d": data.d, "n_test": data.n_test,
                              "parts": len(problems), "host": socket.gethostname()}
    missing = unregistered(method)
    if missing:
        return Outcome(base | {"status": "skipped", "message": missing}, [], [])
    rows, traces, nets = [], [], []
    for index, problem in enumerate(problems):
        part = run_part(method, spec, problem, networks[index] if networks else [],
                        len(problems))
        rows.append(part.row)
        traces += trace_rows(spec.run_id, index, part)
        nets.append(part.network)
        if part.row["status"] == "skipped":
            break
    single = len(rows) == 1 or rows[-1]["status"] == "skipped"
    row = rows[-1] if single else combine(rows, nets, data)
    row = base | row | {"seconds": time.perf_counter() - start}
    row["solver"], row["model"] = method.solver, row.get("model") or method.model
    return Outcome(row, traces, nets)


def crash_message(exc: Exception) -> str:
    """One line for an exception: "crashed:", its type and first line, and the innermost frame,
    so that a crash stands apart from an "error" status a solver reports itself."""
    text = str(exc).strip()
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    return (f"crashed: {type(exc).__name__}: {text.splitlines()[0] if text else ''} "
            f"(at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name})")


def run_safely(spec: RunSpec, networks: list | None = None) -> Outcome:
    """:func:`run`, with any exception recorded as a row of status "error"."""
    start = time.perf_counter()
    try:
        return run(spec, networks)
    except Exception as exc:  # noqa: BLE001 - a failed run is data, the sweep goes on
        return Outcome(spec.base_row() | {"status": "error", "message": crash_message(exc),
                                          "seconds": time.perf_counter() - start,
                                          "host": socket.gethostname()}, [], [])
