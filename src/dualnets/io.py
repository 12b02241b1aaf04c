"""Problem files (.npz, docs/design.md section 5): loading with typed checks, and saving.

Every key is checked at load time, by :mod:`dualnets.validate`, with its expected type, shape
and range, and each message names the key and the file.  Extra keys are ignored.  The loss is
the optional key ``loss``, a string array ("squared" or "logistic"); without it the loss is
squared.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from . import validate
from .network import ParallelNet
from .outputs import atomic_open
from .problem import LOSSES, Patterns, Problem

REQUIRED_KEYS = ("X", "y", "beta", "m1")
PATTERN_KEYS = ("inner", "inner_sign", "outer")
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive (empty or not), what np.savez writes
NPY_MAGIC = b"\x93NUMPY"


def load_problem(path: str | Path) -> Problem:
    """Read and check a problem file; any bad content raises a one-line ValueError."""
    path = Path(path)
    data = read_npz(path)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path} lacks required keys {missing} (has {sorted(data)})")
    present = [k for k in PATTERN_KEYS if k in data]
    if present and len(present) != len(PATTERN_KEYS):
        raise ValueError(f"{path} has pattern keys {present} but needs all of {list(PATTERN_KEYS)}")
    where = lambda key: f"key {key!r} of {path}"  # noqa: E731
    X = validate.real_array("X", data["X"], 2, where("X"))
    y = validate.real_array("y", data["y"], 1, where("y"))
    beta = validate.real("beta", validate.scalar("beta", data["beta"], where("beta")),
                         where("beta"), above=0)
    m1 = validate.integer("m1", validate.scalar("m1", data["m1"], where("m1")), where("m1"),
                          minimum=1)
    depth = validate.integer("depth", validate.scalar("depth", data["depth"], where("depth")),
                             where("depth"), choices=(2, 3)) if "depth" in data else 3
    loss = _loss(data["loss"], where("loss")) if "loss" in data else "squared"
    patterns = _patterns(data, m1, X.shape[0], where) if present else None
    test = {k: validate.real_array(k, data[k], ndim, where(k))
            for k, ndim in (("X_test", 2), ("y_test", 1)) if k in data}
    try:
        return Problem(X, y, beta, m1, depth=depth, loss=loss, patterns=patterns,
                       X_test=test.get("X_test"), y_test=test.get("y_test"), name=path.stem)
    except ValueError as exc:   # the checks between keys (n >= 2, y against X, test data)
        raise ValueError(f"{exc} ({path})") from None


def read_npz(path: Path, what: str = "problem file") -> dict[str, np.ndarray]:
    """Every array of an .npz archive; a missing file, another format or a pickled (object)
    array is a one-line ValueError that says which (``what``: the kind of file expected)."""
    if not path.is_file():
        raise ValueError(f"{what} not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(NPY_MAGIC):
        raise ValueError(f"{path} is a single .npy array, not an .npz {what} (numpy.savez "
                         "writes one, with one key per array)")
    if not head.startswith(ZIP_MAGIC):
        raise ValueError(f"{path} is not a readable .npz {what}: it is not a zip archive "
                         f"(starts with {head!r}; numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: _member(archive, key, path) for key in archive.files}
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz {what}: "
                         f"{type(exc).__name__}: {exc}") from None


def _member(archive, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"key {key!r} of {path} holds pickled (object) data, which is "
                             "never loaded; store it as a numeric or bool array") from None
        raise ValueError(f"key {key!r} of {path} is not a readable array: {exc}") from None


def _loss(value: np.ndarray, where: str) -> str:
    """The ``loss`` key: a string scalar naming one of :data:`dualnets.problem.LOSSES`."""
    text = str(value) if value.dtype.kind == "U" and value.ndim == 0 else value
    return validate.choice("loss", text, where, choices=LOSSES)


def _patterns(data: dict, m1: int, n: int, where) -> Patterns:
    """The pattern arrays, each checked against X's n and the file's m1 (not only against each
    other), so that a wrong shape is blamed on the key that has it."""
    inner = validate.shaped("inner", data["inner"], "b", "a bool", (None, m1, n),
                            f"(P, m1={m1}, n={n})", where("inner"))
    P = inner.shape[0]
    sign = validate.shaped("inner_sign", data["inner_sign"], "iu", "an integer", (P, m1),
                           f"(P={P}, m1={m1})", where("inner_sign"))
    if not np.all(np.abs(sign) == 1):
        raise ValueError(f"inner_sign must contain only +1 and -1, got values "
                         f"{sorted(set(np.unique(sign).tolist()) - {1, -1})[:5]} "
                         f"({where('inner_sign')})")
    outer = validate.shaped("outer", data["outer"], "b", "a bool", (P, n), f"(P={P}, n={n})",
                            where("outer"))
    return Patterns(inner, sign, outer)


def load_network(path: str | Path) -> ParallelNet:
    """A trained network file (``dualnets train --save-network``), its format checked first."""
    read_npz(Path(path), "network file")
    return ParallelNet.load(path)


def save_problem(problem: Problem, path: str | Path) -> None:
    """Write a problem file in the format of docs/design.md section 5 (plus ``depth`` and
    ``loss``), atomically."""
    arrays = {"X": problem.X, "y": problem.y, "beta": np.float64(problem.beta),
              "m1": np.int64(problem.m1), "depth": np.int64(problem.depth),
              "loss": np.array(problem.loss)}
    if problem.patterns is not None:
        p = problem.patterns
        arrays.update(inner=p.inner, inner_sign=p.inner_sign.astype(np.int8), outer=p.outer)
    if problem.X_test is not None:
        arrays.update(X_test=problem.X_test, y_test=problem.y_test)
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
