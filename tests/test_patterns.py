"""Pattern generation: sampling, seeding from networks, exhaustive enumeration, file round trip."""

import numpy as np
import pytest
from conftest import cases_dir, tiny_problem

from dualnets.exhaustive import TooLargeToEnumerate, arrangement_cells, exhaustive_patterns
from dualnets.io import load_problem, save_problem
from dualnets.network import ParallelNet
from dualnets.pattern_specs import PatternStep, SpecContext, apply_spec, parse_spec
from dualnets.patterns import patterns_from_network, patterns_of_weights, sample_patterns


def _keys(p):
    return {(a.tobytes(), s.tobytes(), o.tobytes())
            for a, s, o in zip(p.inner, p.inner_sign.astype(np.int8), p.outer)}


def test_sampling_is_seeded_distinct_and_alive():
    X = tiny_problem(0, n=30, d=3).X
    a, b = sample_patterns(X, 2, 40, seed=1), sample_patterns(X, 2, 40, seed=1)
    assert a.n_patterns == 40 and _keys(a) == _keys(b)
    assert len(_keys(a)) == 40
    assert np.all((a.inner_sign > 0).any(axis=1))
    assert _keys(sample_patterns(X, 2, 40, seed=2)) != _keys(a)


def test_sampled_masks_match_their_definition():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 3))
    W1, w2 = rng.standard_normal((1, 3, 2)), np.array([[0.7, -1.3]])
    p = patterns_of_weights(X, W1, w2)
    pre = X @ W1[0]
    assert np.array_equal(p.inner[0], (pre >= 0).T)
    assert np.array_equal(p.outer[0], np.maximum(pre, 0) @ w2[0] >= 0)
    assert list(p.inner_sign[0]) == [1, -1]


def test_all_negative_signs_dropped():
    X = np.random.default_rng(0).standard_normal((5, 2))
    p = patterns_of_weights(X, np.ones((2, 2, 1)), np.array([[-1.0], [2.0]]))
    assert p.n_patterns == 1 and p.inner_sign[0, 0] == 1


def test_patterns_from_network():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 3))
    net = ParallelNet(rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 2)), np.ones(4))
    p = patterns_from_network(net, X)
    assert 1 <= p.n_patterns <= 4
    assert _keys(p) <= _keys(patterns_of_weights(X, net.W1, net.w2))


@pytest.mark.parametrize("seed, n, d", [(0, 7, 2), (1, 8, 2), (2, 5, 3)])
def test_exhaustive_contains_every_sampled_pattern(seed, n, d):
    """Gaussian sub-networks lie in open cells almost surely, so each of their patterns must
    be one of the enumerated ones."""
    X = tiny_problem(seed, n=n, d=d).X
    full = _keys(exhaustive_patterns(X, 2))
    rng = np.random.default_rng(seed)
    drawn = patterns_of_weights(X, rng.standard_normal((20000, d, 2)),
                                rng.standard_normal((20000, 2)))
    missing = _keys(drawn) - full
    assert not missing, f"{len(missing)} sampled patterns missing from the enumeration"


def test_arrangement_cell_count_general_position():
    # n hyperplanes through the origin in general position in R^3: 2 * (1 + (n-1) + C(n-1, 2))
    X = np.random.default_rng(5).standard_normal((7, 3))
    assert arrangement_cells(X).shape[0] == 2 * (1 + 6 + 15)


def test_exhaustive_too_large_is_a_clear_error():
    X = np.random.default_rng(0).standard_normal((60, 5))
    with pytest.raises(TooLargeToEnumerate, match="too many activation regions"):
        exhaustive_patterns(X, 2)
    with pytest.raises(TooLargeToEnumerate, match="too many outer masks"):
        exhaustive_patterns(X[:12, :3], 2)
    with pytest.raises(ValueError, match="supports m1 <= 2, got m1 = 3"):
        exhaustive_patterns(X[:5, :2], 3)


@pytest.mark.skipif(cases_dir() is None, reason="public cases not available")
def test_exhaustive_count_matches_public_case():
    f = np.load(cases_dir() / "public_tiny_1d.npz")
    assert exhaustive_patterns(f["X"], int(f["m1"])).n_patterns == int(f["n_patterns_exhaustive"])


def test_spec_parsing_and_errors():
    assert parse_spec("random:5,exhaustive") == [PatternStep("random", "5"),
                                                 PatternStep("exhaustive")]
    with pytest.raises(ValueError, match="unknown pattern strategy 'bogus'"):
        parse_spec("random:5,bogus")
    with pytest.raises(ValueError, match="random:P needs an integer P, got 'x'"):
        apply_spec(tiny_problem(0), "random:x")
    with pytest.raises(ValueError, match="empty strategy"):
        parse_spec("random:5,,exhaustive")


def test_spec_applies_left_to_right_without_duplicates():
    p = tiny_problem(0, n=6, d=2)
    exh = apply_spec(p, "exhaustive")
    both = apply_spec(p, "random:10,exhaustive", SpecContext(seed=3))
    assert _keys(both.patterns) == _keys(exh.patterns)


def test_problem_file_round_trip(tmp_path):
    p = apply_spec(tiny_problem(1, n=8), "random:6")
    save_problem(p, tmp_path / "p.npz")
    q = load_problem(tmp_path / "p.npz")
    assert np.array_equal(p.X, q.X) and np.array_equal(p.y, q.y) and p.beta == q.beta
    assert _keys(p.patterns) == _keys(q.patterns) and q.m1 == p.m1 and q.depth == p.depth


@pytest.mark.parametrize("arrays, match", [
    (dict(X=np.ones((3, 2)), y=np.ones(3), beta=1.0), r"lacks required keys \['m1'\]"),
    (dict(X=np.ones((3, 2)), y=np.ones(3), beta=1.0, m1=2, inner=np.ones((1, 2, 3), bool)),
     "has pattern keys"),
    (dict(X=np.ones((3, 2)), y=np.ones(3), beta=np.ones(2), m1=2), "beta must be a scalar"),
    (dict(X=np.ones((3, 2)), y=np.ones(4), beta=1.0, m1=2), r"y must have shape \(3,\)"),
])
def test_bad_problem_files(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        load_problem(tmp_path / "bad.npz")


def test_not_an_npz(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npz problem file"):
        load_problem(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="problem file not found"):
        load_problem(tmp_path / "missing.npz")
