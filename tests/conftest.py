"""Shared fixtures: tiny random problems and the public reference cases."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dualnets.problem import Problem

REPO = Path(__file__).resolve().parents[1]


def cases_dir() -> Path | None:
    """``$DUALNETS_CASES`` or ``../shared/cases`` beside the repo; None when absent."""
    path = Path(os.environ.get("DUALNETS_CASES", REPO.parent / "shared" / "cases"))
    return path if path.is_dir() and any(path.glob("*.npz")) else None


def tiny_problem(seed: int, n: int = 6, d: int = 2, m1: int = 2, beta: float = 0.1,
                 depth: int = 3) -> Problem:
    """Random data with a ones column (so d counts it) and a smooth target."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, d - 1))
    X = np.hstack([x, np.ones((n, 1))])
    y = np.sin(2.5 * x.sum(axis=1)) + 0.1 * rng.standard_normal(n)
    return Problem(X, y, beta, m1, depth=depth, name=f"tiny{seed}")


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
    yield
