"""A results store that heals: unreadable files are quarantined with a warning, their runs
recomputed by the next sweep and skipped by `dualnets report`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualnets.cli import main
from dualnets.store import ResultStore

CONFIG = """
name = "heal"
datasets = ["planted"]
n = [20]
d = [3]
methods = ["clarabel"]
seeds = 3
[problem]
patterns = 3
"""


@pytest.fixture
def swept(tmp_path) -> tuple[Path, ResultStore]:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG)
    store = ResultStore(tmp_path / "store")
    assert main(["sweep", str(cfg), "--out", str(store.root), "--no-progress"]) == 0
    assert len(store.finished()) == 3
    return cfg, store


def stamps(store: ResultStore) -> dict[str, float]:
    runs = store.runs()
    return dict(zip(runs["run_id"], runs["finished_at"]))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_row_and_foreign_file_are_quarantined_and_recomputed(swept, capsys):
    cfg, store = swept
    before = stamps(store)
    broken = sorted(store.runs_dir.glob("*.parquet"))[0]
    truncate(broken)
    (store.runs_dir / "notes.parquet").write_text("not a parquet file\n")
    capsys.readouterr()

    assert main(["sweep", str(cfg), "--out", str(store.root), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "3 runs, 2 already stored" in out and "1 to run" in out
    assert f"dualnets: warning: {broken}: unreadable" in err
    assert f"moved to {store.quarantine_dir / 'runs' / broken.name}" in err
    assert "notes.parquet: unreadable" in err and "Traceback" not in err
    assert sorted(p.name for p in (store.quarantine_dir / "runs").iterdir()) == \
        sorted([broken.name, "notes.parquet"])
    after = stamps(store)
    assert set(after) == set(before)
    assert after[broken.stem] > before[broken.stem]                 # recomputed
    assert all(after[k] == before[k] for k in before if k != broken.stem)   # the others kept


def test_unreadable_trace_recomputes_its_run(swept, capsys):
    cfg, store = swept
    before = stamps(store)
    victim = sorted(before)[1]
    truncate(store.traces_dir / f"{victim}.parquet")
    assert store.finished() == set(before) - {victim}
    assert (store.quarantine_dir / "traces" / f"{victim}.parquet").is_file()
    assert main(["sweep", str(cfg), "--out", str(store.root), "--no-progress"]) == 0
    after = stamps(store)
    assert after[victim] > before[victim] and len(store.traces()["run_id"].unique()) == 3


def test_row_with_another_run_id_is_foreign(swept):
    _, store = swept
    first, second = sorted(store.runs_dir.glob("*.parquet"))[:2]
    second.write_bytes(first.read_bytes())      # a copy under another run's name
    assert store.finished() == {p.stem for p in store.runs_dir.glob("*.parquet")}
    assert second.stem not in store.finished()
    assert (store.quarantine_dir / "runs" / second.name).is_file()


def test_report_skips_an_unreadable_file_with_a_warning(swept, tmp_path, capsys):
    _, store = swept
    truncate(sorted(store.runs_dir.glob("*.parquet"))[0])
    capsys.readouterr()
    assert main(["report", str(store.root), "-o", str(tmp_path / "rep")]) == 0
    out, err = capsys.readouterr()
    assert "dualnets: warning:" in err and "unreadable" in err and "Traceback" not in err
    assert "2 runs;" in (tmp_path / "rep" / "report.md").read_text()
