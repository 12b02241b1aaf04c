"""dualnets: train three-layer ReLU networks by convex optimization, and measure it.

Data flows one way: dataset -> Problem -> solver.solve() -> Result -> metrics -> table/report.
"""

from .certificate import Certificate, certify
from .lifting import Lifting
from .network import ParallelNet, ParallelReLUNet, nc_objective
from .problem import Patterns, Problem
from .result import Result

__all__ = ["Certificate", "Lifting", "ParallelNet", "ParallelReLUNet", "Patterns", "Problem",
           "Result", "certify", "nc_objective"]
__version__ = "0.1.0"
