"""Run a grid of datasets x n x d x methods x seeds from a TOML config, resumably.

Results go to a parquet store (one file per finished run, plus its trace) in --out; running
the same config again skips the stored runs.  Local worker processes by default, or a Dask
distributed cluster with --scheduler tcp://HOST:PORT.  Then: dualnets report OUT -o reports/NAME.
"""

from __future__ import annotations

import argparse

from ..outputs import check_folder
from ..problem import LOSSES
from ..report import loss_tagged
from ..sweep import load_config, run_sweep
from .common import print_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.toml", help="the sweep grid (configs/*.toml)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="address of a Dask distributed scheduler (default: local processes)")
    parser.add_argument("--workers", type=int, help="local worker processes (default: config)")
    parser.add_argument("--loss", choices=LOSSES,
                        help="training loss of every run (default: the config's [problem] loss, "
                             "else squared)")
    parser.add_argument("--out", metavar="DIR", help="results store (default results/<name>)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="run again the stored runs whose status is error, timeout or skipped")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def summary(runs) -> list[dict]:
    """One row per dataset and method (logistic-loss runs apart): counts and medians over n, d
    and seeds."""
    rows = []
    for (dataset, method), g in loss_tagged(runs).groupby(["dataset", "method"], sort=True):
        rows.append({"dataset": dataset, "method": method, "runs": len(g),
                     "ok": int((~g["status"].isin(["error", "timeout", "skipped"])).sum()),
                     "certified": int(g["certified"].sum()),
                     "failed": int(g["status"].isin(["error", "timeout"]).sum()),
                     "skipped": int((g["status"] == "skipped").sum()),
                     "median NC objective": float(g["network_objective"].median()),
                     "median test acc": float(g["test_accuracy"].median()),
                     "median seconds": float(g["seconds"].median())})
    return rows


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.scheduler and "://" not in args.scheduler:
        raise ValueError(f"--scheduler must be an address like tcp://HOST:PORT, got {args.scheduler!r}")
    config = load_config(args.config, args.loss)
    out = args.out or f"results/{config.name}"
    check_folder(out, "--out")
    runs = run_sweep(config, out, scheduler=args.scheduler, workers=args.workers,
                     retry_failed=args.retry_failed, progress=not args.no_progress)
    print_table(summary(runs), ["dataset", "method", "runs", "ok", "certified", "failed",
                                "skipped", "median NC objective", "median test acc",
                                "median seconds"], title=f"sweep {config.name}: {out}")
    bad = runs[runs["status"].isin(["error", "timeout", "skipped"])]
    for (status, method, message), g in bad.groupby(["status", "method", "message"]):
        print(f"  {status} x{len(g)}: {method}: {message}")
    print(f"report: dualnets report {out} -o reports/{config.name}")
    return 0
