"""Run one method on one dataset problem and return a tidy row plus trace rows.

A *method* (:class:`dualnets.method.Method`, parsed once) is a registry name, optionally
followed by pattern strategies joined with ``+``: ``"clarabel"``, ``"al"``, ``"adam"``,
``"al+dual-search"``, ``"clarabel+network"``.  Convex methods solve the program over
``random:P`` patterns plus the strategies' patterns (``pattern_specs``); network baselines
take no strategies.  The runner reads only the solvers' declared capabilities
(:class:`dualnets.solvers.base.Solver`): never their signatures.

The chain is the one of docs/design.md section 6: dataset -> Problem(s) -> solver.solve() -> Result
-> :func:`dualnets.metrics.evaluate` -> row.  Multiclass data are trained one-vs-rest, one
problem (a "part") per class; the row sums objectives and gaps over the parts and predicts by
the argmax of the C networks.  Nothing fails silently: a method whose ``supports()`` refuses
the problem (a missing backend, the interior-point size limit, ...) gives a row with status
``"skipped"`` and the reason; an exception gives status ``"error"`` and its message.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np

from .certificate import relative_gap
from .datasets import Dataset, is_synthetic, load_dataset, one_vs_rest
from .datasets.base import validation_split
from .dual_search import SearchConfig, dual_search
from .lifting import Lifting
from .losses import get_loss
from .metrics import evaluate
from .method import Method
from .network import ParallelNet
from .pattern_specs import SpecContext, apply_spec
from .problem import Problem
from .rebuild import prune_blocks, rebuild_network
from .registry import solver_class
from .result import TRACE_COLUMNS, Result

# Interior-point cost grows with the cone rows n * (G + B): about 60000 rows took ~7 s and
# 320000 rows ~85 s with Clarabel on this 2-core machine (measured in issue 3).
DEFAULT_IP_LIMIT = 100_000
TIMING_COLUMNS = ("seconds", "pattern_seconds", "setup_seconds", "solve_seconds",
                  "warmup_seconds", "finished_at", "host")


@dataclass(frozen=True, eq=False)
class RunSpec:
    """Everything that defines one run; ``run_id`` hashes it (without ``timeout``).

    ``seed`` drives the method's randomness (pattern sampling, initialization); the data split
    uses ``data_seed`` (and ``fold``, for datasets with folds) so that every method and seed
    sees the same data; ``validation`` (a fraction) trains on part of the training rows and
    tests on the rest (:func:`dualnets.datasets.base.validation_split`), for choosing
    hyperparameters without the test rows.  ``loss`` is the training loss ("squared" or
    "logistic", for +-1 labels: binary data, or one-vs-rest targets).  ``options`` are the
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
    loss: str = "squared"
    patterns: int = 50
    data_seed: int = 0
    fold: int | None = None
    validation: float | None = None
    options: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    ip_limit: int = DEFAULT_IP_LIMIT
    timeout: float | None = None

    @property
    def run_id(self) -> str:
        # a fold left to the seed, the test split and the squared loss are not part of the
        # key, so that ids predating folds, validation splits and losses stay
        key = {k: v for k, v in asdict(self).items()
               if k != "timeout" and not (k in ("fold", "validation") and v is None)
               and not (k == "loss" and v == "squared")}
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def base_row(self) -> dict:
        return {"run_id": self.run_id, "dataset": self.dataset, "method": self.method,
                "seed": self.seed, "n": self.n, "d": self.d, "beta": self.beta, "m1": self.m1,
                "depth": self.depth, "loss": self.loss, "random_patterns": self.patterns,
                "fold": self.fold, "validation": self.validation,
                "options": json.dumps(self.options | ({"search": self.search} if self.search
                                                      else {}), sort_keys=True)}


@dataclass
class Outcome:
    """The tidy row, the trace rows (dicts) and the trained networks (one per part) of a run."""

    row: dict
    trace: list[dict]
    networks: list[ParallelNet | None] = field(default_factory=list)


def check_loss(data: Dataset, loss: str) -> None:
    """ValueError, naming the dataset, when its training targets (one-vs-rest ones for
    multiclass data) are not targets of ``loss`` (the logistic loss takes only +-1)."""
    y = one_vs_rest(data.y_train, data.n_classes) if data.task == "multiclass" else data.y_train
    get_loss(loss).check_targets(f"the targets of {data.name}", y)


def build_problems(spec: RunSpec) -> tuple[Dataset, list[Problem]]:
    """The dataset and its problems: one, or one per class (one-vs-rest) for multiclass."""
    data = load_dataset(spec.dataset, n=spec.n, seed=spec.data_seed, fold=spec.fold,
                        d=spec.d if is_synthetic(spec.dataset) else None)
    if spec.validation is not None:
        data = validation_split(data, spec.validation, spec.data_seed)
    if data.task == "multiclass":
        C = data.n_classes
        targets = zip(one_vs_rest(data.y_train, C), one_vs_rest(data.y_test, C))
        names = [f"{data.name}[{c}]" for c in range(C)]
    else:
        targets, names = [(data.y_train, data.y_test)], [data.name]
    problems = [Problem(data.X_train, ytr, spec.beta, spec.m1, depth=spec.depth, loss=spec.loss,
                        X_test=data.X_test, y_test=yte, name=name)
                for (ytr, yte), name in zip(targets, names)]
    return data, problems


def make_solver(method: Method, spec: RunSpec, parts: int = 1, name: str | None = None):
    """The solver ``name`` (default the method's) with the run's options, and what the run
    sets for the capabilities it declares: its seed (``seeded``), its share of the time budget
    ``max_seconds`` (split over the ``parts`` one-vs-rest problems) and the interior-point
    size limit (``interior_point``).  The run's options are the method solver's only."""
    name = name or method.solver
    cls = solver_class(name)
    options = dict(spec.options) if name == method.solver else {}
    if cls.seeded:
        options.setdefault("seed", spec.seed)
    if spec.timeout is not None:
        options.setdefault("max_seconds", float(spec.timeout) / parts)
    if cls.interior_point:
        options.setdefault("max_cone_rows", spec.ip_limit)
    return cls(**options)


def network_of(problem: Problem, result: Result) -> ParallelNet | None:
    """The network the metrics evaluate: the baseline's, or the pruned rebuild of Z."""
    if result.network is not None:
        return result.network
    if result.Z is not None and result.model == "relu":
        lift = Lifting.from_problem(problem)
        return rebuild_network(lift, prune_blocks(lift, problem.y, problem.beta, result.Z,
                                                  problem.loss))
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


def solve_with_search(method: Method, spec: RunSpec, problem: Problem, solver, parts: int,
                      rounds: list) -> tuple[Problem, Result]:
    """Solve; a trailing dual-search runs column generation first, with the run's ``[search]``
    settings, its rounds solved by the method's ``search_solver`` (warm-started round to
    round).  The search starts no new round after half the run's timeout, and every solve,
    the last one included, ends within the timeout: the last solve is the method solver's
    (warm-started from the search's last round when it is another solver), with what is left
    of the budget."""
    if not method.searches:
        return problem, solver.solve(problem)
    share = None if spec.timeout is None else spec.timeout / parts
    config = SearchConfig(**({"max_seconds": None if share is None else share / 2}
                             | spec.search))
    own = method.search_solver == method.solver
    rounds_solver = solver if own else make_solver(method, spec, parts, method.search_solver)
    start = time.perf_counter()
    found = dual_search(problem, rounds_solver, config, seed=spec.seed, log=rounds,
                        solve_by=share)
    if own:
        return found.problem, found.result
    if share is not None:
        solver = solver.within(share - (time.perf_counter() - start))
    return found.problem, solver.solve(found.problem, warm_start=found.result)


def run_part(method: Method, spec: RunSpec, problem: Problem, networks: list,
             parts: int = 1) -> Part:
    """Patterns, solve and evaluation of one of ``parts`` problems."""
    solver = make_solver(method, spec, parts)
    start = time.perf_counter()
    if method.model != "network":
        ctx = SpecContext(seed=spec.seed, networks=[n for n in networks if n is not None])
        problem = apply_spec(problem, method.pattern_spec(spec.patterns), ctx)
    ok, reason = solver.supports(problem)
    if not ok:
        return Part({"status": "skipped", "message": reason, "n_patterns": problem.n_patterns})
    rounds: list = []
    before = time.perf_counter() - start
    problem, result = solve_with_search(method, spec, problem, solver, parts, rounds)
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
        out["relative_gap"] = relative_gap(out["objective"], out["dual_objective"])
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
    base = spec.base_row() | {"model": method.model, "solver": method.solver,
                              "objective_kind": solver_class(method.solver).objective_kind,
                              "task": data.task,
                              "n": data.n, "d": data.d, "n_test": data.n_test,
                              "parts": len(problems), "host": socket.gethostname()}
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
