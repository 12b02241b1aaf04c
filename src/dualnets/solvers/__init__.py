"""Solvers of the convex program (one module each); see :mod:`dualnets.registry`."""

from ..registry import available_solvers, get_solver, register
from .base import Solver

__all__ = ["Solver", "available_solvers", "get_solver", "register"]
