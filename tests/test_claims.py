"""Claims: concurrent sweeps on one store compute each run once; stale claims are taken over;
Ctrl-C stops a sweep cleanly (one line, exit 130, stored runs kept, claims released)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dualnets.claims import ClaimQueue, Claims
from dualnets.store import ResultStore
from dualnets.sweep import load_config, run_sweep

CONFIG = """
name = "shared"
datasets = ["planted"]
n = [20, 24, 28]
d = [3]
methods = ["clarabel"]
seeds = 4
[problem]
patterns = 3
"""


def sweep_process(cfg: Path, out: Path) -> subprocess.Popen:
    """A sweep in its own process group, with SIGINT at its default even when the tests run
    in the background of a shell (which starts them with SIGINT ignored)."""
    return subprocess.Popen([sys.executable, "-m", "dualnets.cli", "sweep", str(cfg), "--out",
                             str(out), "--workers", "1", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def claim_files(root: Path) -> list[Path]:
    return list((root / "claims").glob("*.claim"))


def sigint_taken(pid: int) -> bool:
    """Whether SIGINT is neither blocked nor ignored in the process (Linux /proc)."""
    status = dict(line.split(":\t", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    bit = 1 << (signal.SIGINT - 1)
    return not (int(status["SigBlk"], 16) & bit or int(status["SigIgn"], 16) & bit)


def small_sweep(tmp_path: Path, seeds: int):
    """The config at n = 20 with ``seeds`` seeds, and the claims of its store (folder made)."""
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG.replace("n = [20, 24, 28]", "n = [20]").replace("seeds = 4",
                                                                            f"seeds = {seeds}"))
    claims = Claims(tmp_path / "store")
    claims.folder.mkdir(parents=True)
    return load_config(cfg), claims


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_two_concurrent_sweeps_compute_each_run_once(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG)
    store = tmp_path / "store"
    procs = [sweep_process(cfg, store) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    ran = [int(re.search(r"ran (\d+) of the (\d+) runs here", out).group(1)) for out, _ in outs]
    assert sum(ran) == 12, outs
    assert min(ran) > 0, outs          # they did overlap: both had runs to claim
    assert len(ResultStore(store).finished()) == 12
    assert claim_files(store) == []


def test_claim_of_a_live_process_is_respected_then_taken_over_when_it_dies(tmp_path):
    mine, other = Claims(tmp_path), Claims(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine.path("run1").parent.mkdir(parents=True)
        mine.path("run1").write_text(f'{{"pid": {sleeper.pid}, "host": "{mine.host}"}}')
        assert not other.claim("run1")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert other.claim("run1") and other.held == {"run1"}
    assert f'"pid": {os.getpid()}' in other.path("run1").read_text()
    other.release_all()
    assert not other.path("run1").exists()


def test_claim_on_another_host_is_never_stale(tmp_path):
    claims = Claims(tmp_path)
    claims.path("r").parent.mkdir(parents=True)
    claims.path("r").write_text(f'{{"pid": {dead_pid()}, "host": "elsewhere"}}')
    assert not claims.claim("r")


def test_sweep_takes_over_a_stale_claim(tmp_path):
    config, claims = small_sweep(tmp_path, seeds=1)
    run_id = config.specs()[0].run_id
    claims.path(run_id).write_text(f'{{"pid": {dead_pid()}, "host": "{claims.host}"}}')
    runs = run_sweep(config, tmp_path / "store", progress=False)
    assert list(runs["run_id"]) == [run_id] and runs["status"].iloc[0] == "optimal"
    assert claim_files(tmp_path / "store") == []


def test_queue_drops_a_run_another_sweep_stored(tmp_path):
    class Spec:
        run_id = "abc"
    other, mine = Claims(tmp_path), Claims(tmp_path)
    assert other.claim("abc")
    stored = set()
    queue = ClaimQueue([Spec()], mine, stored.__contains__)
    assert queue.take() is None and not queue.done          # held by the other sweep
    stored.add("abc")                                        # which stores it, then releases
    other.release("abc")
    queue.next_look = 0.0
    assert queue.take() is None and queue.done and mine.held == set()


def test_ctrl_c_one_line_exit_130_stored_runs_kept(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('datasets = ["planted"]\nn = [20]\nd = [3]\nmethods = ["clarabel", "adam"]\n'
                   'timeout = 120\n[problem]\npatterns = 3\n'
                   '[options.adam]\nepochs = 10000000\nK = 4\nlrs = [0.01]\n')
    store = ResultStore(tmp_path / "store")
    proc = sweep_process(cfg, store.root)
    deadline = time.monotonic() + 120
    while not (store.runs_dir.is_dir() and any(store.runs_dir.glob("*.parquet"))
               and claim_files(store.root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)                      # adam is training in its worker
    assert sigint_taken(proc.pid), Path(f"/proc/{proc.pid}/status").read_text()
    os.killpg(proc.pid, signal.SIGINT)   # what Ctrl-C in a terminal does
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 130, err
    assert err == "dualnets: interrupted\n"
    assert "ForkProcess" not in err and "Traceback" not in err
    assert list(store.runs()["method"]) == ["clarabel"]      # the finished run is kept
    assert claim_files(store.root) == []                       # the in-flight claim released


def test_dask_client_claims_before_submitting(tmp_path):
    distributed = pytest.importorskip("distributed")
    config, claims = small_sweep(tmp_path, seeds=3)
    held = config.specs()[1].run_id
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    claims.path(held).write_text(f'{{"pid": {sleeper.pid}, "host": "{claims.host}"}}')
    store = ResultStore(tmp_path / "store")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        sweep = threading.Thread(target=run_sweep, args=(config, store.root),
                                 kwargs=dict(scheduler=cluster.scheduler_address,
                                             progress=False))
        sweep.start()
        deadline = time.monotonic() + 120
        while len(store.finished()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        assert store.finished() == {s.run_id for s in config.specs()} - {held}
        assert sweep.is_alive()                  # waiting for the run another sweep holds
        sleeper.kill()
        sleeper.wait()                            # its claim is now stale: taken over
        sweep.join(timeout=120)
    assert not sweep.is_alive() and len(store.finished()) == 3
    assert claim_files(store.root) == []
