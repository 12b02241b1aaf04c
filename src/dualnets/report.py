"""Figures (seaborn) and markdown for the comparison and sweep reports.

Input is the store's two tables (:mod:`dualnets.store`): ``runs`` (one row per run) and
``traces`` (seconds, iteration, objective, relative_gap, violation per run and part).  Every
number shown comes from those tables; nothing here recomputes a metric.

* :func:`compare_report`: objective against time for every method and seed with the best
  certified convex objective as a line, test accuracy by method, duality gap against time.
* :func:`sweep_report`: runtime against n and against d per method on log-log axes with the
  fitted slope in the legend, certified gap against time, test accuracy convex against SGD per
  dataset, and a markdown summary table.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .certificate import GAP_TOL  # noqa: E402
from .outputs import atomic_open  # noqa: E402

DPI = 90
FAILED = ("error", "timeout", "skipped")
BASELINE_MODELS = ("network",)


def label(method: str, model: str, objective_kind=None) -> str:
    """Legend name: methods that minimize another objective than the ReLU program or NC (the
    gated relaxation; a baseline with its own ``objective_kind``, such as plain-wd) say so."""
    if model == "gated":
        return f"{method} (gated model)"
    if isinstance(objective_kind, str) and objective_kind:
        return f"{method} (own objective)"
    return method


def loss_tagged(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the method of every logistic-loss run named ``METHOD (logistic)``, so that
    a store holding both losses groups and draws them apart (a missing loss is squared)."""
    if "loss" not in runs or not (runs["loss"] == "logistic").any():
        return runs
    out = runs.copy()
    logistic = out["loss"] == "logistic"
    out.loc[logistic, "method"] = out.loc[logistic, "method"] + " (logistic)"
    return out


def labels(df: pd.DataFrame) -> list[str]:
    """:func:`label` of every row of a table with method, model and objective_kind."""
    kinds = df["objective_kind"] if "objective_kind" in df else [None] * len(df)
    return [label(m, k, o) for m, k, o in zip(df["method"], df["model"], kinds)]


def method_seconds(runs: pd.DataFrame) -> pd.Series:
    """Time of the method itself: pattern generation + setup + solve (evaluation excluded)."""
    cols = ["pattern_seconds", "setup_seconds", "solve_seconds"]
    return runs[cols].astype(float).fillna(0.0).sum(axis=1)


def plain_ticks(ax, axes: str) -> None:
    """Log axes labelled 0.3, 1, 20 rather than 3x10^-1 (major and minor ticks)."""
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))


def _save(fig, path: Path) -> str:
    try:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=path.suffix[1:], dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path.name


def _labelled_traces(runs: pd.DataFrame, traces: pd.DataFrame) -> pd.DataFrame:
    """Traces of part 0 with a legend label, in the order of the methods in ``runs``."""
    columns = ["run_id", "method", "model", "objective_kind", "seed", "dataset"]
    keep = runs[[c for c in columns if c in runs]].reset_index(drop=True)
    keep = keep.assign(order=keep.index)
    df = traces.merge(keep, on="run_id").sort_values(["order", "seconds"], kind="stable")
    df["label"] = labels(df)
    df["seed"] = df["seed"].astype(int)
    return df[df["part"] == 0]


def _palette(df: pd.DataFrame) -> dict:
    labels = list(dict.fromkeys(df["label"]))
    return dict(zip(labels, sns.color_palette(n_colors=len(labels))))


def _mark_single_points(df: pd.DataFrame, y: str, palette: dict, ax) -> None:
    """Runs with a one-point trace (interior-point solvers) drawn as visible diamonds."""
    single = df.groupby("run_id").filter(lambda g: len(g) == 1)
    if not single.empty:
        sns.scatterplot(single, x="seconds", y=y, hue="label", palette=palette, marker="D",
                        s=45, edgecolor="black", legend=False, ax=ax)


def best_certified(runs: pd.DataFrame) -> pd.Series | None:
    """The certified ReLU-program run with the lowest objective (None if none certified)."""
    ok = runs[(runs["certified"]) & (runs["model"] == "relu")]
    return None if ok.empty else ok.loc[ok["objective"].astype(float).idxmin()]


def objective_figure(runs: pd.DataFrame, traces: pd.DataFrame, path: Path, note: str = ""):
    df = _labelled_traces(runs, traces)
    df = df[np.isfinite(df["objective"].astype(float)) & (df["objective"] > 0)]
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    palette = _palette(df)
    sns.lineplot(df, x="seconds", y="objective", hue="label", units="run_id", estimator=None,
                 linewidth=1.4, palette=palette, ax=ax)
    _mark_single_points(df, "objective", palette, ax)
    best = best_certified(runs)
    if best is not None:
        ax.axhline(best["objective"], color="black", linestyle="--", linewidth=1,
                   label=f"certified optimum {best['objective']:.4g} ({best['method']}, "
                         f"{int(best['n_patterns'])} patterns)")
    ax.set(xscale="log", yscale="log", xlabel="seconds since the method started (log)",
           ylabel="training objective (log)", title=f"Objective against time{note}")
    plain_ticks(ax, "xy")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def gap_figure(runs: pd.DataFrame, traces: pd.DataFrame, path: Path, note: str = "",
               col: str | None = None):
    df = _labelled_traces(runs, traces)
    df = df[np.isfinite(df["relative_gap"].astype(float)) & (df["relative_gap"] > 0)]
    if df.empty:
        return None
    wrap = min(3, df[col].nunique()) if col else None
    palette = _palette(df)
    grid = sns.relplot(df, x="seconds", y="relative_gap", hue="label", units="run_id",
                       estimator=None, kind="line", col=col, col_wrap=wrap, height=3.4,
                       aspect=1.3, alpha=0.8, palette=palette, facet_kws={"sharex": False})
    grid.set_titles("{col_name}")
    for key, ax in grid.axes_dict.items() if col else [(None, grid.ax)]:
        _mark_single_points(df if key is None else df[df[col] == key], "relative_gap",
                            palette, ax)
        ax.axhline(GAP_TOL, color="black", linestyle=":", linewidth=1)
        ax.set(xscale="log", yscale="log", xlabel="seconds since the method started (log)",
               ylabel="relative duality gap (log)")
        plain_ticks(ax, "x")
    grid.figure.suptitle(f"Duality gap against time (dotted: certified at {GAP_TOL:g}){note}",
                         fontsize=10)
    grid.legend.set_title(None)
    grid.tight_layout()
    return _save(grid.figure, path)


def accuracy_figure(runs: pd.DataFrame, path: Path):
    df = runs[np.isfinite(runs["test_accuracy"].astype(float))].copy()
    if df.empty:
        return None
    df["label"] = labels(df)
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.38 * df["label"].nunique()))
    sns.barplot(df, y="label", x="test_accuracy", estimator="median", errorbar=("pi", 100),
                color="#9ecae1", ax=ax)
    sns.stripplot(df, y="label", x="test_accuracy", color="black", size=4, ax=ax)
    lo = max(0.0, float(df["test_accuracy"].min()) - 0.05)
    ax.set(xlim=(lo, 1.0), xlabel="test accuracy (bar: median; line: range over seeds)",
           ylabel="", title="Test accuracy by method")
    return _save(fig, path)


# -- markdown -------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)).replace("|", "\\|") for c in columns) + " |"
              for r in rows]
    return "\n".join(lines)


COMPARE_COLUMNS = ["method", "seed", "status", "NC objective", "relative gap", "certified",
                   "train acc", "test acc", "seconds"]


FAILED_COLUMNS = ["method", "seed", "status", "message"]


def with_result(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with a result: not failed (error, timeout) nor skipped."""
    return runs[~runs["status"].isin(FAILED)]


def failed_rows(runs: pd.DataFrame) -> list[dict]:
    """The failed and skipped runs, one row each with its message, for their own table."""
    bad = runs[runs["status"].isin(FAILED)]
    return [{"method": label(r["method"], r["model"]), "seed": r["seed"], "status": r["status"],
             "message": r["message"]} for _, r in bad.iterrows()]


def failed_section(rows: list[dict], columns: list[str]) -> list[str]:
    """The markdown "Failed runs" section (nothing when every run has a result)."""
    if not rows:
        return []
    return ["## Failed runs", "", "Runs without a result (error, timeout, skipped), with their "
            "message; they are in no figure and no median.", "",
            markdown_table(rows, columns), ""]


def compare_rows(runs: pd.DataFrame) -> list[dict]:
    """The comparison table: one row per method and seed that has a result."""
    rows = []
    for _, r in with_result(runs).iterrows():
        rows.append({"method": label(r["method"], r["model"], r.get("objective_kind")),
                     "seed": r["seed"],
                     "status": r["status"], "NC objective": r["network_objective"],
                     "relative gap": r["relative_gap"], "certified": bool(r["certified"]),
                     "train acc": r["train_accuracy"], "test acc": r["test_accuracy"],
                     "seconds": r["seconds"], "message": r["message"]})
    return rows


def _who(r) -> str:
    return f"{label(r['method'], r['model'], r.get('objective_kind'))} (seed {r['seed']})"


def verdict(runs: pd.DataFrame) -> list[str]:
    """The plain answer a comparison opens with: which method reached the lowest NC
    objective and the best test accuracy, and whether the best convex network is certified
    over its patterns (and globally, where the run has a global certificate)."""
    done = runs[~runs["status"].isin(FAILED)]
    nc = done[np.isfinite(done["network_objective"].astype(float))]
    if nc.empty:
        return ["No run finished with a network: nothing to compare."]
    lines = []
    low = nc.loc[nc["network_objective"].astype(float).idxmin()]
    lines.append(f"Lowest NC objective: {_who(low)}, {low['network_objective']:.6g}.")
    convex = nc[nc["model"] == "relu"]
    networks = nc[nc["model"].isin(BASELINE_MODELS)]
    if not convex.empty and not networks.empty:
        c = convex.loc[convex["network_objective"].astype(float).idxmin()]
        b = networks.loc[networks["network_objective"].astype(float).idxmin()]
        diff = (float(b["network_objective"]) - float(c["network_objective"])) / \
            abs(float(b["network_objective"]))
        side = "below" if diff > 0 else "above"
        lines.append(f"Best convex network: {_who(c)}, {c['network_objective']:.6g}, "
                     f"{abs(100 * diff):.3g}% {side} the best non-convex baseline "
                     f"({_who(b)}, {b['network_objective']:.6g}); "
                     + (f"certified optimal over its {int(c['n_patterns'])} patterns "
                        f"(relative gap {float(c['relative_gap']):.1e})" if c["certified"] else
                        f"not certified (relative gap {float(c['relative_gap']):.2g})") + "; "
                     + _global(c) + ".")
    acc = done[np.isfinite(done["test_accuracy"].astype(float))]
    if not acc.empty:
        top = acc.loc[acc["test_accuracy"].astype(float).idxmax()]
        tied = acc[acc["test_accuracy"].astype(float) == float(top["test_accuracy"])]
        lines.append(f"Best test accuracy: {float(top['test_accuracy']):.4g}, reached by "
                     + ", ".join(dict.fromkeys(_who(r) for _, r in tied.iterrows())) + ".")
    return lines


def _global(r) -> str:
    """Whether the run's network is certified globally optimal (all patterns)."""
    flag = r.get("globally_certified")
    if flag is None or (isinstance(flag, float) and np.isnan(flag)) or flag is pd.NA:
        return "no global certificate (its patterns were not priced exactly)"
    if bool(flag):
        return f"globally optimal: certified over all patterns (global gap {r['global_gap']:.1e})"
    return f"not certified globally (global gap {float(r['global_gap']):.2g})"


def compare_report(runs: pd.DataFrame, traces: pd.DataFrame, out: str | Path,
                   title: str, settings: dict) -> Path:
    """Figures and report.md of ``dualnets compare`` in ``out``; returns the report path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    done = with_result(runs)
    parts = int(runs["parts"].max()) if runs["parts"].notna().any() else 1
    note = " (class 0 against the rest)" if parts > 1 else ""
    figures = {
        "objective_vs_time.png": objective_figure(done, traces, out / "objective_vs_time.png",
                                                  note),
        "test_accuracy.png": accuracy_figure(done, out / "test_accuracy.png"),
        "gap_vs_time.png": gap_figure(done, traces, out / "gap_vs_time.png", note),
    }
    best = best_certified(done)
    lines = [f"# {title}", "", *[f"- **{line}**" for line in verdict(runs)], "",
             ", ".join(f"{k} = {v}" for k, v in settings.items()), "",
             markdown_table(compare_rows(runs), COMPARE_COLUMNS), ""]
    lines += _notes(done, best) + failed_section(failed_rows(runs), FAILED_COLUMNS)
    for name, made in figures.items():
        lines += [f"![{name}]({name})", ""] if made else \
            [f"({name}: nothing to draw: no finished run has this quantity; regression data "
             "have no accuracy)", ""]
    return _write_text(out / "report.md", "\n".join(lines))


def _write_text(path: Path, text: str) -> Path:
    with atomic_open(path) as fh:
        fh.write(text)
    return path


def _notes(runs: pd.DataFrame, best) -> list[str]:
    lines = ["NC objective: the non-convex objective of the network each method returns (for "
             "convex methods, the network rebuilt from the solution).  Relative gap and "
             "certified come from dualnets' own certificate (docs/design.md section 4), never from "
             "a solver status; baselines have none.  Seconds: wall time of the whole run "
             "(for a baseline, its whole learning-rate grid; its curve in the objective figure "
             "is the best learning rate's run alone, on that run's clock).  A dual-search "
             "curve has one point per round (the objective over the patterns so far).", ""]
    negative = runs[runs["relative_gap"].astype(float) <= 0]
    if not negative.empty:
        lines += ["Not in the gap figure: runs whose gap is <= 0, which happens only at a point "
                  "that violates the cone constraints (see constraint_violation): "
                  + ", ".join(f"{m} (gap {g:.2g})" for m, g in
                              zip(negative["method"], negative["relative_gap"])) + ".", ""]
    if best is not None:
        lines += [f"Best certified convex objective: {best['objective']:.6g} ({best['method']}, "
                  f"seed {best['seed']}, {int(best['n_patterns'])} patterns).  It is optimal "
                  "over its pattern set only, so a network may beat it.", ""]
    return lines


# -- sweep report ---------------------------------------------------------------------------
def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x (NaN with fewer than 2 distinct x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    if np.unique(x[ok]).size < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def scaling_table(runs: pd.DataFrame, var: str) -> pd.DataFrame:
    """Median method seconds per (dataset, method, var) over seeds and the other size, for the
    datasets where ``var`` takes at least two values."""
    df = runs[~runs["status"].isin(FAILED)].copy()
    df["runtime"] = method_seconds(df)
    df["limited"] = df["status"].isin(["time_limit", "timeout"]).astype(int)
    df[var] = df[var].astype(float)
    varied = df.groupby("dataset")[var].nunique()
    df = df[df["dataset"].isin(varied[varied >= 2].index)]
    return df.groupby(["dataset", "method", var], as_index=False).agg(
        runtime=("runtime", "median"), limited=("limited", "sum"))


def scaling_figure(runs: pd.DataFrame, var: str, path: Path):
    df = scaling_table(runs, var)
    if df.empty:
        return None, []
    slopes = []
    for (dataset, method), g in df.groupby(["dataset", "method"]):
        slopes.append({"dataset": dataset, "method": method, "var": var,
                       "slope": slope(g[var], g["runtime"]), "runs at a limit": g["limited"].sum()})
    lookup = {(s["dataset"], s["method"]): s for s in slopes}
    df["label"] = [_slope_label(lookup[(ds, m)]) for ds, m in zip(df["dataset"], df["method"])]
    datasets = sorted(df["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.4 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        sub = df[df["dataset"] == dataset]
        sns.lineplot(sub, x=var, y="runtime", hue="label", marker="o", ax=ax)
        ax.set(xscale="log", yscale="log", title=dataset, ylabel="seconds (median over seeds)",
               xlabel=f"{var} (log)")
        plain_ticks(ax, "y")
        ax.set_xticks(sorted(sub[var].unique()), [f"{v:g}" for v in sorted(sub[var].unique())])
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
        ax.legend(fontsize=7, title="fitted log-log slope", title_fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"Runtime against {var} (patterns + setup + solve)", fontsize=10)
    return _save(fig, path), slopes


def _slope_label(entry: dict) -> str:
    text = f"{entry['method']} (slope {entry['slope']:.2f}"
    if entry["runs at a limit"]:
        text += f"; {int(entry['runs at a limit'])} runs stopped by a time limit"
    return text + ")"


def convex_vs_sgd_figure(runs: pd.DataFrame, path: Path):
    df = runs[~runs["status"].isin(FAILED) & np.isfinite(runs["test_accuracy"].astype(float))]
    if df.empty:
        return None
    family = np.where(df["model"].isin(BASELINE_MODELS), "non-convex", "convex")
    df = df.assign(family=family, label=[f"{f}: {name}" for f, name in zip(family, labels(df))])
    df = df.sort_values(["family", "label"])
    fig, ax = plt.subplots(figsize=(4.5 + 1.5 * df["dataset"].nunique(), 4.2))
    sns.boxplot(df, x="dataset", y="test_accuracy", hue="label", ax=ax, fliersize=2,
                linewidth=0.8)
    ax.set(ylabel="test accuracy (over n, d, seeds)", xlabel="",
           title="Test accuracy: convex methods against SGD/Adam")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title=None)
    return _save(fig, path)


SUMMARY_COLUMNS = ["dataset", "method", "runs", "statuses", "certified", "NC objective",
                   "relative gap", "test acc", "seconds"]


def summary_rows(runs: pd.DataFrame) -> list[dict]:
    """Per dataset and method: counts, and medians over the grid and seeds."""
    rows = []
    for (dataset, method), g in runs.groupby(["dataset", "method"], sort=True):
        ok = g[~g["status"].isin(FAILED)]
        rows.append({"dataset": dataset, "method": labels(g.iloc[:1])[0],
                     "runs": len(g), "statuses": ", ".join(
                         f"{s} {c}" for s, c in g["status"].value_counts().items()),
                     "certified": f"{int(g['certified'].sum())}/{len(g)}",
                     "NC objective": ok["network_objective"].astype(float).median(),
                     "relative gap": ok["relative_gap"].astype(float).median(),
                     "test acc": ok["test_accuracy"].astype(float).median(),
                     "seconds": method_seconds(ok).median()})
    return rows


def sweep_report(runs: pd.DataFrame, traces: pd.DataFrame, out: str | Path,
                 title: str = "Sweep report") -> Path:
    """Figures and report.md of ``dualnets report`` in ``out``; returns the report path."""
    out, runs = Path(out), loss_tagged(runs)
    out.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    runtime_n, slopes_n = scaling_figure(runs, "n", out / "runtime_vs_n.png")
    runtime_d, slopes_d = scaling_figure(runs, "d", out / "runtime_vs_d.png")
    done = with_result(runs)
    figures = {"runtime_vs_n.png": runtime_n, "runtime_vs_d.png": runtime_d,
               "gap_vs_time.png": gap_figure(done, traces, out / "gap_vs_time.png",
                                             col="dataset"),
               "accuracy_convex_vs_sgd.png": convex_vs_sgd_figure(runs, out /
                                                                  "accuracy_convex_vs_sgd.png")}
    grid = "; ".join(f"{c}: {', '.join(str(v) for v in sorted(runs[c].dropna().unique()))}"
                     for c in ("dataset", "n", "d", "method", "seed"))
    lines = [f"# {title}", "", f"{len(runs)} runs; {grid}.", "",
             "Medians over the grid and seeds; seconds = pattern generation + setup + solve.",
             "", markdown_table(summary_rows(runs), SUMMARY_COLUMNS), ""]
    if slopes_n or slopes_d:
        lines += ["Fitted log-log slopes of runtime (seconds ~ size^slope); a run stopped by a "
                  "time limit flattens its slope:", "",
                  markdown_table(slopes_n + slopes_d, ["dataset", "method", "var", "slope",
                                                       "runs at a limit"]), ""]
    for name, made in figures.items():
        lines += [f"![{name}]({name})", ""] if made else [f"({name}: nothing to draw)", ""]
    lines += failed_section(failed_groups(runs), ["status", "method", "runs", "message"])
    return _write_text(out / "report.md", "\n".join(lines) + "\n")


def failed_groups(runs: pd.DataFrame) -> list[dict]:
    """Failed and skipped runs of a sweep, counted per status, method and message."""
    bad = runs[runs["status"].isin(FAILED)].fillna({"message": ""})
    return [{"status": status, "method": method, "runs": len(g), "message": message}
            for (status, method, message), g in bad.groupby(["status", "method", "message"])]
