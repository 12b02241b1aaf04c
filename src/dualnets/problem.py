"""The training problem: data, regularization, network shape and activation patterns.

A :class:`Problem` is a frozen record that validates itself once, at construction, and never
solves anything (docs/design.md section 1).  A :class:`Patterns` record holds the activation patterns
that define the convex program over it (docs/design.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from . import validate
from .losses import LOSS_NAMES, LossName, get_loss

Loss = LossName
Depth = Literal[2, 3]
LOSSES: tuple[str, ...] = LOSS_NAMES


@dataclass(frozen=True, eq=False)
class Patterns:
    """Activation patterns of sub-networks, one per row.

    Parameters
    ----------
    inner : bool array (P, m1, n)
        Inner masks ``D_cj = 1[X w1_j >= 0]``.
    inner_sign : int8 array (P, m1)
        Signs ``s_cj = sign(w2_j)`` in {+1, -1}.
    outer : bool array (P, n)
        Outer masks ``E_c = 1[sum_j w2_j (X w1_j)_+ >= 0]``.
    """

    inner: np.ndarray
    inner_sign: np.ndarray
    outer: np.ndarray

    def __post_init__(self) -> None:
        inner, sign, outer = self.inner, self.inner_sign, self.outer
        if not (isinstance(inner, np.ndarray) and inner.dtype == np.bool_ and inner.ndim == 3):
            raise ValueError(f"inner must be a bool array of shape (P, m1, n), got {_describe(inner)}")
        P, m1, n = inner.shape
        if not (isinstance(sign, np.ndarray) and np.issubdtype(sign.dtype, np.integer)
                and sign.shape == (P, m1)):
            raise ValueError(
                f"inner_sign must be an integer array of shape {(P, m1)}, got {_describe(sign)}")
        if not np.all(np.abs(sign) == 1):
            raise ValueError("inner_sign must contain only +1 and -1")
        if not (isinstance(outer, np.ndarray) and outer.dtype == np.bool_ and outer.shape == (P, n)):
            raise ValueError(f"outer must be a bool array of shape {(P, n)}, got {_describe(outer)}")
        for a in (inner, sign, outer):
            a.setflags(write=False)
        object.__setattr__(self, "inner_sign", sign.astype(np.int8, copy=False))

    @property
    def n_patterns(self) -> int:
        return self.inner.shape[0]

    @property
    def m1(self) -> int:
        return self.inner.shape[1]

    @property
    def n_samples(self) -> int:
        return self.inner.shape[2]

    def __len__(self) -> int:
        return self.n_patterns

    def concat(self, other: Patterns) -> Patterns:
        """Union of two pattern sets, duplicates removed, order of first appearance kept."""
        return Patterns(
            np.concatenate([self.inner, other.inner]),
            np.concatenate([self.inner_sign, other.inner_sign]),
            np.concatenate([self.outer, other.outer]),
        ).unique()

    def canonical(self) -> Patterns:
        """The same patterns with the neurons of each one in a fixed order.

        A pattern does not depend on the order of its neurons, so sorting them (by sign, then
        mask) lets :meth:`unique` see permuted copies as the duplicates they are.
        """
        P, m1, n = self.inner.shape
        if P == 0 or m1 == 1:
            return self
        bits = np.concatenate([(self.inner_sign < 0)[:, :, None], self.inner], axis=2)
        packed = np.ascontiguousarray(np.packbits(bits, axis=2))
        order = np.argsort(packed.view(np.dtype((np.void, packed.shape[2])))[..., 0], axis=1,
                           kind="stable")
        rows = np.arange(P)[:, None]
        return Patterns(self.inner[rows, order], self.inner_sign[rows, order], self.outer.copy())

    def unique(self) -> Patterns:
        """Canonical neuron order, duplicates removed (first occurrence kept)."""
        P = self.n_patterns
        if P == 0:
            return self
        self = self.canonical()
        key = np.concatenate(
            [self.inner.reshape(P, -1), self.inner_sign.reshape(P, -1) > 0, self.outer], axis=1)
        _, first = np.unique(np.packbits(key, axis=1), axis=0, return_index=True)
        keep = np.sort(first)
        return self.take(keep)

    def take(self, index) -> Patterns:
        return Patterns(self.inner[index].copy(), self.inner_sign[index].copy(),
                        self.outer[index].copy())

    @classmethod
    def empty(cls, m1: int, n: int) -> Patterns:
        return cls(np.zeros((0, m1, n), bool), np.ones((0, m1), np.int8), np.zeros((0, n), bool))


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"dtype {a.dtype} shape {a.shape}"
    return type(a).__name__


@dataclass(frozen=True, eq=False)
class Problem:
    """Regularized training of a parallel ReLU network (docs/design.md section 1).

    ``NC = L(sum_k f_k(X)) + beta/2 sum_k (||w2_k||^2 + w3_k^2)``,
    ``||W1_k||_F <= 1``, with ``f_k = ((X W1_k)_+ w2_k)_+ w3_k`` (depth 3) or
    ``NC = L(sum_j (X u_j)_+ a_j) + beta/2 sum_j (||u_j||^2 + a_j^2)`` (depth 2), and the
    loss ``L`` of :mod:`dualnets.losses`: ``1/2 ||yhat - y||^2`` (squared) or
    ``sum_i log(1 + exp(-y_i yhat_i))`` (logistic, labels y in {-1, +1}).

    Parameters
    ----------
    X : array (n, d)
    y : array (n,)
    beta : float > 0
    m1 : int >= 1, first-layer width of every sub-network
    depth : 2 or 3
    loss : "squared" or "logistic" (then y and y_test hold only -1 and +1)
    patterns : Patterns or None; None means "to be generated" (see ``dualnets.patterns``)
    X_test, y_test : optional held-out data
    name : label used in tables
    """

    X: np.ndarray
    y: np.ndarray
    beta: float
    m1: int = 2
    depth: Depth = 3
    loss: Loss = "squared"
    patterns: Patterns | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    name: str = "problem"

    def __post_init__(self) -> None:
        X = validate.real_array("X", self.X, 2)
        y = validate.real_array("y", self.y, 1)
        n, d = X.shape
        if y.shape[0] != n:
            raise ValueError(f"y must have shape ({n},) to match X, got {y.shape}")
        if n < 2:
            raise ValueError(f"need at least 2 samples, got n = {n}")
        if d < 1:
            raise ValueError(f"X must have at least one column, got shape {X.shape}")
        beta = validate.real("beta", self.beta, above=0)
        m1 = validate.integer("m1", self.m1, minimum=1)
        depth = validate.integer("depth", self.depth, choices=(2, 3))
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        get_loss(self.loss).check_targets("y", y)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "m1", m1)
        object.__setattr__(self, "depth", depth)
        self._check_test_data(d)
        if self.patterns is not None:
            self._check_patterns(self.patterns, n)

    def _check_test_data(self, d: int) -> None:
        if (self.X_test is None) != (self.y_test is None):
            raise ValueError("X_test and y_test must be given together")
        if self.X_test is None:
            return
        Xt = validate.real_array("X_test", self.X_test, 2)
        yt = validate.real_array("y_test", self.y_test, 1)
        if Xt.shape[1] != d or yt.shape[0] != Xt.shape[0]:
            raise ValueError(
                f"X_test must have shape (n_test, {d}) and y_test (n_test,), "
                f"got {Xt.shape} and {yt.shape}")
        get_loss(self.loss).check_targets("y_test", yt)
        object.__setattr__(self, "X_test", Xt)
        object.__setattr__(self, "y_test", yt)

    def _check_patterns(self, patterns: Patterns, n: int) -> None:
        if not isinstance(patterns, Patterns):
            raise ValueError(f"patterns must be a Patterns record, got {type(patterns).__name__}")
        if patterns.m1 != self.m1 or patterns.n_samples != n:
            raise ValueError(
                f"patterns must have shape (P, m1={self.m1}, n={n}), got inner of shape "
                f"{patterns.inner.shape}")

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def n_patterns(self) -> int:
        return 0 if self.patterns is None else self.patterns.n_patterns

    def with_patterns(self, patterns: Patterns) -> Problem:
        """A copy of this problem over another pattern set."""
        return replace(self, patterns=patterns)

    def require_patterns(self) -> Patterns:
        if self.patterns is None or self.patterns.n_patterns == 0:
            raise ValueError("the problem has no activation patterns; generate some first "
                             "(dualnets.patterns or --patterns random:P)")
        return self.patterns
