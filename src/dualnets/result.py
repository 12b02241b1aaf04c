"""What a solver returns: an immutable record of weights, status, timings and trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Status = Literal["optimal", "inaccurate", "max_iterations", "time_limit", "infeasible", "error"]
STATUSES: tuple[str, ...] = ("optimal", "inaccurate", "max_iterations", "time_limit",
                             "infeasible", "error")
TRACE_COLUMNS: tuple[str, ...] = ("seconds", "iteration", "objective", "relative_gap", "violation")


@dataclass(frozen=True, eq=False)
class Result:
    """Output of ``solver.solve(problem)``.

    Convex solvers fill ``Z`` (G, d) and the multipliers ``lam_inner`` (G, n) and ``lam_outer``
    (B, n) in the group order of :class:`dualnets.lifting.Lifting`; network baselines fill
    ``network``.  ``status`` is the solver's own word, one of ``STATUSES``: "certified" is
    decided by :mod:`dualnets.metrics`, never here.  ``solve_seconds`` covers the algorithm only;
    ``setup_seconds`` (model building) and ``warmup_seconds`` (first call, compilation) are apart.
    ``trace`` rows are ``TRACE_COLUMNS``.
    """

    solver: str
    status: Status
    Z: np.ndarray | None = None
    lam_inner: np.ndarray | None = None
    lam_outer: np.ndarray | None = None
    network: object | None = None
    setup_seconds: float = 0.0
    solve_seconds: float = 0.0
    warmup_seconds: float = 0.0
    iterations: int = 0
    trace: tuple[tuple[float, int, float, float, float], ...] = ()
    message: str = ""
    model: str = "relu"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
