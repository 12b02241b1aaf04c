"""The convex losses of the training problem, one class each: every loss formula lives here
(docs/design.md sections 4 and 9).

The code's convention is that of section 4: ``yhat = A z`` is the prediction and the dual point
is the loss gradient ``v = grad L(yhat)`` (for the squared loss the residual ``yhat - y``).
The dual of ``min_z L(A z) + beta sum_g ||z_g||  s.t.  B z >= 0`` is::

    max_{v, lam >= 0}  -L*(v)   s.t.  ||(A'v - B'lam)_g|| <= beta  for every group g,

so a certificate needs, per loss, the value ``L``, its gradient, the conjugate ``-L*(v)``, the
domain of ``L*`` (a dual point is clipped into it before it is scaled), the largest scale
``t`` that keeps ``t v`` in the domain and the best scale ``t`` in ``[0, t_max]``, a 1-D
concave maximization::

    squared   L = 1/2 ||yhat - y||^2               v = yhat - y
              -L*(v) = -v'y - 1/2 ||v||^2          domain R^n
    logistic  L = sum_i log(1 + exp(-y_i yhat_i))  v_i = -y_i s(-y_i yhat_i), s the sigmoid
              -L*(v) = sum_i H(-y_i v_i)           domain -y_i v_i in [0, 1],  y_i in {-1, +1}

with ``H(p) = -p log p - (1 - p) log(1 - p)`` the binary entropy.  ``value``, ``gradient`` and
``hessian_diagonal`` take numpy arrays or torch tensors (autograd flows through ``value``);
the dual side takes either and computes in numpy float64.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
import torch
from scipy.special import entr, expit, xlog1py

LossName = Literal["squared", "logistic"]
LOSS_NAMES: tuple[str, ...] = ("squared", "logistic")
SCALE_STEPS = 200   # safeguarded Newton steps of the logistic scale search (it needs ~10)


def _numpy(a) -> np.ndarray:
    """A float64 numpy array of ``a`` (a torch tensor is copied to the CPU)."""
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _softplus(x):
    """``log(1 + exp(x))`` without overflow or loss of digits, numpy or torch."""
    if isinstance(x, torch.Tensor):
        return torch.logaddexp(x, torch.zeros_like(x))
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    """``1 / (1 + exp(-x))``, numpy or torch."""
    return torch.sigmoid(x) if isinstance(x, torch.Tensor) else expit(x)


class ConvexLoss:
    """A convex loss ``L(yhat)`` of the predictions, with its conjugate (module docstring).

    ``curvature`` bounds the Hessian: ``0 <= grad^2 L(yhat) <= curvature I``;
    ``identity_hessian`` says whether the Hessian is ``I`` everywhere (squared), so that
    ``A' grad^2 L A = A'A`` can be formed once.
    """

    name: ClassVar[str]
    curvature: ClassVar[float]
    identity_hessian: ClassVar[bool]

    def check_targets(self, name: str, y: np.ndarray) -> None:
        """Raise ValueError when ``y`` (called ``name``) is not a target of this loss."""

    def value(self, yhat, y):
        """``L(yhat)``, a 0-d array or tensor."""
        raise NotImplementedError

    def gradient(self, yhat, y):
        """``grad L(yhat)``, shape (n,): the dual point ``v``."""
        raise NotImplementedError

    def hessian_diagonal(self, yhat, y):
        """The diagonal of ``grad^2 L(yhat)`` (diagonal for both losses), shape (n,)."""
        raise NotImplementedError

    def clip(self, v, y):
        """``v`` put into the domain of ``L*`` (before it is scaled)."""
        raise NotImplementedError

    def dual_value(self, v, y, t: float) -> float:
        """``-L*(t v)`` (``-inf`` outside the domain)."""
        raise NotImplementedError

    def scale_cap(self, v, y) -> float:
        """The largest ``t`` with ``t v`` in the domain of ``L*`` (``inf``: none)."""
        raise NotImplementedError

    def best_scale(self, v, y, t_max: float) -> float:
        """The ``t`` in ``[0, t_max]`` that maximizes :meth:`dual_value`; ``t_max`` is at most
        :meth:`scale_cap`."""
        raise NotImplementedError


class SquaredLoss(ConvexLoss):
    """``L = 1/2 ||yhat - y||^2``; ``-L*(v) = -v'y - 1/2 ||v||^2`` on all of ``R^n``."""

    name = "squared"
    curvature = 1.0
    identity_hessian = True

    def value(self, yhat, y):
        r = yhat - y
        return 0.5 * (r * r).sum()

    def gradient(self, yhat, y):
        return yhat - y

    def hessian_diagonal(self, yhat, y):
        return torch.ones_like(yhat) if isinstance(yhat, torch.Tensor) else np.ones_like(yhat)

    def clip(self, v, y):
        return v

    def dual_value(self, v, y, t: float) -> float:
        return self.dual_from_products(float(v @ y), float(v @ v), t)

    def scale_cap(self, v, y) -> float:
        return math.inf

    def best_scale(self, v, y, t_max: float) -> float:
        return self.scale_from_products(float(v @ y), float(v @ v), t_max)

    @staticmethod
    def dual_from_products(vy: float, vv: float, t: float) -> float:
        """``-L*(t v) = -t v'y - t^2/2 ||v||^2`` from ``v'y`` and ``v'v``."""
        return -t * vy - 0.5 * t * t * vv

    @staticmethod
    def scale_from_products(vy: float, vv: float, t_max: float) -> float:
        """The vertex ``-v'y / ||v||^2`` of the parabola, clipped to ``[0, t_max]``."""
        t_best = -vy / vv if vv > 0 else 0.0
        return float(min(max(t_best, 0.0), t_max))


class LogisticLoss(ConvexLoss):
    """``L = sum_i log(1 + exp(-y_i yhat_i))`` for labels ``y_i`` in {-1, +1}.

    With the margins ``m = y * yhat`` and ``s = sigmoid(-m)``: ``grad L = -y s``,
    ``grad^2 L = diag(s (1 - s))`` (at most 1/4), and with ``p = -y * v``,
    ``-L*(v) = sum_i H(p_i)`` on ``p in [0, 1]^n``.
    """

    name = "logistic"
    curvature = 0.25
    identity_hessian = False

    def check_targets(self, name: str, y: np.ndarray) -> None:
        other = np.unique(y[np.abs(y) != 1.0])
        if other.size:
            shown = ", ".join(f"{float(a):g}" for a in other[:3])
            raise ValueError(f"{name} must hold labels -1 and +1 under the logistic loss, got "
                             f"{other.size} other value{'s' * (other.size > 1)} ({shown}"
                             f"{', ...' if other.size > 3 else ''})")

    def value(self, yhat, y):
        return _softplus(-y * yhat).sum()

    def gradient(self, yhat, y):
        return -y * _sigmoid(-y * yhat)

    def hessian_diagonal(self, yhat, y):
        m = y * yhat
        return _sigmoid(m) * _sigmoid(-m)

    def clip(self, v, y):
        """``p = -y v`` clipped to ``[0, 1]``: the nearest point of the domain."""
        y = _numpy(y)
        return -y * np.clip(-y * _numpy(v), 0.0, 1.0)

    def dual_value(self, v, y, t: float) -> float:
        p = -_numpy(y) * _numpy(v)
        q = t * p
        if p.size and (p.min() < 0 or p.max() > 1 or q.max() > 1):
            return -math.inf
        return float(np.sum(entr(q) - xlog1py(1.0 - q, -q)))

    def scale_cap(self, v, y) -> float:
        """``1 / max_i p_i``, lowered to the float whose products ``t p_i`` stay <= 1."""
        top = float(np.max(-_numpy(y) * _numpy(v), initial=0.0))
        if top <= 0:
            return math.inf
        cap = 1.0 / top
        while cap * top > 1.0:
            cap = float(np.nextafter(cap, 0.0))
        return cap

    def best_scale(self, v, y, t_max: float) -> float:
        """The root of the decreasing slope ``D'(t) = sum_i p_i log((1 - t p_i) / (t p_i))``
        (``+inf`` at 0, ``-inf`` at the cap), or ``t_max`` where the slope is still >= 0
        there: safeguarded Newton steps (``D'' = -sum_i p_i / (t (1 - t p_i))``) inside a
        shrinking bracket, bisection when a step leaves it, to the last bit."""
        p = -_numpy(y) * _numpy(v)
        p = p[p > 0]
        if p.size == 0:
            return 0.0                           # D(t) = 0 for every t
        hi = min(t_max, self.scale_cap(v, y))
        if hi <= 0:
            return 0.0

        def slope(t: float) -> float:
            with np.errstate(divide="ignore"):     # log1p(-1) = -inf at the cap
                return float(np.sum(p * (np.log1p(-t * p) - np.log(t * p))))

        if slope(hi) >= 0:
            return float(hi)
        lo, t = 0.0, 0.5 * hi
        for _ in range(SCALE_STEPS):
            g = slope(t)
            if g == 0:
                return t
            lo, hi = (t, hi) if g > 0 else (lo, t)
            step = t + g / float(np.sum(p / (t * (1.0 - t * p))))
            nxt = step if lo < step < hi else 0.5 * (lo + hi)
            if nxt in (lo, hi, t):
                break
            t = nxt
        return t


LOSSES: dict[str, ConvexLoss] = {cls.name: cls() for cls in (SquaredLoss, LogisticLoss)}


def get_loss(loss: str | ConvexLoss) -> ConvexLoss:
    """The loss named ``loss`` (a :class:`ConvexLoss` passes through)."""
    if isinstance(loss, ConvexLoss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSS_NAMES}, got {loss!r}")
    return LOSSES[loss]
