"""Projected (full-batch or minibatch) SGD on the exact NC objective, registered as "sgd"."""

from __future__ import annotations

import torch

from ..registry import register
from .common import NetworkBaseline


@register
class ProjectedSGD(NetworkBaseline):
    """SGD with momentum on NC; every W1_k projected onto the unit Frobenius ball after each step.

    Parameters
    ----------
    momentum : float in [0, 1)
    **kwargs : see :class:`~dualnets.baselines.common.NetworkBaseline`.
    """

    name = "sgd"

    def __init__(self, momentum: float = 0.9, **kwargs):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=lr, momentum=self.momentum)
