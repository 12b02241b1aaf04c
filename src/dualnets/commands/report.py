"""Build a report (seaborn figures + report.md) from a results store written by `dualnets sweep`.

Figures: runtime against n and against d per method (log-log, fitted slope in the legend),
certified duality gap against time, test accuracy of convex methods against SGD/Adam per
dataset; report.md holds the summary table.  A sweep with a [select] stage (beta and learning
rates chosen on validation, configs/paper.toml) gets the validated comparison instead
(:mod:`dualnets.validated_report`): win/tie/loss counts, an accuracy scatter and a performance
profile.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..outputs import check_folder
from ..report import sweep_report
from ..store import ResultStore
from ..validated_report import is_selected, validated_report


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
    runs = store.runs()
    path = validated_report(runs, args.output, title) if is_selected(runs) else \
        sweep_report(runs, store.traces(), args.output, title)
    print(f"wrote {path} and its figures")
    return 0
