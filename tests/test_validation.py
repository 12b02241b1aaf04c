"""Typed validation at load time: problem-file keys and solver options, each refused with one
line that names the key, what was expected and what arrived (issue 16's probes)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dualnets.cli import main
from dualnets.io import load_problem
from dualnets.options import typed_options
from dualnets.problem import Problem
from dualnets.registry import solver_class

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal((12, 3)), RNG.standard_normal(12)
GOOD = dict(X=X, y=Y, beta=1.0, m1=2)


def pattern_arrays(P=3, m1=2, n=12) -> dict:
    return dict(inner=np.ones((P, m1, n), bool), inner_sign=np.ones((P, m1), np.int8),
                outer=np.ones((P, n), bool))


PROBES = [
    (dict(m1=2.5), r"m1 must be an integer >= 1, got 2.5 \(key 'm1' of .*bad.npz\)"),
    (dict(m1=0), r"m1 must be an integer >= 1, got 0 \(key 'm1'"),
    (dict(m1=True), r"m1 must be an integer >= 1, got True"),
    (dict(X=X.astype(str)), r"X must be a numeric \(integer or float\) array, got dtype <U"),
    (dict(X=X.astype(complex)), r"X must be a numeric .* got dtype complex128 \(key 'X'"),
    (dict(X=X * 1e300), r"X must have entries of magnitude <= 1e\+150 .*got 2.*e\+300"),
    (dict(y=Y * 1e200), r"y must have entries of magnitude <= 1e\+150"),
    (dict(y=np.where(np.arange(12) == 4, np.nan, Y)),
     r"y must contain only finite values, got NaN or inf at index \(4,\) \(key 'y'"),
    (dict(beta=1e300), r"beta must be at most 1e\+150 in magnitude .*got 1e\+300 \(key 'beta'"),
    (dict(beta="abc"), r"beta must be a real number, got 'abc' \(key 'beta' of .*bad.npz\)"),
    (dict(beta=np.nan), r"beta must be finite, got nan \(key 'beta'"),
    (dict(beta=-1.0), r"beta must be > 0, got -1.0 \(key 'beta'"),
    (dict(depth=4), r"depth must be 2 or 3, got 4 \(key 'depth'"),
    (dict(X_test=np.ones((3, 3)) * np.inf, y_test=np.ones(3)), r"X_test must contain only finite"),
    (pattern_arrays(n=13), r"inner must be a bool array of shape \(P, m1=2, n=12\), got dtype "
                           r"bool shape \(3, 2, 13\) \(key 'inner'"),
    (pattern_arrays(m1=1), r"inner must be a bool array of shape \(P, m1=2, n=12\)"),
    (pattern_arrays() | dict(inner_sign=np.ones((3, 2))),
     r"inner_sign must be an integer array of shape \(P=3, m1=2\), got dtype float64"),
    (pattern_arrays() | dict(inner_sign=np.zeros((3, 2), np.int8)),
     r"inner_sign must contain only \+1 and -1, got values \[0\]"),
    (pattern_arrays() | dict(outer=np.ones((2, 12), bool)),
     r"outer must be a bool array of shape \(P=3, n=12\), got dtype bool shape \(2, 12\)"),
    (dict(X=np.array([1, "a", None], dtype=object)),
     r"key 'X' of .*bad.npz holds pickled \(object\) data"),
]


@pytest.mark.parametrize("change, match", PROBES)
def test_bad_problem_file_value_names_key_expected_and_got(tmp_path, change, match):
    np.savez(tmp_path / "bad.npz", **(GOOD | change))
    with pytest.raises(ValueError, match=match):
        load_problem(tmp_path / "bad.npz")


def test_bad_problem_file_is_one_line_exit_2_before_any_solve(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(solver_class("clarabel"), "solve", _must_not_run)
    np.savez(tmp_path / "bad.npz", **(GOOD | dict(m1=2.5)))
    assert main(["solve", str(tmp_path / "bad.npz"), "--patterns", "random:3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dualnets: error: m1 must be an integer >= 1, got 2.5 (key 'm1'")


def _must_not_run(self, problem, warm_start=None):
    raise AssertionError("the solver ran although the input was bad")


def test_integral_float_m1_and_extra_keys_are_accepted(tmp_path):
    np.savez(tmp_path / "ok.npz", **(GOOD | dict(m1=2.0, notes=np.arange(3), depth=2)))
    problem = load_problem(tmp_path / "ok.npz")
    assert (problem.m1, problem.depth, problem.beta) == (2, 2, 1.0)
    assert isinstance(problem.m1, int)


def test_text_file_named_npz_is_not_called_pickled(tmp_path):
    (tmp_path / "x.npz").write_text("hello, I am a text file\n")
    with pytest.raises(ValueError, match=r"x.npz is not a readable .npz problem file: it is not "
                                         r"a zip archive \(starts with b'hello, I'") as info:
        load_problem(tmp_path / "x.npz")
    assert "pickle" not in str(info.value)


def test_single_npy_array_is_named_as_such(tmp_path):
    with open(tmp_path / "a.npz", "wb") as fh:
        np.save(fh, X)
    with pytest.raises(ValueError, match=r"a single .npy array, not an .npz problem file"):
        load_problem(tmp_path / "a.npz")


def test_truncated_archive_is_unreadable(tmp_path):
    np.savez(tmp_path / "ok.npz", **GOOD)
    data = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.npz is not a readable .npz problem file: "
                                         r"BadZipFile"):
        load_problem(tmp_path / "cut.npz")


def test_problem_record_refuses_huge_values():
    with pytest.raises(ValueError, match=r"beta must be at most 1e\+150 in magnitude"):
        Problem(X, Y, 1e300, 2)
    with pytest.raises(ValueError, match=r"X must be a numeric \(integer or float\) array"):
        Problem(X.astype(str), Y, 1.0, 2)


# -- solver options ---------------------------------------------------------------------------
OPTION_PROBES = [
    ("clarabel", "tol=abc", r"option 'tol' of solver 'clarabel' must be a number, got 'abc'"),
    ("clarabel", "tol=nan", r"option 'tol' of solver 'clarabel' must be a finite number, got nan"),
    ("clarabel", "tol=inf", r"option 'tol' of solver 'clarabel' must be a finite number, got inf"),
    ("clarabel", "tol=-1", r"error: tol must be > 0, got -1.0$"),
    ("clarabel", "max_iters=abc", r"option 'max_iters' of solver 'clarabel' must be an integer"),
    ("al", "max_iters=2.5", r"option 'max_iters' of solver 'al' must be an integer, got '2.5'"),
    ("al", "max_seconds=nan", r"option 'max_seconds' of solver 'al' must be a finite number"),
    ("al", "gap_tol=abc", r"option 'gap_tol' of solver 'al' must be a number or none, got 'abc'"),
    ("al", "line_search=maybe", r"option 'line_search' of solver 'al' must be true or false"),
    ("al", "wings=2", r"unknown option 'wings' for solver 'al'; it takes device, dtype, gap_tol"),
    ("al", "inner=bogus", r"error: inner must be one of \('auto', 'newton', 'fista', 'ipm'\)"),
    ("al", "=3", r"--solver-option needs KEY=VALUE, got '=3'"),
]


@pytest.mark.parametrize("solver, option, match", OPTION_PROBES)
def test_bad_solver_option_one_line_exit_2(tmp_path, capsys, solver, option, match):
    np.savez(tmp_path / "p.npz", **GOOD)
    argv = ["solve", str(tmp_path / "p.npz"), "--solver", solver, "--patterns", "random:2",
            "--solver-option", option]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(match, err), err


def test_solver_options_parsed_into_the_class_types():
    typed = typed_options(solver_class("al"), {"max_iters": "20", "gap_tol": "none",
                                               "max_seconds": "inf", "line_search": "TRUE",
                                               "inner": "newton", "rho_scale": "2"},
                          "solver 'al'", text=True)
    assert typed == {"max_iters": 20, "gap_tol": None, "max_seconds": float("inf"),
                     "line_search": True, "inner": "newton", "rho_scale": 2.0}
    assert type(typed["rho_scale"]) is float and type(typed["max_iters"]) is int
    # typed values (a TOML table) are checked and kept as they are: run ids do not change
    assert typed_options(solver_class("clarabel"), {"tol": 1, "direct_solve_method": "faer"},
                         "solver 'clarabel'") == {"tol": 1, "direct_solve_method": "faer"}


# -- fuzzing the problem-file contents ---------------------------------------------------------
KEYS = ("X", "y", "beta", "m1", "depth", "inner", "inner_sign", "outer", "X_test", "y_test",
        "extra")
DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_, np.complex128,
                          np.dtype("U3")])
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
SCALARS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 5),
                    st.booleans(), st.text(max_size=3))


@st.composite
def problem_contents(draw) -> dict:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True))
    return {k: draw(st.one_of(ARRAYS, SCALARS)) for k in keys}


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(contents=problem_contents(), junk=st.binary(max_size=40), as_junk=st.booleans())
def test_fuzzed_problem_files_load_or_fail_in_one_line(contents, junk, as_junk):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.npz"
        if as_junk:
            path.write_bytes(junk)
        else:
            np.savez(path, **contents)
        try:
            problem = load_problem(path)
        except ValueError as exc:
            message = str(exc)
            assert message and "\n" not in message and "Traceback" not in message
            return
        assert isinstance(problem, Problem) and problem.n >= 2
        assert np.isfinite(problem.X).all() and np.abs(problem.X).max() <= 1e150
