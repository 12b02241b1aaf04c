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


def best_projected_adam(problem: Problem, restarts: int, steps: int, K: int = 4,
                        lr: float = 0.05, seed: int = 0) -> float:
    """Best NC objective (the problem's loss: squared or logistic) over restarts of projected
    Adam, batched over restarts: the brute-force side of the convex optimum's tests."""
    g = torch.Generator().manual_seed(seed)
    X, y = torch.tensor(problem.X), torch.tensor(problem.y)
    d, m1 = problem.d, problem.m1
    W1 = torch.randn(restarts, K, d, m1, generator=g, dtype=torch.float64)
    W1 /= W1.flatten(2).norm(dim=2)[:, :, None, None]
    w2 = torch.randn(restarts, K, m1, generator=g, dtype=torch.float64)
    w3 = torch.randn(restarts, K, generator=g, dtype=torch.float64)
    params = [p.requires_grad_() for p in (W1, w2, w3)]
    opt = torch.optim.Adam(params, lr=lr)

    def objectives():
        inner = torch.einsum("rknm,rkm->rkn", torch.relu(torch.einsum("nd,rkdm->rknm", X, W1)),
                             w2)
        if problem.depth == 2:
            f, pen = inner.sum(1), W1.pow(2).sum((1, 2, 3)) + w2.pow(2).sum((1, 2))
        else:
            f = (torch.relu(inner) * w3[:, :, None]).sum(1)
            pen = w2.pow(2).sum((1, 2)) + w3.pow(2).sum(1)
        if problem.loss == "logistic":
            loss = torch.nn.functional.softplus(-y * f, threshold=1e6).sum(1)
        else:
            loss = 0.5 * (f - y).pow(2).sum(1)
        return loss + 0.5 * problem.beta * pen

    for _ in range(steps):
        opt.zero_grad()
        objectives().sum().backward()
        opt.step()
        if problem.depth == 3:
            with torch.no_grad():
                W1 /= W1.flatten(2).norm(dim=2).clamp_min(1.0)[:, :, None, None]
    with torch.no_grad():
        return float(objectives().min())


@pytest.fixture
def al_without_ipm(monkeypatch):
    """al's "auto" without its interior-point choice, for the tests of the augmented
    Lagrangian itself (that choice is tested in test_ipm.py)."""
    from dualnets.solvers import ipm

    monkeypatch.setattr(ipm, "MAX_CONE_ROWS", 0)
