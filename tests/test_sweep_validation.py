"""A sweep config is validated whole before the first run: every [problem] value with its type
and range, solver options typed from the solver class, and an unreadable file in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dualnets.cli import main

BASE = 'datasets = ["wine"]\nmethods = ["clarabel"]\nn = [20]\n'

PROBES = [
    ("[problem]\nbeta = -1", r"problem.beta must be > 0, got -1"),
    ("[problem]\nbeta = nan", r"problem.beta must be finite, got nan"),
    ("[problem]\nbeta = 1e300", r"problem.beta must be at most 1e\+150 in magnitude"),
    ("[problem]\nbeta = true", r"problem.beta must be a real number, got True"),
    ("[problem]\nm1 = 0", r"problem.m1 must be an integer >= 1, got 0"),
    ("[problem]\nm1 = 2.5", r"problem.m1 must be an integer >= 1, got 2.5"),
    ("[problem]\npatterns = -5", r"problem.patterns must be an integer >= 1, got -5"),
    ("[problem]\ndepth = 4", r"problem.depth must be 2 or 3, got 4"),
    ("[problem]\ndata_seed = -1", r"problem.data_seed must be an integer >= 0, got -1"),
    ("[problem]\nip_limit = 'big'", r"problem.ip_limit must be an integer >= 1, got 'big'"),
    ("[problem]\nloss = 'hinge'", r"problem.loss must be one of squared, logistic, got 'hinge'"),
    ("[problem]\nloss = 1", r"problem.loss must be one of squared, logistic, got 1"),
    ("timeout = nan", r"timeout must be finite, got nan"),
    ("[options.clarabel]\ntol = 'abc'",
     r"options.clarabel: option 'tol' of solver 'clarabel' must be a number, got 'abc'"),
    ("[options.clarabel]\ntol = nan",
     r"options.clarabel: option 'tol' of solver 'clarabel' must be a finite number, got nan"),
    ("[options.clarabel]\nmax_iters = 'abc'",
     r"option 'max_iters' of solver 'clarabel' must be an integer, got 'abc'"),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("extra, match", PROBES)
def test_bad_config_value_refused_before_any_run(tmp_path, capsys, extra, match):
    cfg = write(tmp_path, BASE + extra + "\n")
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"dualnets: error: {cfg}: ")
    assert re.search(match, err), err
    assert not (tmp_path / "o").exists()


def test_search_field_typed_from_search_config(tmp_path, capsys):
    cfg = write(tmp_path, BASE.replace('"clarabel"', '"clarabel+dual-search"')
                + "[search]\nsteps = 'many'\n")
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "[search]: option 'steps' of [search] must be an integer, got 'many'" in \
        capsys.readouterr().err


@pytest.mark.parametrize("content, match", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"cfg.toml: not a text TOML file \(byte 0x89 at "
                                           r"offset 0 is not UTF-8\)"),
    (b"name = \x00\x01\x02", r"cfg.toml: not valid TOML"),
])
def test_binary_config_one_line_naming_the_file(tmp_path, capsys, content, match):
    (tmp_path / "cfg.toml").write_bytes(content)
    assert main(["sweep", str(tmp_path / "cfg.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err), err


def test_missing_config(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml")]) == 2
    assert f"sweep config not found: {tmp_path / 'nope.toml'}" in capsys.readouterr().err
