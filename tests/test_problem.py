"""Problem and Patterns validate themselves once, with messages naming expected and got."""

import numpy as np
import pytest

from dualnets.problem import Patterns, Problem


def _xy(n=5, d=2):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)), rng.standard_normal(n)


def _patterns(P=3, m1=2, n=5):
    return Patterns(np.ones((P, m1, n), bool), np.ones((P, m1), np.int8), np.ones((P, n), bool))


def test_valid_problem_is_frozen():
    X, y = _xy()
    p = Problem(X, y, 0.5, 2, patterns=_patterns())
    assert (p.n, p.d, p.n_patterns) == (5, 2, 3)
    with pytest.raises(AttributeError):
        p.beta = 1.0
    with pytest.raises(ValueError, match="read-only"):
        p.X[0, 0] = 1.0


@pytest.mark.parametrize("bad, match", [
    (dict(X=np.array([[np.nan, 1.0], [0.0, 1.0]]), y=np.zeros(2)), "X must contain only finite"),
    (dict(X=np.ones((2, 2)), y=np.array([np.inf, 0.0])), "y must contain only finite"),
    (dict(X=np.ones(4), y=np.zeros(4)), r"X must be 2-dimensional, got shape \(4,\)"),
    (dict(X=np.ones((4, 2)), y=np.zeros(3)), r"y must have shape \(4,\) to match X, got \(3,\)"),
    (dict(X=np.ones((1, 2)), y=np.zeros(1)), "need at least 2 samples, got n = 1"),
    (dict(beta=0.0), "beta must be > 0, got 0.0"),
    (dict(beta=-0.1), "beta must be > 0, got -0.1"),
    (dict(m1=0), "m1 must be an integer >= 1, got 0"),
    (dict(depth=4), "depth must be 2 or 3, got 4"),
    (dict(loss="hinge"), "loss must be one of"),
    (dict(patterns=_patterns(n=4)), r"patterns must have shape \(P, m1=2, n=5\)"),
    (dict(patterns=_patterns(m1=1)), r"patterns must have shape \(P, m1=2, n=5\)"),
])
def test_bad_problem(bad, match):
    X, y = _xy()
    kwargs = dict(X=X, y=y, beta=1.0, m1=2) | bad
    with pytest.raises(ValueError, match=match):
        Problem(**kwargs)


@pytest.mark.parametrize("args, match", [
    ((np.ones((3, 2, 5)), np.ones((3, 2), np.int8), np.ones((3, 5), bool)),
     "inner must be a bool array of shape"),
    ((np.ones((3, 2, 5), bool), np.ones((3, 2)), np.ones((3, 5), bool)),
     r"inner_sign must be an integer array of shape \(3, 2\), got dtype float64"),
    ((np.ones((3, 2, 5), bool), np.ones((3, 1), np.int8), np.ones((3, 5), bool)),
     r"inner_sign must be an integer array of shape \(3, 2\)"),
    ((np.ones((3, 2, 5), bool), np.zeros((3, 2), np.int8), np.ones((3, 5), bool)),
     "inner_sign must contain only"),
    ((np.ones((3, 2, 5), bool), np.ones((3, 2), np.int8), np.ones((3, 4), bool)),
     r"outer must be a bool array of shape \(3, 5\), got dtype bool shape \(3, 4\)"),
])
def test_bad_patterns(args, match):
    with pytest.raises(ValueError, match=match):
        Patterns(*args)


def test_test_data_checked():
    X, y = _xy()
    with pytest.raises(ValueError, match="given together"):
        Problem(X, y, 1.0, X_test=X)
    with pytest.raises(ValueError, match=r"X_test must have shape \(n_test, 2\)"):
        Problem(X, y, 1.0, X_test=np.ones((3, 3)), y_test=np.ones(3))


def test_require_patterns_message():
    X, y = _xy()
    with pytest.raises(ValueError, match="no activation patterns"):
        Problem(X, y, 1.0).require_patterns()
