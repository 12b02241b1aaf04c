"""What every PyTorch solver's run shares: the clock, the run state, the device certificate and
the warm-start mapping.  Public names, imported by ``al``, ``gated-fista`` and any new torch
solver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..certificate import is_certified, relative_gap, violation_scale
from ..lifting import Lifting
from ..problem import Patterns, Problem
from ..result import Result
from .torch_ops import TorchLifting, Workspace

DEFAULT_TOL = {"float64": 1e-6, "float32": 1e-4}


class Clock:
    """Wall time of the algorithm, with trace-only evaluations excluded (device synced)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.start = time.perf_counter()
        self.excluded = 0.0

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def now(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    def deadline(self, seconds: float) -> float:
        """The ``time.perf_counter`` value at which :meth:`now` reaches ``seconds``."""
        return self.start + self.excluded + seconds


@dataclass
class Check:
    """The certificate of :func:`dualnets.certificate.certify` at one point, computed on the
    device."""

    objective: float
    relative_gap: float
    violation: float

    def certified(self, gap_tol: float, violation_tol: float) -> bool:
        return is_certified(self.relative_gap, self.violation, gap_tol, violation_tol)

    def score(self, gap_tol: float, violation_tol: float) -> float:
        """``max(|gap| / gap_tol, violation / violation_tol)``: <= 1 when certified."""
        return max(abs(self.relative_gap) / gap_tol, self.violation / violation_tol)


def device_certificate(ops: TorchLifting, ws: Workspace, Z: torch.Tensor, beta: float,
                       y_scale: float) -> Check:
    """Certificate at ``Z`` with the multipliers in ``ws`` (call right after the gradient at Z).

    ``ws.grad`` rows are ``(A'v - B'mu)_g`` with ``v = r = grad L(yhat)``: the dual constraint
    of docs/design.md section 4 (``r`` is in the domain of ``L*``: the gradient always is).
    """
    worst = float(torch.linalg.vector_norm(ws.grad, dim=1).max())
    primal, dual, _ = ops.primal_and_dual(Z, ws, beta, worst)
    return Check(primal, relative_gap(primal, dual), ops.violation(ws) / y_scale)


class Checker:
    """Certificate of an iterate with ``mu = (lam - rho B z)_+``, always in float64.

    float32 iterations are checked by a float64 copy of the operators: in float32 the rows of
    ``A'v - B'mu`` lose ~1e-3 relative accuracy to cancellation, which hid converged iterates.
    """

    def __init__(self, ops: TorchLifting, ws: Workspace, lift: Lifting, problem: Problem):
        if ops.dtype == torch.float64:
            self.ops, self.ws = ops, ws
        else:
            self.ops = TorchLifting(lift, problem.y, str(ops.device), "float64", ops.loss)
            self.ws = self.ops.workspace()
        self.beta, self.lift, self.y, self.loss = problem.beta, lift, problem.y, problem.loss
        self.y_scale = violation_scale(problem.y)

    def __call__(self, Z: torch.Tensor, lam_i: torch.Tensor, lam_o: torch.Tensor,
                 rho: float) -> Check:
        as64 = lambda t: t.to(torch.float64)  # noqa: E731  (no copy when already float64)
        Z = as64(Z)
        self.ops.al_gradient(Z, as64(lam_i), as64(lam_o), rho, self.ws)
        return device_certificate(self.ops, self.ws, Z, self.beta, self.y_scale)


@dataclass
class RunState:
    """What the iterations leave behind for the Result."""

    iterations: int = 0
    status: str = "max_iterations"
    trace: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def row(self, seconds: float, check: Check) -> tuple:
        """A trace row: (seconds, iteration, objective, relative gap, violation)."""
        return (seconds, self.iterations, check.objective, check.relative_gap, check.violation)

    def out_of_budget(self, iterations_left: bool) -> None:
        """The status of a stop on the iteration or the time budget."""
        self.status = "time_limit" if iterations_left else "max_iterations"


def to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    """A float64 numpy copy on the CPU (None for None or an empty tensor)."""
    return None if t is None or t.numel() == 0 else t.detach().to("cpu", torch.float64).numpy()


# warm starts ---------------------------------------------------------------------------------
def pattern_keys(p: Patterns) -> list[bytes]:
    """One byte string per pattern (its masks and signs): the identity warm starts match."""
    P = p.n_patterns
    bits = np.concatenate([p.inner.reshape(P, -1), p.inner_sign.reshape(P, -1) > 0, p.outer], 1)
    return [row.tobytes() for row in np.packbits(bits, axis=1)]


def _group_rows(P: int, m1: int, c: np.ndarray) -> np.ndarray:
    """Group indices of patterns ``c`` for both output signs, in a fixed order."""
    blocks = np.concatenate([c, c + P])
    return (blocks[:, None] * m1 + np.arange(m1)[None, :]).ravel()


def warm_arrays(problem: Problem, lift: Lifting, warm: Result):
    """``Z`` (G, d), ``lam_inner`` (G, n), ``lam_outer`` (B, n) of a previous result, mapped
    into this problem's layout by pattern identity (unmatched groups start at zero).

    ``warm.info["patterns"]`` names the patterns it was solved over; without it the layout
    must already match.  Multipliers may be None.
    """
    G, B, n, d = lift.n_groups, lift.n_blocks, problem.n, problem.d
    if warm.Z is None or warm.Z.shape[1] != d:
        raise ValueError(f"warm start needs Z with {d} columns, got "
                         f"{None if warm.Z is None else warm.Z.shape}")
    old = warm.info.get("patterns")
    if old is None:
        if warm.Z.shape != (G, d):
            raise ValueError(f"warm start without info['patterns'] needs Z of shape {(G, d)}, "
                             f"got {warm.Z.shape}")
        return warm.Z, warm.lam_inner, warm.lam_outer
    if old.n_samples != n:
        raise ValueError(f"warm start was solved on n = {old.n_samples} samples, got n = {n}")
    new = problem.require_patterns()
    index = {k: c for c, k in enumerate(pattern_keys(old))}
    pairs = [(c, index[k]) for c, k in enumerate(pattern_keys(new)) if k in index]
    c_new, c_old = (np.array(v, dtype=np.int64) for v in zip(*pairs)) if pairs else (
        np.zeros(0, np.int64), np.zeros(0, np.int64))
    g_new, g_old = _group_rows(new.n_patterns, lift.m1, c_new), _group_rows(
        old.n_patterns, lift.m1, c_old)
    Z = np.zeros((G, d))
    Z[g_new] = warm.Z[g_old]
    lam_i = lam_o = None
    if warm.lam_inner is not None:
        lam_i = np.zeros((G, n))
        lam_i[g_new] = warm.lam_inner[g_old]
    if warm.lam_outer is not None and lift.depth == 3:
        b_new, b_old = np.concatenate([c_new, c_new + new.n_patterns]), np.concatenate(
            [c_old, c_old + old.n_patterns])
        lam_o = np.zeros((B, n))
        lam_o[b_new] = warm.lam_outer[b_old]
    return Z, lam_i, lam_o
