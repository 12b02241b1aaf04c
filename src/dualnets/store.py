"""The results store: a parquet dataset with one file per finished run, plus its trace.

Layout under the root folder::

    runs/<run_id>.parquet     one row (ROW_SCHEMA)
    traces/<run_id>.parquet   the run's trace rows (TRACE_SCHEMA)

Each file is written to a temporary name and renamed into place (atomic on POSIX), the trace
before the run row, so a run counts as finished exactly when its row file exists: a killed
sweep leaves no half-written run, and resuming skips the finished ones.  The folders are
ordinary parquet datasets (``pandas.read_parquet(root / "runs")`` reads them too).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .runner import Outcome

# every key of a runner row (metrics.evaluate's and the runner's own) is a column
_STR = ("run_id", "dataset", "task", "method", "solver", "model", "objective_kind", "options",
        "status", "message", "host")
_INT = ("seed", "n", "d", "n_test", "parts", "m1", "depth", "random_patterns", "n_patterns",
        "iterations", "active_subnetworks", "nonzero_blocks", "pruned_blocks")
_FLOAT = ("beta", "objective", "network_objective", "dual_objective", "gap", "relative_gap",
          "dual_scale", "constraint_violation", "norm_violation", "train_accuracy",
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


class ResultStore:
    """Read and write the run and trace files under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.traces_dir = self.root / "traces"

    def write(self, outcome: Outcome) -> None:
        """Store one finished run (trace first, then the row that marks it finished)."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.traces_dir.mkdir(parents=True, exist_ok=True)
        run_id = outcome.row["run_id"]
        _atomic_write(to_table(outcome.trace, TRACE_SCHEMA), self.traces_dir / f"{run_id}.parquet")
        row = outcome.row | {"finished_at": time.time()}
        _atomic_write(to_table([row], ROW_SCHEMA), self.runs_dir / f"{run_id}.parquet")

    def finished(self) -> set[str]:
        """Run ids with a stored row."""
        if not self.runs_dir.is_dir():
            return set()
        return {p.stem for p in self.runs_dir.glob("*.parquet")}

    def _read(self, folder: Path, schema: pa.Schema) -> pd.DataFrame:
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        tables = [pq.read_table(f, schema=schema) for f in files]
        table = pa.concat_tables(tables or [schema.empty_table()])
        return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)

    def runs(self) -> pd.DataFrame:
        """One row per stored run, sorted by dataset, n, d, method, seed."""
        df = self._read(self.runs_dir, ROW_SCHEMA)
        return df.sort_values(["dataset", "n", "d", "method", "seed", "run_id"],
                              ignore_index=True)

    def traces(self) -> pd.DataFrame:
        df = self._read(self.traces_dir, TRACE_SCHEMA)
        return df.sort_values(["run_id", "part", "seconds"], kind="stable", ignore_index=True)
