"""bench/common.py's reference optimum: the first reference within its size limits is used, and
one that does not certify ``reference_gap`` is an error, not a silent number."""

from __future__ import annotations

import sys
from dataclasses import replace

from conftest import REPO, tiny_problem
from dualnets.patterns import sample_patterns

sys.path.insert(0, str(REPO))
from bench.common import reference  # noqa: E402
from bench.params import PROFILES, Reference  # noqa: E402

_TINY = tiny_problem(0, n=8, d=3)      # n * d = 24
PROBLEM = _TINY.with_patterns(sample_patterns(_TINY.X, _TINY.m1, 6, seed=0))


def profile_with(*references: Reference):
    return replace(PROFILES["fast"], references=references)


def test_a_reference_above_its_limits_is_passed_over_for_the_next():
    row = reference(PROBLEM, profile_with(
        Reference("clarabel", {"tol": 1e-10}, max_nd=23),
        Reference("clarabel", {"tol": 1e-10}, max_d=2),
        Reference("al", {"gap_tol": 1e-9, "violation_tol": 1e-9}, max_nd=24, max_d=3)))
    assert row["solver"] == "al" and row["certified"] and "error" not in row


def test_no_reference_within_its_limits_is_a_skip_with_every_reason():
    row = reference(PROBLEM, profile_with(Reference("clarabel", {}, max_nd=23),
                                          Reference("al", {}, max_d=2)))
    assert set(row) == {"skipped"}
    assert "n*d = 24: above its limit 23" in row["skipped"]
    assert "d = 3: above its limit 2" in row["skipped"]


def test_a_reference_that_does_not_certify_its_gap_is_an_error():
    row = reference(PROBLEM, profile_with(Reference("al", {"max_iters": 1})))
    assert "not certified" in row["error"]
