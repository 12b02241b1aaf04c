"""Resumable sweeps: a grid of datasets x n x d x methods x seeds from a TOML file.

Config (see ``configs/example.toml``)::

    name = "example"
    datasets = ["planted", "breast_cancer"]   # or tables: [datasets.planted] n = [...] d = [...]
    n = [50, 100]            # training rows (optional: the dataset's default)
    n_max = 900              # or: every row up to n_max (top level or per dataset)
    d = [5, 10]              # features incl. the ones column, synthetic datasets only
    methods = ["clarabel", "adam", "al+dual-search"]
    seeds = [0, 1]           # or a count: seeds = 2
    timeout = 120            # seconds per run (optional)
    [problem]                # beta, m1, depth, loss, patterns (random P), data_seed, fold,
                             # ip_limit
    [options.adam]           # keyword arguments of a solver's class
    epochs = 200
    [search]                 # dual-search budget (SearchConfig fields): starts, steps, ...
    [vary.sgd]               # one run per value (a product over the keys): options of a solver
    lrs = [[0.1], [0.01]]
    [select]                 # beta chosen per dataset on a validation split (dualnets.selection)
    beta = [0.1, 1.0, 10.0]
    validation = 0.2

Runs execute in local worker processes (forked, one per run, killed on timeout) or, given a
scheduler address, on a Dask distributed cluster.  The client process alone writes the store
(:mod:`dualnets.store`) as each run finishes, so killing the sweep loses only the runs in flight
and running it again skips every stored run.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Iterator

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from . import validate
from .claims import ClaimQueue, Claims, WorkQueue
from .datasets import check_name, is_synthetic, load_dataset
from .dual_search import SearchConfig
from .method import Method
from .options import typed_options
from .problem import LOSSES
from .registry import solver_class
from .runner import TIMING_COLUMNS, Outcome, RunSpec, check_loss, make_solver, run_safely
from .selection import Selection, choose_beta
from .store import ResultStore

TOP_KEYS = ("name", "datasets", "n", "n_max", "d", "methods", "seeds", "timeout", "workers",
            "threads", "problem", "options", "search", "vary", "select")
# [problem] keys: the check of each (dualnets.validate) and its range
PROBLEM_KEYS = {"beta": (validate.real, {"above": 0}), "m1": (validate.integer, {"minimum": 1}),
                "depth": (validate.integer, {"choices": (2, 3)}),
                "loss": (validate.choice, {"choices": LOSSES}),
                "patterns": (validate.integer, {"minimum": 1}),
                "data_seed": (validate.integer, {"minimum": 0}),
                "fold": (validate.integer, {"minimum": 0}),
                "validation": (validate.real, {"above": 0}),
                "ip_limit": (validate.integer, {"minimum": 1})}
FAILED = ("error", "timeout", "skipped")   # what --retry-failed runs again


@dataclass
class SweepConfig:
    """A validated sweep grid; :meth:`specs` expands it into runs (with a ``select`` stage:
    :meth:`selection_specs`, then :meth:`final_specs` from their results)."""

    name: str
    grid: list[tuple[str, list, list]]          # (dataset, n values, d values); [None] = default
    methods: list[str]
    seeds: list[int]
    problem: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    timeout: float | None = None
    workers: int = 1
    threads: int = 1
    vary: dict = field(default_factory=dict)    # solver -> list of option dicts, one per run
    select: Selection | None = None

    def variants(self, method: str) -> list[dict]:
        """The option dicts of a method's runs: its [options], updated by each [vary] value."""
        solver = Method.parse(method).solver
        opts = self.options.get(solver, {})
        return [opts | v for v in self.vary.get(solver, [{}])]

    def entry_specs(self, dataset: str, n, d, seeds, **problem) -> list[RunSpec]:
        """Every method, variant and seed of one dataset entry."""
        problem = self.problem | problem
        out = []
        for method in self.methods:
            search = self.search if Method.parse(method).searches else {}
            out += [RunSpec(dataset, method, seed, n=n, d=d, options=opts, search=search,
                            timeout=self.timeout, **problem)
                    for opts in self.variants(method) for seed in seeds]
        return out

    def entries(self) -> Iterator[tuple[str, int | None, int | None]]:
        for dataset, ns, ds in self.grid:
            for n in ns:
                for d in ds:
                    yield dataset, n, d

    def specs(self) -> list[RunSpec]:
        """The runs of a sweep without [select]."""
        return [s for e in self.entries() for s in self.entry_specs(*e, self.seeds)]

    def selection_specs(self, dataset: str, n, d) -> list[RunSpec]:
        """The selection stage of one entry: every candidate beta on the validation split."""
        sel = self.select
        return [s for beta in sel.beta
                for s in self.entry_specs(dataset, n, d, sel.seeds or self.seeds, beta=beta,
                                          validation=sel.validation)]

    def final_specs(self, dataset: str, n, d, beta: float) -> list[RunSpec]:
        """The evaluation stage of one entry, at its chosen beta, on the held-out fold."""
        return self.entry_specs(dataset, n, d, self.seeds, beta=beta)


def _int_list(key: str, value, minimum: int) -> list[int]:
    values = value if isinstance(value, list) else None
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                             for v in values):
        raise ValueError(f"{key} must be a non-empty list of integers >= {minimum}, got {value!r}")
    return values


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def _check_sizes(name: str, ns: list, ds: list, loss: str) -> None:
    """Load each (n, d) once so that an impossible size, or targets that the loss cannot take,
    fail now, not in every run."""
    for n in ns:
        for d in ds:
            check_loss(load_dataset(name, n=n, d=d), loss)


def _grid(raw: dict, loss: str) -> list[tuple[str, list, list]]:
    datasets = raw.get("datasets")
    if isinstance(datasets, list) and datasets and all(isinstance(x, str) for x in datasets):
        datasets = {name: {} for name in datasets}
    if not isinstance(datasets, dict) or not datasets:
        raise ValueError(f"datasets must be a list of names or a table of tables, got {datasets!r}")
    grid = []
    for name, sub in datasets.items():
        check_name(name)
        if not isinstance(sub, dict) or set(sub) - {"n", "n_max", "d"}:
            raise ValueError(f"[datasets.{name}] may only set n, n_max and d, got {sub!r}")
        ns = _int_list(f"n of {name}", sub.get("n", raw.get("n")), 2) \
            if "n" in sub or "n" in raw else [None]
        n_max = sub.get("n_max", raw.get("n_max"))
        if n_max is not None:
            if ns != [None]:
                raise ValueError(f"{name}: give n or n_max, not both")
            available = load_dataset(name).n
            ns = [min(_int_list(f"n_max of {name}", [n_max], 2)[0], available)]
        if "d" in sub and not is_synthetic(name):
            raise ValueError(f"d of {name}: only synthetic datasets scale d, {name!r} does not")
        d_raw = sub.get("d", raw.get("d"))
        ds = _int_list(f"d of {name}", d_raw, 1) if d_raw is not None and is_synthetic(name) \
            else [None]
        _check_sizes(name, ns, ds, loss)
        grid.append((name, ns, ds))
    return grid


def _problem(raw: dict) -> dict:
    problem = raw.get("problem", {})
    if not isinstance(problem, dict):
        raise ValueError(f"[problem] must be a table, got {problem!r}")
    out = {}
    for key, value in problem.items():
        if key not in PROBLEM_KEYS:
            raise ValueError(f"unknown key {key!r} in [problem]; expected {', '.join(PROBLEM_KEYS)}")
        check, limits = PROBLEM_KEYS[key]
        typed = check(f"problem.{key}", value, **limits)
        out[key] = value if check is validate.real else typed   # beta as written: same run ids
    return out


def _options(raw: dict, methods: list[str]) -> dict:
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"[options] must be a table of tables, got {options!r}")
    solvers = {Method.parse(m).solver for m in methods}
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ValueError(f"[options.SOLVER] entries must be tables, got {options!r}")
    for solver, opts in options.items():
        if solver not in solvers:
            raise ValueError(f"options given for {solver!r}, which no method uses")
        try:                                # check the hyperparameters now, not in every run
            typed_options(solver_class(solver), opts, f"solver {solver!r}")
            make_solver(Method(solver), RunSpec("config", solver, options=opts))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"options.{solver}: {exc}") from None
    return options


def _search(raw: dict) -> dict:
    """``[search]``: fields of :class:`dualnets.dual_search.SearchConfig`, checked now."""
    search = raw.get("search", {})
    if not isinstance(search, dict):
        raise ValueError(f"[search] must be a table, got {search!r}")
    try:
        SearchConfig(**typed_options(SearchConfig, search, "[search]"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"[search]: {exc}") from None
    return search


def _vary(raw: dict, methods: list[str], options: dict) -> dict:
    """``[vary.SOLVER]``: lists of option values; one variant per element of their product."""
    vary = raw.get("vary", {})
    if not isinstance(vary, dict) or not all(isinstance(v, dict) for v in vary.values()):
        raise ValueError(f"[vary.SOLVER] entries must be tables, got {vary!r}")
    solvers = {Method.parse(m).solver for m in methods}
    out = {}
    for solver, table in vary.items():
        if solver not in solvers:
            raise ValueError(f"vary given for {solver!r}, which no method uses")
        for key, values in table.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"vary.{solver}.{key} must be a non-empty list of values, "
                                 f"got {values!r}")
        keys = list(table)
        variants = [dict(zip(keys, combo)) for combo in itertools.product(*table.values())]
        for variant in variants:
            _options({"options": {solver: options.get(solver, {}) | variant}}, methods)
        out[solver] = variants
    return out


def _selection(raw: dict, grid: list) -> Selection | None:
    if "select" not in raw:
        return None
    select = Selection.parse(raw["select"])
    for name, ns, _ in grid:
        if len(ns) > 1:
            raise ValueError(f"with [select], each dataset takes one n (its beta is chosen per "
                             f"dataset), got n = {ns} for {name}")
        if load_dataset(name).task == "regression":
            raise ValueError(f"[select] chooses beta by validation accuracy, and {name} is a "
                             f"regression dataset")
    return select


def parse_config(raw: dict, default_name: str = "sweep") -> SweepConfig:
    """Validate a parsed TOML document; every mistake is a one-line ``ValueError``."""
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in config; expected {', '.join(TOP_KEYS)}")
    methods = raw.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise ValueError(f"methods must be a non-empty list of names, got {methods!r}")
    for method in methods:
        Method.parse(method)
    seeds = raw.get("seeds", [0])
    seeds = list(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) and \
        seeds > 0 else _int_list("seeds", seeds, 0)
    timeout = raw.get("timeout")
    if timeout is not None:
        validate.real("timeout", timeout, above=0)
    workers, threads = (_positive_int(k, raw.get(k, 1)) for k in ("workers", "threads"))
    problem = _problem(raw)
    grid, options = _grid(raw, problem.get("loss", "squared")), _options(raw, methods)
    return SweepConfig(str(raw.get("name", default_name)), grid, methods, seeds, problem,
                       options, _search(raw), timeout, workers, threads,
                       _vary(raw, methods, options), _selection(raw, grid))


def load_config(path: str | Path, loss: str | None = None) -> SweepConfig:
    """Read and validate a whole config file: every error is one line naming the file.
    ``loss`` (the sweep's ``--loss``) replaces the config's ``[problem] loss``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"sweep config not found: {path}")
    data = path.read_bytes()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text TOML file (byte {data[exc.start]:#04x} at offset "
                         f"{exc.start} is not UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    if loss is not None and isinstance(raw.get("problem", {}), dict):
        raw["problem"] = raw.get("problem", {}) | {"loss": loss}
    try:
        return parse_config(raw, default_name=path.stem)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# execution ------------------------------------------------------------------------------------
def limit_threads(threads: int) -> None:
    """Pin torch, BLAS and Rust thread pools of this process to ``threads``."""
    import torch
    from threadpoolctl import threadpool_limits

    os.environ["RAYON_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    threadpool_limits(threads)


def execute(spec: RunSpec, threads: int = 1, networks: list | None = None,
            keep_networks: bool = False) -> Outcome:
    """One run in the current process (the Dask task); networks dropped unless kept."""
    limit_threads(threads)
    outcome = run_safely(spec, networks)
    return outcome if keep_networks else Outcome(outcome.row, outcome.trace, [])


def failed(spec: RunSpec, status: str, message: str, seconds: float) -> Outcome:
    return Outcome(spec.base_row() | {"status": status, "message": message, "seconds": seconds},
                   [], [])


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the sweep process dies (best effort)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(spec: RunSpec, conn, threads: int, networks: list | None, keep: bool) -> None:
    # Ctrl-C is the parent's to handle (it kills the workers): no worker traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    conn.send(execute(spec, threads, networks, keep))
    conn.close()


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C back while a worker is forked and registered, so that the parent always
    knows every worker it must kill: a SIGINT meanwhile is only recorded (also if it reaches
    the worker before the worker ignores it) and raised as KeyboardInterrupt right after.
    Blocking the signal would not do: the kernel hands it to another thread."""
    if threading.current_thread() is not threading.main_thread():
        yield   # signal handlers belong to the main thread; nothing to defer here
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _start(ctx, spec: RunSpec, threads: int, networks: list | None, keep: bool):
    """Fork a worker for ``spec``; returns the end of its pipe and the process."""
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, daemon=True, args=(spec, send, threads, networks, keep))
    proc.start()
    send.close()
    return recv, proc


def hard_limit(timeout: float | None) -> float:
    """Seconds after which a local run is killed: solvers with their own time limit stop at
    ``timeout`` and still need time to evaluate their answer."""
    return float("inf") if timeout is None else 1.5 * timeout + 2.0


def warm_up() -> None:
    """Import what every run would import on first use (torch.optim pulls in torch._dynamo,
    ~3 s), once in the parent, so that forked workers inherit it."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def run_local(specs: list[RunSpec] | WorkQueue, workers: int, threads: int,
              networks: list | None = None, keep_networks: bool = False) -> Iterator[Outcome]:
    """Run each spec in a forked process, ``workers`` at a time, yielding as they finish
    (``networks`` and ``keep_networks``: see :func:`dualnets.runner.run`).  A
    :class:`~dualnets.claims.ClaimQueue` hands out only the runs this sweep claimed."""
    ctx = mp.get_context("fork")
    queue = specs if isinstance(specs, WorkQueue) else WorkQueue(specs)
    if not queue.done:
        warm_up()
    running = {}
    try:
        while not queue.done or running:
            while len(running) < workers and (spec := queue.take()) is not None:
                with _sigint_deferred():
                    recv, proc = _start(ctx, spec, threads, networks, keep_networks)
                    running[recv] = (proc, spec, time.monotonic())
            if not running:   # every run left is another sweep's: look again soon
                time.sleep(0.2)
                continue
            for conn in wait(list(running), timeout=0.2):
                proc, spec, started = running.pop(conn)
                try:
                    outcome = conn.recv()
                except EOFError:
                    proc.join()
                    outcome = failed(spec, "error", f"worker died (exit code {proc.exitcode})",
                                     time.monotonic() - started)
                conn.close()
                proc.join()
                yield outcome
            for conn, (proc, spec, started) in list(running.items()):
                if time.monotonic() - started > hard_limit(spec.timeout):
                    proc.kill()
                    proc.join()
                    conn.close()
                    del running[conn]
                    yield failed(spec, "timeout", f"killed after {hard_limit(spec.timeout):g} s "
                                 f"(timeout {spec.timeout:g} s)", time.monotonic() - started)
    finally:
        for proc, _, _ in running.values():
            proc.kill()
            proc.join()


def run_dask(specs: list[RunSpec] | WorkQueue, address: str, threads: int) -> Iterator[Outcome]:
    """Submit the specs to the Dask scheduler at ``address``, yielding as runs finish; with a
    :class:`~dualnets.claims.ClaimQueue` the client claims each run before submitting it.

    Timeouts are those of the solvers' own limits (``max_seconds``): a Dask
    worker thread cannot be killed from the client.
    """
    from distributed import Client, as_completed

    queue = specs if isinstance(specs, WorkQueue) else WorkQueue(specs)
    with Client(address, timeout="20s") as client:
        by_key, finished = {}, as_completed()
        while not queue.done or finished.count():
            while (spec := queue.take()) is not None:
                future = client.submit(execute, spec, threads, pure=False,
                                       key=f"dualnets-run-{spec.run_id}-{time.time_ns()}")
                by_key[future.key] = (spec, time.monotonic())
                finished.add(future)
            if not finished.has_ready():
                time.sleep(0.05)
                continue
            future = next(finished)
            spec, started = by_key.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker or task is a failed run
                yield failed(spec, "error", f"{type(exc).__name__}: {exc}".splitlines()[0],
                             time.monotonic() - started)


def pending_specs(specs: list[RunSpec], store: ResultStore, retry_failed: bool) -> list[RunSpec]:
    """The specs without a stored row (and, with ``retry_failed``, those that failed or were
    skipped, e.g. for a method that was not installed then); reads only their own files."""
    out = []
    for spec in specs:
        row = store.row(spec.run_id)
        if row is None or (retry_failed and row["status"] in FAILED):
            out.append(spec)
    return out


def stored_since(store: ResultStore, run_id: str, started: float, retry_failed: bool) -> bool:
    """Whether a run is stored (readably); with ``retry_failed``, a failed run counts only when
    stored after ``started`` (by this sweep or a concurrent one)."""
    row = store.row(run_id)
    if row is None:
        return False
    return not retry_failed or row["status"] not in FAILED or row["finished_at"] >= started


def run_stage(label: str, specs: list[RunSpec], store: ResultStore, scheduler: str | None,
              workers: int, threads: int, retry_failed: bool, progress: bool) -> None:
    """Run the specs not yet in ``store``, writing each as it finishes (module docstring)."""
    from tqdm import tqdm

    todo = pending_specs(specs, store, retry_failed)
    print(f"{label}: {len(specs)} runs, {len(specs) - len(todo)} already stored "
          f"in {store.root}, {len(todo)} to run" + (f" on {scheduler}" if scheduler else ""))
    claims, started = Claims(store.root), time.time()
    queue = ClaimQueue(todo, claims, lambda run_id: stored_since(store, run_id, started,
                                                                 retry_failed))
    outcomes = run_dask(queue, scheduler, threads) if scheduler else \
        run_local(queue, workers, threads)
    ran = 0
    try:
        with tqdm(total=len(todo), disable=not progress or not todo, unit="run") as bar:
            for outcome in outcomes:
                store.write(outcome)
                claims.release(outcome.row["run_id"])
                ran += 1
                bar.set_postfix_str(f"{outcome.row['dataset']} {outcome.row['method']} "
                                    f"{outcome.row['status']}", refresh=False)
                bar.update(1)
    finally:
        outcomes.close()     # kill the workers still running, then free their claims
        claims.release_all()
    if todo:
        print(f"{label}: ran {ran} of the {len(todo)} runs here" +
              ("; another sweep on this store ran the others" if ran < len(todo) else ""))


def chosen_specs(config: SweepConfig, selection: dict, store: ResultStore) -> list[RunSpec]:
    """The evaluation runs of the [select] entries in ``selection`` (entry -> its selection
    specs): each at the beta its stored selection runs chose
    (:func:`dualnets.selection.choose_beta`); an entry none of whose selection runs has an
    accuracy is named and left out."""
    import pandas as pd

    out = []
    for entry, specs in selection.items():
        rows = pd.DataFrame([r for s in specs if (r := store.row(s.run_id)) is not None])
        beta = choose_beta(rows, config.select.beta) if len(rows) else None
        if beta is None:
            print(f"select: {entry[0]}: no selection run has a validation accuracy "
                  f"(see its failed runs); not evaluated")
            continue
        out += config.final_specs(*entry, beta)
    return out


def run_sweep(config: SweepConfig, out: str | Path, scheduler: str | None = None,
              workers: int | None = None, retry_failed: bool = False, progress: bool = True):
    """Run the missing runs of ``config`` into the store at ``out``; return this sweep's table.

    With [select], dataset entries go one at a time: the selection runs of an entry run
    alongside the evaluation runs (at the chosen beta) of the entry before it, so that both
    workers stay busy and an interrupted sweep leaves whole datasets done."""
    store = ResultStore(out)

    def stage(label: str, specs: list[RunSpec]) -> list[RunSpec]:
        ids = [s.run_id for s in specs]
        if len(set(ids)) != len(ids):
            raise ValueError("the grid repeats a run (a dataset, n, d, method, variant or seed "
                             "listed twice)")
        run_stage(f"sweep {config.name!r}{label}", specs, store, scheduler,
                  workers or config.workers, config.threads, retry_failed, progress)
        return specs

    if config.select is None:
        specs = stage("", config.specs())
    else:
        entries = list(config.entries())
        selection = {e: config.selection_specs(*e) for e in entries}
        specs, previous = [], None
        for entry in [*entries, None]:
            batch = selection[entry] if entry else []
            final = chosen_specs(config, {previous: selection[previous]}, store) \
                if previous else []
            names = ([f"{entry[0]} selection"] if entry else []) + \
                ([f"{previous[0]} evaluation"] if previous else [])
            specs += stage(f", {' + '.join(names)}", batch + final)
            previous = entry
    runs = store.runs()
    return runs[runs["run_id"].isin({s.run_id for s in specs})].reset_index(drop=True)


def comparable(runs):
    """The table without timings and host, for comparing two sweeps of the same config."""
    return runs.drop(columns=[c for c in TIMING_COLUMNS if c in runs.columns])
