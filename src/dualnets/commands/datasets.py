"""List the datasets with their default n (train rows), n_test, d (with the ones column) and task."""

from __future__ import annotations

import argparse

from ..datasets import describe_datasets
from .common import print_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command takes no options."""


def run(args: argparse.Namespace) -> int:
    print_table(describe_datasets(),
                ["name", "n", "n_test", "d", "task", "classes", "scales"])
    return 0
