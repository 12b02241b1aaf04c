"""Every dataset loads offline with its documented shapes, seeded and preprocessed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dualnets.cli import main
from dualnets.datasets import (dataset_names, describe_datasets, is_synthetic, load_dataset,
                               one_vs_rest)

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_shapes() -> dict[str, tuple]:
    """(n, n_test, d, task, classes) per dataset, from the table in README.md, section
    Datasets (its name column holds the registry name first)."""
    shapes = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].isdigit():
            name = cells[0].split()[0]
            task = cells[4].split()[0]
            classes = int(cells[4].split("(")[1].rstrip(")")) if "(" in cells[4] else \
                {"binary": 2, "regression": 0}[task]
            shapes[name] = (int(cells[1]), int(cells[2]), int(cells[3]), task, classes)
    return shapes


SHAPES = readme_shapes()


def test_readme_documents_registered_datasets():
    assert SHAPES and set(SHAPES) <= set(dataset_names())


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_default_shapes_and_labels(name):
    data = load_dataset(name)
    n, n_test, d, task, classes = SHAPES[name]
    assert (data.n, data.n_test, data.d, data.task, data.n_classes) == (n, n_test, d, task, classes)
    assert data.X_train.shape == (n, d) and data.y_train.shape == (n,)
    assert data.X_test.shape == (n_test, d) and data.y_test.shape == (n_test,)
    assert np.all(data.X_train[:, -1] == 1.0) and np.all(data.X_test[:, -1] == 1.0)
    if task == "binary":
        assert set(np.unique(data.y_train)) == {-1.0, 1.0}
    elif task == "multiclass":
        assert set(np.unique(data.y_train)) == set(range(classes))
    assert np.all(np.isfinite(data.X_train)) and np.all(np.isfinite(data.y_test))


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "iris", "digits", "diabetes"])
def test_real_data_standardized_on_train_only(name):
    data = load_dataset(name)
    features = data.X_train[:, :-1]
    assert np.allclose(features.mean(axis=0), 0.0, atol=1e-10)
    std = features.std(axis=0)
    assert np.allclose(std[std > 0], 1.0)
    assert not np.allclose(data.X_test[:, :-1].mean(axis=0), 0.0, atol=1e-10)
    if name == "diabetes":
        assert data.y_train.mean() == pytest.approx(0.0, abs=1e-12)
        assert data.y_train.std() == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_subsample_n_and_seed(name):
    a, b = load_dataset(name, n=30, seed=1), load_dataset(name, n=30, seed=1)
    assert a.n == 30
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    c = load_dataset(name, n=30, seed=2)
    assert not np.array_equal(a.X_train, c.X_train)


@pytest.mark.parametrize("name,d", [("planted", 25), ("spirals", 8)])
def test_synthetic_data_scale_d(name, d):
    data = load_dataset(name, n=40, d=d)
    assert data.X_train.shape == (40, d) and data.X_test.shape[1] == d
    assert is_synthetic(name)


def test_real_data_refuse_d():
    assert not is_synthetic("iris")
    with pytest.raises(ValueError, match=r"dataset 'iris' does not take option\(s\) \['d'\]"):
        load_dataset("iris", d=5)


def test_bad_options():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="exceeds the 112 training rows"):
        load_dataset("iris", n=500)
    with pytest.raises(ValueError, match="spirals need d >= 3"):
        load_dataset("spirals", d=2)


def test_one_vs_rest():
    Y = one_vs_rest(np.array([0, 2, 1, 2]), 3)
    np.testing.assert_array_equal(Y, [[1, -1, -1, -1], [-1, -1, 1, -1], [-1, 1, -1, 1]])


def test_datasets_command_lists_every_dataset(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for row in describe_datasets():
        assert row["name"] in out and row["task"] in out
