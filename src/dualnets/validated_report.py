"""The report of a sweep with a ``[select]`` stage (the paper's experiment, reports/paper).

Per dataset, :mod:`dualnets.selection` gives the beta chosen on validation and each method's
validated variant (for SGD and Adam: a learning rate).  On the held-out fold, at that beta:

* **accuracy**: each convex method against each baseline at its validated learning rate, and
  against the median over the baseline's learning rates (those that did not diverge); a
  dataset is a win, a tie or a loss by the mean test accuracy over seeds, a tie being a
  difference of at most ``TIE_ACCURACY``;
* **objective**: the NC objective of the trained networks on the training rows, both sides at
  the same beta, a tie being a relative difference of at most ``TIE_OBJECTIVE``;
* a store holding both losses keeps them apart: a logistic run's method is
  ``METHOD (logistic)``, and beta is chosen and methods compared per dataset and loss;
* **performance profile** (Mishkin et al. 2022): over the (dataset, seed) instances, the
  fraction on which a method's network is within ``tau`` of the best NC objective of any
  method, against the method's time (its final network only: one point per run).

Every number comes from the store's rows; the figures are seaborn/matplotlib.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .report import (BASELINE_MODELS, FAILED, _save, _write_text, failed_groups,
                     failed_section, loss_tagged, markdown_table, method_seconds, plain_ticks,
                     plt, sns)
from .datasets import is_synthetic
from .selection import beta_scores, best_variants, choose_beta

TIE_ACCURACY = 0.01     # mean test accuracies this close are a tie (one point in a hundred)
TIE_OBJECTIVE = 1e-3    # relative difference of NC objectives that counts as a tie
TAUS = (1e-3, 1e-2, 1e-1)
RULE = ("beta is the candidate with the highest mean, over methods, of each method's best "
        "mean validation accuracy over its variants (learning rates); ties go to the larger "
        "beta. Each baseline's learning rate is its best variant on validation at that beta "
        "(ties: the smallest). Fixed before any test result existed (dualnets.selection).")


def is_selected(runs: pd.DataFrame) -> bool:
    """Whether a store holds a [select] sweep (selection rows carry their validation split)."""
    return "validation" in runs and bool(runs["validation"].notna().any())


def _key(df: pd.DataFrame) -> pd.Series:
    """A dataset entry: its name, d for synthetic data (a failed run of real data has no d, a
    finished one has the data's) and the loss when it is not squared: beta is chosen per entry
    and methods are compared within one."""
    loss = df["loss"] if "loss" in df else pd.Series(None, index=df.index)
    return pd.Series([(f"{name}|{d}" if is_synthetic(name) else name)
                      + ("|logistic" if lo == "logistic" else "")
                      for name, d, lo in zip(df["dataset"], df["d"], loss)], index=df.index)


def _lr_text(options: str) -> str:
    lrs = json.loads(options).get("lrs")
    return ", ".join(f"{lr:g}" for lr in lrs) if lrs else ""


def choices(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset entry: the chosen beta, its validation score and every candidate's score,
    and each method's validated variant (a dict method -> options JSON)."""
    sel = runs[runs["validation"].notna()]
    rows = []
    for key, g in sel.groupby(_key(sel), sort=True):
        candidates = sorted(g["beta"].astype(float).unique())
        beta = choose_beta(g, candidates)
        scores = beta_scores(g)
        rows.append({"key": key, "dataset": g["dataset"].iloc[0], "beta": beta,
                     "scores": {float(b): float(s) for b, s in scores.items()},
                     "variants": {} if beta is None else best_variants(g, beta)})
    return pd.DataFrame(rows)


def evaluation(runs: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The held-out-fold rows at each dataset's chosen beta, with ``validated`` marking each
    method's validated variant and ``method_seconds`` its time."""
    ev = runs[runs["validation"].isna()].copy()
    ev["key"] = _key(ev)
    beta = dict(zip(chosen["key"], chosen["beta"]))
    ev = ev[[np.isclose(float(b), beta.get(k, np.nan), rtol=1e-12, atol=0)
             for k, b in zip(ev["key"], ev["beta"])]].copy()
    variants = dict(zip(chosen["key"], chosen["variants"]))
    # a method with one variant (a convex method) needs no choice, even when its selection
    # runs failed; one with several and no scored selection run has none validated
    single = ev.groupby(["key", "method"])["options"].nunique() == 1
    ev["validated"] = [variants.get(k, {}).get(m, o if single[(k, m)] else None) == o
                       for k, m, o in zip(ev["key"], ev["method"], ev["options"])]
    ev["method_seconds"] = method_seconds(ev).to_numpy()
    lost = ev["status"].isin(FAILED)     # a failed run's time is the time it took to fail
    ev.loc[lost, "method_seconds"] = pd.to_numeric(ev.loc[lost, "seconds"]).astype(float)
    for col in ("test_accuracy", "network_objective", "relative_gap"):
        ev[col] = pd.to_numeric(ev[col], errors="coerce").astype(float)
    return ev


def per_dataset(ev: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, method): the validated variant's means over seeds (accuracy, NC
    objective, seconds, certified runs) and the median over variants of the mean accuracy."""
    rows = []
    for (key, method), g in ev.groupby(["key", "method"], sort=True):
        means = g.groupby("options")["test_accuracy"].mean()
        val = g[g["validated"]]
        rows.append({"key": key, "dataset": g["dataset"].iloc[0], "method": method,
                     "convex": g["model"].iloc[0] not in BASELINE_MODELS,
                     "n": g["n"].iloc[0], "n_test": g["n_test"].iloc[0], "d": g["d"].iloc[0],
                     "beta": float(g["beta"].iloc[0]), "runs": len(val),
                     "lr": _lr_text(val["options"].iloc[0]) if len(val) else "",
                     "accuracy": val["test_accuracy"].mean(),
                     "median accuracy": means.dropna().median(),
                     "no result": int(g["test_accuracy"].isna().sum()),
                     "objective": val["network_objective"].mean(),
                     "certified": int(val["certified"].fillna(False).sum()),
                     "seconds": val["method_seconds"].mean(),
                     "grid seconds": g.groupby("seed")["method_seconds"].sum().mean()})
    return pd.DataFrame(rows)


def outcome(delta: float, tie: float) -> str:
    if not np.isfinite(delta):
        return "n/a"
    return "win" if delta > tie else "loss" if delta < -tie else "tie"


def comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and (convex, baseline) pair: the accuracy differences (validated, median)
    and the relative objective difference, with their outcome for the convex method."""
    rows = []
    for key, g in table.groupby("key", sort=True):
        for _, c in g[g["convex"]].iterrows():
            for _, b in g[~g["convex"]].iterrows():
                rel = (b["objective"] - c["objective"]) / max(abs(b["objective"]), 1e-300)
                rows.append({"dataset": c["dataset"], "convex": c["method"],
                             "baseline": b["method"], "lr": b["lr"],
                             "convex acc": c["accuracy"], "baseline acc": b["accuracy"],
                             "baseline median acc": b["median accuracy"],
                             "vs validated": outcome(c["accuracy"] - b["accuracy"],
                                                     TIE_ACCURACY),
                             "vs median": outcome(c["accuracy"] - b["median accuracy"],
                                                  TIE_ACCURACY),
                             "convex NC": c["objective"], "baseline NC": b["objective"],
                             "objective": outcome(rel, TIE_OBJECTIVE)})
    return pd.DataFrame(rows)


def counts(comp: pd.DataFrame) -> list[dict]:
    """Win/tie/loss counts per (convex, baseline) pair and comparison."""
    rows = []
    for (convex, baseline), g in comp.groupby(["convex", "baseline"], sort=True):
        for col, what in (("vs validated", "test accuracy, baseline at its validated lr"),
                          ("vs median", "test accuracy, baseline median over lrs"),
                          ("objective", "NC objective, baseline at its validated lr")):
            tally = g[col].value_counts()
            rows.append({"convex": convex, "baseline": baseline, "comparison": what,
                         "win": int(tally.get("win", 0)), "tie": int(tally.get("tie", 0)),
                         "loss": int(tally.get("loss", 0)), "n/a": int(tally.get("n/a", 0))})
    return rows


def accuracy_scatter(comp: pd.DataFrame, path: Path):
    """Convex test accuracy against each baseline's (validated lr), one point per dataset."""
    df = comp[np.isfinite(comp["convex acc"]) & np.isfinite(comp["baseline acc"])]
    if df.empty:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 5))
    sns.scatterplot(df, x="baseline acc", y="convex acc", hue="baseline", style="convex",
                    ax=ax, s=40)
    lo = float(min(df["convex acc"].min(), df["baseline acc"].min())) - 0.02
    ax.plot([lo, 1.0], [lo, 1.0], color="grey", lw=1, ls="--")
    ax.set(xlim=(lo, 1.01), ylim=(lo, 1.01), xlabel="baseline test accuracy (validated lr)",
           ylabel="convex test accuracy",
           title="Held-out fold, one point per dataset (above the line: convex better)")
    return _save(fig, path)


def profile(ev: pd.DataFrame, taus=TAUS) -> pd.DataFrame:
    """Performance profile data: for each validated method and tau, the fraction of
    (dataset, seed) instances solved to within tau of the best NC objective by time t."""
    val = ev[ev["validated"]].copy()
    val["instance"] = val["key"] + "|" + val["seed"].astype(str)
    best = val.groupby("instance")["network_objective"].min()
    total = best.notna().sum()
    rows = []
    for tau in taus:
        for method, g in val.groupby("method", sort=True):
            ok = g["network_objective"] <= best.loc[g["instance"]].to_numpy() * (1 + tau)
            times = np.sort(g.loc[ok.to_numpy(), "method_seconds"].to_numpy())
            for i, t in enumerate(times, start=1):
                rows.append({"tau": tau, "method": method, "seconds": t,
                             "fraction": i / total})
    return pd.DataFrame(rows)


def profile_figure(ev: pd.DataFrame, path: Path):
    data = profile(ev)
    if data.empty:
        return None
    fig, axes = plt.subplots(1, len(TAUS), figsize=(4.2 * len(TAUS), 3.6), sharey=True)
    for ax, tau in zip(np.atleast_1d(axes), TAUS):
        part = data[data["tau"] == tau]
        for method, g in part.groupby("method", sort=True):
            ax.step(np.r_[g["seconds"].min() * 0.9, g["seconds"]], np.r_[0, g["fraction"]],
                    where="post", label=method)
        ax.set(xscale="log", ylim=(0, 1.02), xlabel="seconds (one run)",
               title=f"within {tau:g} of the best NC objective")
        plain_ticks(ax, "x")
    np.atleast_1d(axes)[0].set_ylabel("fraction of (dataset, seed)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    return _save(fig, path)


def _verdict(count_rows: list[dict], table: pd.DataFrame) -> list[str]:
    lines = []
    for r in count_rows:
        lines.append(f"- {r['convex']} against {r['baseline']}, {r['comparison']}: "
                     f"{r['win']} wins, {r['tie']} ties, {r['loss']} losses"
                     + (f" ({r['n/a']} without a result)" if r["n/a"] else ""))
    for method, g in table[table["convex"]].groupby("method", sort=True):
        lines.append(f"- {method}: runs certified over their patterns: "
                     f"{int(g['certified'].sum())} of {int(g['runs'].sum())}")
    lines += _objective_diagnosis(table)
    return lines


def _objective_diagnosis(table: pd.DataFrame) -> list[str]:
    """Why a convex method's NC objective is above the best baseline's: on the datasets where
    every convex run was certified over its patterns, the patterns (the search) limit it; where
    none was, the solver's budget did."""
    lines = []
    best = table[~table["convex"]].groupby("key")["objective"].min()
    for method, g in table[table["convex"]].groupby("method", sort=True):
        above = g[[o > best.get(k, np.inf) * (1 + TIE_OBJECTIVE) for k, o in
                   zip(g["key"], g["objective"])]]
        if above.empty:
            continue
        every = int(((above["certified"] == above["runs"]) & (above["runs"] > 0)).sum())
        none = int((above["certified"] == 0).sum())
        lines.append(f"- {method}'s NC objective is above the best baseline's on {len(above)} "
                     f"datasets: on {every} of them every run was certified over its patterns "
                     f"(the patterns its search found limit it), on {none} no run was (the "
                     f"solver's budget limits it), on {len(above) - every - none} some were")
    return lines


def _losses(comp: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """Plain words on each dataset where the convex method's test accuracy is below the best
    baseline's (at its validated lr) by more than a tie."""
    lines = []
    for (dataset, convex), g in comp.groupby(["dataset", "convex"], sort=True):
        row = table[(table["dataset"] == dataset) & (table["method"] == convex)].iloc[0]
        if not np.isfinite(row["accuracy"]):
            lines.append(f"- {dataset}: {convex} has no finished run at the chosen beta "
                         f"(see the failed runs)")
            continue
        best = g.loc[g["baseline acc"].idxmax()] if g["baseline acc"].notna().any() else None
        if best is None or row["accuracy"] >= best["baseline acc"] - TIE_ACCURACY:
            continue
        lines.append(f"- {dataset} (n = {row['n']}, d = {row['d']}): {convex} "
                     f"{row['accuracy']:.3f} against {best['baseline']} "
                     f"{best['baseline acc']:.3f} (lr {best['lr']}); certified "
                     f"{row['certified']} of {row['runs']} runs; NC objective "
                     f"{row['objective']:.4g} against {best['baseline NC']:.4g}")
    return lines or ["- nowhere: on every dataset the convex method ties or beats the best "
                     "baseline"]


def _timing(runs: pd.DataFrame) -> list[str]:
    seconds = pd.to_numeric(runs["seconds"], errors="coerce").astype(float)
    finished = pd.to_numeric(runs["finished_at"], errors="coerce").astype(float)
    wall = float((finished.max() - (finished - seconds).min()) / 60)
    sel = runs["validation"].notna()
    return [f"- {len(runs)} runs ({int(sel.sum())} selection, {int((~sel).sum())} evaluation): "
            f"{seconds[sel].sum() / 60:.1f} + {seconds[~sel].sum() / 60:.1f} minutes of run "
            f"time, {wall:.1f} minutes from the first run's start to the last run's end"]


TABLE_COLUMNS = ["dataset", "method", "n", "n_test", "d", "beta", "lr", "runs", "accuracy",
                 "median accuracy", "no result", "objective", "certified", "seconds",
                 "grid seconds"]


def validated_report(runs: pd.DataFrame, out: str | Path, title: str) -> Path:
    """report.md, accuracy_scatter.png, performance_profile.png and the tables as CSV."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)
    runs = loss_tagged(runs)
    chosen = choices(runs)
    ev = evaluation(runs, chosen)
    table = per_dataset(ev)
    comp = comparisons(table) if len(table) else pd.DataFrame()
    count_rows = counts(comp) if len(comp) else []
    figures = {"accuracy_scatter.png": accuracy_scatter(comp, out / "accuracy_scatter.png")
               if len(comp) else None,
               "performance_profile.png": profile_figure(ev, out / "performance_profile.png")}
    table.drop(columns=["key"], errors="ignore").to_csv(out / "per_dataset.csv", index=False)
    comp.to_csv(out / "comparisons.csv", index=False)
    betas = [{"dataset": r["dataset"], "chosen beta": r["beta"],
              **{f"score at {b:g}": s for b, s in sorted(r["scores"].items())}}
             for _, r in chosen.iterrows()]
    lines = [f"# {title}", "", *_verdict(count_rows, table), "",
             f"{table['dataset'].nunique() if len(table) else 0} datasets. A tie is a "
             f"difference in mean test accuracy of at most {TIE_ACCURACY:g}, or a relative "
             f"difference in NC objective of at most {TIE_OBJECTIVE:g}.", "",
             "## Protocol", "", f"- {RULE}",
             "- Accuracy is the mean over seeds on the held-out fold; the median over learning "
             "rates leaves out the runs without a result (diverged or failed; the `no result` column counts them over every learning rate).",
             "- Seconds: pattern generation + setup + solve of one run; `grid seconds` is a "
             "seed's whole variant grid (a baseline's learning-rate search).", "",
             "## Win / tie / loss", "",
             markdown_table(count_rows, ["convex", "baseline", "comparison", "win", "tie",
                                         "loss", "n/a"]), "",
             "## Where the convex side loses", "", *_losses(comp, table), ""]
    for name, made in figures.items():
        lines += [f"![{name}]({name})", ""] if made else [f"({name}: nothing to draw)", ""]
    lines += ["## Per dataset (held-out fold, chosen beta)", "",
              markdown_table(table.to_dict("records"), TABLE_COLUMNS), "",
              "## Beta chosen on validation", "",
              markdown_table(betas, list(betas[0]) if betas else ["dataset"]), "",
              "## Time", "", *_timing(runs), ""]
    lines += failed_section(failed_groups(runs), ["status", "method", "runs", "message"])
    return _write_text(out / "report.md", "\n".join(lines) + "\n")
