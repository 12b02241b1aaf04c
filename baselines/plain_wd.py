"""Adam with weight decay on every layer and no projection, registered as "plain-wd".

The way practitioners train: ``1/2 ||f(X) - y||^2 + beta/2 (||W1||^2 + ||w2||^2 + ||w3||^2)``,
W1 unconstrained.  This is a different objective from NC, so compare it on accuracy only.  The
returned network is the trained one rescaled by :func:`~dualnets.baselines.common.balanced`
(same function, same patterns, feasible for NC), so that its reported NC objective is that of a
real feasible network; the run's ``objective`` is the plain-weight-decay one it minimized.
"""

from __future__ import annotations

import torch

from ..network import ParallelNet, ParallelReLUNet
from ..registry import register
from .common import NetworkBaseline, balanced


@register
class PlainWeightDecay(NetworkBaseline):
    """Adam on the every-layer weight-decay objective, without projection."""

    name = "plain-wd"
    project = False
    benchmarked = False     # asv's SGD benchmarks compare NC objectives; this one is not NC
    objective_kind = ("every layer penalized, W1 not projected: not NC; its NC objective is "
                      "that of its network rescaled to be NC-feasible (same function), so "
                      "compare it on accuracy only")

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    def penalty(self, net: ParallelReLUNet) -> torch.Tensor:
        return 0.5 * (net.W1.pow(2).sum() + net.w2.pow(2).sum() + net.w3.pow(2).sum())

    def finalize(self, net: ParallelNet) -> ParallelNet:
        return balanced(net)
