"""Solvers of the convex program; importing this package fills the registry."""

from . import cvxpy_solver  # noqa: F401  (registers clarabel, ecos, scs, mosek)
from .base import Solver, available_solvers, get_solver, register

__all__ = ["Solver", "available_solvers", "get_solver", "register"]
