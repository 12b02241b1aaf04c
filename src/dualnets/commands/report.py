"""Build a report (seaborn figures + report.md) from a results store written by `dualnets sweep`.

Figures: runtime against n and against d per method (log-log, fitted slope in the legend),
certified duality gap against time, test accuracy of convex methods against SGD/Adam per
dataset; report.md holds the summary table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..outputs import check_folder
from ..report import sweep_report
from ..store import ResultStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS", help="results store (folder with runs/)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="output folder, e.g. reports/NAME")
    parser.add_argument("--title", help="report title (default: the results folder name)")


def run(args: argparse.Namespace) -> int:
    store = ResultStore(args.results)
    check_folder(args.output, "--output")
    if not store.finished():
        raise ValueError(f"{args.results}: no stored runs (expected {store.runs_dir}/*.parquet)")
    title = args.title or f"Sweep report: {Path(args.results).name}"
    path = sweep_report(store.runs(), store.traces(), args.output, title)
    print(f"wrote {path} and its figures")
    return 0
