"""The results store: a parquet dataset with one file per finished run, plus its trace.

Layout under the root folder::

    runs/<run_id>.parquet     one row (ROW_SCHEMA)
    traces/<run_id>.parquet   the run's trace rows (TRACE_SCHEMA)

Each file is written to a temporary name and renamed into place (atomic on POSIX), the trace
before the run row, so a run counts as finished exactly when its row file exists: a killed
sweep leaves no half-written run, and resuming skips the finished ones.  The folders are
ordinary parquet datasets (``pandas.read_parquet(root / "runs")`` reads them too).

The store heals: every file is verified when read (it opens as parquet, has the schema's
columns, one row whose ``run_id`` is its file name; its trace the same).  A file that fails is
moved to ``quarantine/runs/`` or ``quarantine/traces/`` with a warning (logger
``dualnets.store``), so that its run counts as not stored: a sweep computes it again and a
report skips it.  Files not named ``*.parquet`` are never read.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .outputs import atomic_open
from .runner import Outcome

log = logging.getLogger(__name__)
UNREADABLE = (pa.ArrowException, OSError, ValueError)

# every key of a runner row (metrics.evaluate's and the runner's own) is a column
_STR = ("run_id", "dataset", "task", "method", "solver", "model", "objective_kind", "options",
        "status", "message", "host", "loss")
_INT = ("seed", "fold", "n", "d", "n_test", "parts", "m1", "depth", "random_patterns",
        "n_patterns", "iterations", "active_subnetworks", "nonzero_blocks", "pruned_blocks")
_FLOAT = ("beta", "validation", "objective", "network_objective", "dual_objective", "gap",
          "relative_gap", "dual_scale", "constraint_violation", "norm_violation", "train_accuracy",
          "test_accuracy", "seconds", "pattern_seconds", "setup_seconds", "solve_seconds",
          "warmup_seconds", "finished_at")
ROW_SCHEMA = pa.schema([(c, pa.string()) for c in _STR] + [(c, pa.int64()) for c in _INT]
                       + [(c, pa.float64()) for c in _FLOAT] + [("certified", pa.bool_())])
TRACE_SCHEMA = pa.schema([("run_id", pa.string()), ("part", pa.int64()), ("seconds", pa.float64()),
                          ("iteration", pa.int64()), ("objective", pa.float64()),
                          ("relative_gap", pa.float64()), ("violation", pa.float64())])


def _cast(value, kind):
    """A value of the column's type, or None when it is missing or not finite."""
    if value is None:
        return None
    if kind == pa.string():
        return str(value)
    if kind == pa.bool_():
        return bool(value)
    value = float(value)
    if not math.isfinite(value):
        return None if kind == pa.int64() else value
    return int(value) if kind == pa.int64() else value


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) as a table of ``schema``: missing keys are null, extra keys dropped."""
    columns = {f.name: [_cast(r.get(f.name), f.type) for r in rows] for f in schema}
    if "certified" in columns:
        columns["certified"] = [bool(v) for v in columns["certified"]]
    return pa.table(columns, schema=schema)


def _atomic_write(table: pa.Table, path: Path) -> None:
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh)


def _read_checked(path: Path, schema: pa.Schema, rows: int | None = None) -> pa.Table:
    """The table of one run's file; ValueError unless its run ids are all its file name."""
    table = pq.read_table(path, schema=schema)
    if rows is not None and table.num_rows != rows:
        raise ValueError(f"it holds {table.num_rows} rows, expected {rows}")
    if any(run_id != path.stem for run_id in table.column("run_id").to_pylist()):
        raise ValueError(f"its run_id is not its file name {path.stem!r}")
    return table


class ResultStore:
    """Read and write the run and trace files under ``root``, verifying what it reads."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.traces_dir = self.root / "traces"
        self.quarantine_dir = self.root / "quarantine"

    def write(self, outcome: Outcome) -> None:
        """Store one finished run (trace first, then the row that marks it finished)."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.traces_dir.mkdir(parents=True, exist_ok=True)
        run_id = outcome.row["run_id"]
        _atomic_write(to_table(outcome.trace, TRACE_SCHEMA), self.traces_dir / f"{run_id}.parquet")
        row = outcome.row | {"finished_at": time.time()}
        _atomic_write(to_table([row], ROW_SCHEMA), self.runs_dir / f"{run_id}.parquet")

    def run(self, run_id: str) -> tuple[pa.Table, pa.Table] | None:
        """The verified row and trace of one run; None when it is not (readably) stored."""
        row_path = self.runs_dir / f"{run_id}.parquet"
        if not row_path.is_file():
            return None
        try:
            row = _read_checked(row_path, ROW_SCHEMA, rows=1)
        except UNREADABLE as exc:
            self._quarantine(row_path, exc)
            return None
        trace_path = self.traces_dir / f"{run_id}.parquet"
        try:
            trace = _read_checked(trace_path, TRACE_SCHEMA)
        except UNREADABLE as exc:
            self._quarantine(trace_path, exc)
            self._quarantine(row_path, "its trace file is unreadable")
            return None
        return row, trace

    def row(self, run_id: str) -> dict | None:
        """The stored row of one run as a dict (None when not readably stored)."""
        found = self.run(run_id)
        return None if found is None else found[0].to_pylist()[0]

    def _quarantine(self, path: Path, why) -> None:
        """Move an unreadable file aside (into quarantine/<folder>/), with a warning."""
        dest = self.quarantine_dir / path.parent.name / path.name
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            where = f"moved to {dest}"
        except FileNotFoundError:
            if not path.exists():
                return   # moved by another reader already, or never written
            where = "left in place"
        except OSError as exc:
            where = f"left in place ({exc.strerror})"
        log.warning("%s: unreadable (%s); %s; its run counts as not stored (a sweep recomputes "
                    "it, a report skips it)", path, str(why).splitlines()[0] or type(why).__name__,
                    where)

    def _all(self) -> dict[str, tuple[pa.Table, pa.Table]]:
        ids = sorted(p.stem for p in self.runs_dir.glob("*.parquet")) \
            if self.runs_dir.is_dir() else []
        found = {run_id: self.run(run_id) for run_id in ids}
        return {k: v for k, v in found.items() if v is not None}

    def finished(self) -> set[str]:
        """Run ids whose row and trace are stored and readable."""
        return set(self._all())

    @staticmethod
    def _frame(tables: list[pa.Table], schema: pa.Schema) -> pd.DataFrame:
        table = pa.concat_tables(tables or [schema.empty_table()])
        return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)

    def runs(self) -> pd.DataFrame:
        """One row per stored run, sorted by dataset, n, d, method, seed."""
        df = self._frame([row for row, _ in self._all().values()], ROW_SCHEMA)
        return df.sort_values(["dataset", "n", "d", "method", "seed", "run_id"],
                              ignore_index=True)

    def traces(self) -> pd.DataFrame:
        df = self._frame([trace for _, trace in self._all().values()], TRACE_SCHEMA)
        return df.sort_values(["run_id", "part", "seconds"], kind="stable", ignore_index=True)
