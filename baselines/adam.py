"""Projected Adam on the exact NC objective, registered as "adam"."""

from __future__ import annotations

import torch

from ..registry import register
from .common import NetworkBaseline


@register
class ProjectedAdam(NetworkBaseline):
    """Adam on NC; every W1_k projected onto the unit Frobenius ball after each step.

    The weight decay is part of the objective (NC's ``beta/2 (||w2||^2 + w3^2)``), not Adam's
    ``weight_decay`` option, so that the objective minimized is exactly NC.
    """

    name = "adam"

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)
