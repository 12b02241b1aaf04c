"""Sweeps: config validation, resuming after SIGKILL, Dask, failures stored and skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dualnets import registry
from dualnets.cli import main
from dualnets.registry import get_solver
from dualnets.solvers.base import Solver
from dualnets.store import ResultStore
from dualnets.sweep import comparable, load_config, parse_config, run_sweep

# 2 datasets x 2 n x 2 methods x 2 seeds = 16 runs of well under a second each
CONFIG = """
name = "tiny"
datasets = ["planted", "wine"]
n = [20, 30]
d = [4]
methods = ["clarabel", "adam"]
seeds = 2
[problem]
patterns = 6
beta = 0.5
[options.adam]
epochs = 15
K = 4
lrs = [0.01]
"""


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dualnets.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_config_expands_the_grid(tmp_path):
    config = load_config(write(tmp_path, CONFIG))
    specs = config.specs()
    assert len(specs) == 16 and len({s.run_id for s in specs}) == 16
    assert {s.d for s in specs if s.dataset == "wine"} == {None}   # d is for synthetic data
    assert {s.d for s in specs if s.dataset == "planted"} == {4}
    assert [s.options for s in specs if s.method == "adam"][0] == {"epochs": 15, "K": 4,
                                                                   "lrs": [0.01]}


BAD = [
    ('datasets = ["mnist"]\nmethods = ["clarabel"]', "unknown dataset 'mnist'"),
    ('datasets = ["wine"]\nmethods = ["newton"]', "unknown method 'newton'"),
    ('datasets = ["wine"]\nmethods = ["clarabel+magic"]', "unknown pattern strategy 'magic'"),
    ('datasets = ["wine"]\nmethods = ["adam+network"]', "takes no pattern strategies"),
    ('datasets = ["wine"]\nmethods = ["clarabel"]\nn = "many"', "n of wine must be a non-empty"),
    ('datasets = ["wine"]\nmethods = ["clarabel"]\nn = [0, 10]', "integers >= 2"),
    ('datasets = ["wine"]\nmethods = ["clarabel"]\nn = [5000]', "exceeds the 134 training rows"),
    ('datasets = ["wine"]\nmethods = []', "methods must be a non-empty list"),
    ('methods = ["clarabel"]', "datasets must be a list of names"),
    ('[datasets.wine]\nd = [3]\n[x]\nmethods = ["clarabel"]', "unknown key"),
    ('methods = ["clarabel"]\n[datasets.wine]\nd = [3]', "only synthetic datasets scale d"),
    ('datasets = ["wine"]\nmethods = ["clarabel"]\nseeds = [-1]', "seeds must be"),
    ('datasets = ["wine"]\nmethods = ["clarabel"]\ntimeout = -3', "timeout must be"),
    ('datasets = ["wine"]\nmethods = ["clarabel"]\n[problem]\nbeta = "x"', "problem.beta must"),
    ('datasets = ["wine"]\nmethods = ["adam"]\n[options.adam]\nepochs = 0', "options.adam: epochs"),
    ('datasets = ["wine"]\nmethods = ["adam"]\n[options.adam]\nwings = 2', "options.adam:"),
    ('datasets = ["wine"]\nmethods = ["clarabel+dual-search"]\n[search]\nstarts = 0',
     "starts must be an integer >= 1"),
    ('datasets = ["wine"]\nmethods = ["clarabel"]\n[search]\nhurry = 1', "[search]:"),
    ('datasets = ["wine"\nmethods = 3', "not valid TOML"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_config_one_line_error_exit_2(tmp_path, capsys, text, message):
    assert main(["sweep", str(write(tmp_path, text)), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dualnets: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "o").exists()


def test_killed_sweep_resumes_and_matches_uninterrupted(tmp_path):
    cfg = write(tmp_path, CONFIG)
    killed = tmp_path / "killed"
    proc = cli("sweep", str(cfg), "--out", str(killed), "--workers", "1", "--no-progress",
               cwd=tmp_path)
    store = ResultStore(killed)
    deadline = time.monotonic() + 120
    while len(store.finished()) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = store.runs()
    assert 5 <= len(first) < 16, "the sweep must be killed mid-way"

    assert main(["sweep", str(cfg), "--out", str(killed), "--no-progress"]) == 0
    resumed = store.runs()
    assert len(resumed) == 16
    again = resumed.set_index("run_id").loc[first["run_id"]]
    # finished runs were not recomputed: same rows, same finishing time
    assert list(again["finished_at"]) == list(first["finished_at"])

    fresh = run_sweep(load_config(cfg), tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(comparable(resumed), comparable(fresh))
    fresh_traces = ResultStore(tmp_path / "fresh").traces().drop(columns="seconds")
    pd.testing.assert_frame_equal(store.traces().drop(columns="seconds"), fresh_traces)


def test_rerun_skips_everything(tmp_path, capsys):
    cfg = write(tmp_path, CONFIG.replace("n = [20, 30]", "n = [20]").replace(
        '"planted", "wine"', '"planted"'))
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    stamps = ResultStore(tmp_path / "o").runs()["finished_at"].tolist()
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "4 runs, 4 already stored" in capsys.readouterr().out
    assert ResultStore(tmp_path / "o").runs()["finished_at"].tolist() == stamps


def test_dask_local_cluster_gives_the_same_table(tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = write(tmp_path, CONFIG.replace("n = [20, 30]", "n = [20]"))
    local = run_sweep(load_config(cfg), tmp_path / "local", progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        assert main(["sweep", str(cfg), "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "dask"), "--no-progress"]) == 0
    on_dask = ResultStore(tmp_path / "dask").runs()
    assert len(on_dask) == 8 and set(on_dask["status"]) <= {"optimal", "max_iterations"}
    pd.testing.assert_frame_equal(comparable(local), comparable(on_dask))


class OverrunsItsBudget(Solver):
    """A solver that ignores ``max_seconds`` above 100 rows (sleeps), else solves with
    Clarabel: the sweep must kill it and store a timeout."""

    name = "test-overrun"

    def __init__(self, max_seconds: float = float("inf")):
        self.max_seconds = max_seconds

    def solve(self, problem, warm_start=None):
        if problem.n > 100:
            time.sleep(60)
        return get_solver("clarabel").solve(problem)


def test_failed_and_timed_out_runs_are_stored_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, OverrunsItsBudget.name, OverrunsItsBudget)
    raw = {"datasets": {"planted": {"n": [20, 400], "d": [10]}}, "methods": ["test-overrun"],
           "timeout": 0.01, "problem": {"patterns": 6}}
    runs = run_sweep(parse_config(raw), tmp_path / "o", progress=False)
    by_n = runs.set_index("n")
    assert by_n.loc[20, "status"] == "optimal" and by_n.loc[400, "status"] == "timeout"
    assert "killed after" in by_n.loc[400, "message"]
    assert len(ResultStore(tmp_path / "o").finished()) == 2   # stored: a re-run skips it
