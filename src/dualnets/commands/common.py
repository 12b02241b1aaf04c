"""Helpers shared by the sub-commands: JSON output and the human-readable table."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..outputs import atomic_open


def jsonable(value):
    """Plain JSON types; NaN and inf become null so that the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, payload: dict) -> None:
    """Strict JSON (no NaN literals), written atomically (no partial or .tmp file left)."""
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n"
    with atomic_open(path) as fh:
        fh.write(text)


def fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    """Print rows as a table with the given columns (missing values shown as '-')."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "solver", "status") else "right")
    for row in rows:
        table.add_row(*(fmt(row[c]) if c in row else "-" for c in columns))
    Console(width=160).print(table)
