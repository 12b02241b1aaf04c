"""Problem files (.npz, docs/design.md section 5): loading with clear errors, and saving."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .problem import Patterns, Problem

REQUIRED_KEYS = ("X", "y", "beta", "m1")
PATTERN_KEYS = ("inner", "inner_sign", "outer")


def load_problem(path: str | Path) -> Problem:
    """Read a problem file; missing keys, wrong shapes or a non-npz file raise ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"problem file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz problem file: {exc}") from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path} lacks required keys {missing} (has {sorted(data)})")
    present = [k for k in PATTERN_KEYS if k in data]
    if present and len(present) != len(PATTERN_KEYS):
        raise ValueError(f"{path} has pattern keys {present} but needs all of {list(PATTERN_KEYS)}")
    patterns = Patterns(*(data[k] for k in PATTERN_KEYS)) if present else None
    _scalar = lambda k: data[k].item() if data[k].ndim == 0 else _bad_scalar(path, k, data[k])  # noqa: E731
    depth = int(_scalar("depth")) if "depth" in data else 3
    return Problem(
        data["X"], data["y"], float(_scalar("beta")), int(_scalar("m1")), depth=depth,
        patterns=patterns, X_test=data.get("X_test"), y_test=data.get("y_test"),
        name=path.stem)


def _bad_scalar(path: Path, key: str, value: np.ndarray):
    raise ValueError(f"{path}: {key} must be a scalar, got an array of shape {value.shape}")


def save_problem(problem: Problem, path: str | Path) -> None:
    """Write a problem file in the format of docs/design.md section 5 (plus ``depth``)."""
    arrays = {"X": problem.X, "y": problem.y, "beta": np.float64(problem.beta),
              "m1": np.int64(problem.m1), "depth": np.int64(problem.depth)}
    if problem.patterns is not None:
        p = problem.patterns
        arrays.update(inner=p.inner, inner_sign=p.inner_sign.astype(np.int8), outer=p.outer)
    if problem.X_test is not None:
        arrays.update(X_test=problem.X_test, y_test=problem.y_test)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
