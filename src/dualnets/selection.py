"""Choosing beta and the baselines' learning rate on a validation split, by a fixed rule.

A sweep with a ``[select]`` table runs in two stages (:func:`dualnets.sweep.run_sweep`):

1. **selection**: every method, option variant (``[vary.SOLVER]``, e.g. one learning rate)
   and selection seed, at every candidate beta, trained on ``1 - validation`` of the training
   rows and scored by its accuracy on the other ``validation`` rows
   (:func:`dualnets.datasets.base.validation_split`); the held-out test fold is never seen;
2. **evaluation**: every method, variant and seed at the chosen beta, trained on all the
   training rows and tested on the held-out fold.

The rule, fixed before any test result exists (:func:`choose_beta`): a variant's score is its
mean validation accuracy over the selection seeds; a method's score is that of its best
variant (its learning rate tuned on validation); beta is the candidate with the highest mean of
the methods' scores, so that the convex and the non-convex side weigh equally whatever the
number of their variants; a tie goes to the larger beta.  A run without an accuracy (failed,
diverged) leaves its variant out; a method with no scored variant is left out of that beta's
mean.  :func:`best_variants` then names each method's variant at the chosen beta (ties: the
first options text in sorted order), which the report compares on the test fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import validate

KEYS = ("beta", "validation", "seeds")
TIE = 1e-12     # scores closer than this are equal


@dataclass(frozen=True)
class Selection:
    """The ``[select]`` table: candidate ``beta`` values, the ``validation`` fraction of the
    training rows, and the ``seeds`` of the selection runs (None: the sweep's seeds)."""

    beta: tuple[float, ...]
    validation: float = 0.2
    seeds: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, raw) -> Selection:
        if not isinstance(raw, dict):
            raise ValueError(f"[select] must be a table, got {raw!r}")
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in [select]; expected {', '.join(KEYS)}")
        betas = raw.get("beta")
        if not isinstance(betas, list) or not betas:
            raise ValueError(f"select.beta must be a non-empty list of numbers > 0, got {betas!r}")
        for b in betas:
            validate.real("select.beta", b, above=0)
        if len(set(betas)) != len(betas):
            raise ValueError(f"select.beta lists a value twice: {betas!r}")
        fraction = validate.real("select.validation", raw.get("validation", 0.2), above=0)
        if not fraction < 1:
            raise ValueError(f"select.validation must be a fraction in (0, 1), got {fraction!r}")
        seeds = raw.get("seeds")
        if seeds is not None:
            if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
                seeds = list(range(seeds))
            if not isinstance(seeds, list) or not seeds or not all(
                    isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
                raise ValueError(f"select.seeds must be a count >= 1 or a list of integers >= 0, "
                                 f"got {raw.get('seeds')!r}")
            seeds = tuple(seeds)
        return cls(tuple(betas), float(fraction), seeds)


def _scored(rows: pd.DataFrame) -> pd.DataFrame:
    """Selection rows with a finite validation accuracy."""
    sel = rows[rows["validation"].notna()].copy()
    sel["accuracy"] = pd.to_numeric(sel["test_accuracy"], errors="coerce").astype(float)
    return sel[np.isfinite(sel["accuracy"])]


def variant_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean validation accuracy of each (beta, method, options) over the selection seeds, from
    the selection rows of one dataset entry."""
    return _scored(rows).groupby(["beta", "method", "options"], sort=False)["accuracy"] \
        .mean().reset_index()


def beta_scores(rows: pd.DataFrame) -> pd.Series:
    """Per candidate beta, the mean over methods of each method's best variant score (the rule
    of the module docstring), from the selection rows of one dataset entry."""
    best = variant_scores(rows).groupby(["beta", "method"], sort=False)["accuracy"].max()
    return best.groupby(level="beta", sort=False).mean().rename("score")


def choose_beta(rows: pd.DataFrame, candidates):
    """The chosen beta of one dataset entry, as written among ``candidates`` (None when no
    selection run has an accuracy)."""
    scores = {float(b): float(s) for b, s in beta_scores(rows).items()}
    scored = [b for b in candidates if float(b) in scores]
    if not scored:
        return None
    top = max(scores[float(b)] for b in scored)
    return max((b for b in scored if scores[float(b)] >= top - TIE), key=float)


def best_variants(rows: pd.DataFrame, beta: float) -> dict[str, str]:
    """Each method's best variant (its ``options`` JSON) on validation at ``beta``, from the
    selection rows of one dataset entry; a tie goes to the first options text in sorted order
    (for learning rates alone: the smallest)."""
    scores = variant_scores(rows)
    scores = scores[np.isclose(scores["beta"].astype(float), float(beta), rtol=1e-12, atol=0)]
    out = {}
    for method, g in scores.groupby("method", sort=False):
        out[method] = min(g.loc[g["accuracy"] >= g["accuracy"].max() - TIE, "options"])
    return out
