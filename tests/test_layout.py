"""The design card's layout: top-level baselines/ and datasets/ installed as dualnets.baselines
and dualnets.datasets, in the editable install, the wheel asv builds, and a regular install."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dualnets.baselines
import dualnets.datasets

ROOT = Path(__file__).resolve().parents[1]


def test_plugin_folders_are_sub_packages_of_the_checkout():
    assert Path(dualnets.baselines.__file__).parent == ROOT / "baselines"
    assert Path(dualnets.datasets.__file__).parent == ROOT / "datasets"
    assert dualnets.datasets.__name__ == "dualnets.datasets"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built as asv.conf.json's build_command builds it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    return next(out.glob("dualnets-*.whl"))


def test_wheel_holds_the_plugins_under_dualnets_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("dualnets/baselines/adam.py", "dualnets/datasets/iris.py",
                   "dualnets/solvers/al.py", "dualnets/registry.py"):
        assert module in names
    tops = {name.split("/")[0] for name in names if not name.startswith("dualnets-")}
    assert tops == {"dualnets"}, "no top-level package named datasets or baselines"


def test_regular_install_discovers_every_plugin(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import dualnets, dualnets.registry as r, dualnets.datasets as d; "
            "print(dualnets.__file__); print(r.available_solvers()); print(d.dataset_names())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, text=True,
                         capture_output=True, env={"PYTHONPATH": str(target),
                                                   "PATH": "/usr/bin:/bin"}).stdout.splitlines()
    from dualnets.datasets import dataset_names
    from dualnets.registry import available_solvers
    assert out[0].startswith(str(target))
    assert out[1] == str(available_solvers()) and out[2] == str(dataset_names())
