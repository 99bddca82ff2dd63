"""Notebook 02: when one extra term is added to Charbonnier, what happens to the other measures?

The runs are :func:`nriqa.study.runs.finetune_runs` (the baseline, then one fine-tune per entry of
the profile's grid), scored with :func:`nriqa.study.judging.evaluate_runs`.

The first paper's design fine-tunes that grid on every model of ``finetune.models``
(:func:`nriqa.study.runs.model_finetune_runs`) and scores each on every test set of
``data.eval_sets`` (:func:`grid_scores`); :func:`model_dataset_gains` is its Fig. 2 table.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from nriqa.analysis import gain_matrix, relative_gain
from nriqa.analysis.standardise import standardised_changes

from . import verdicts as vt
from .judging import Runs, evaluate_runs, seed_mean, test_sets
from .runs import finetune_models
from .text import pct, tied


def gain_table(scores: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Rows = runs (``baseline`` left out), columns = panel measures plus ``mean`` (their mean):
    relative gain over ``baseline``, positive = better whatever the measure's direction."""
    gains = relative_gain(scores, baseline=baseline, by=("run", "measure"))
    return gain_matrix(gains, row="run", col="measure").rename(columns={"average": "mean"})


def standardised_table(scores: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Rows = runs (``baseline`` left out), columns = panel measures plus ``median`` (over them): each
    measure's change over ``baseline`` in units of its seed-to-seed spread (the fidelity-only arm,
    :func:`nriqa.study.verdicts.spread`), averaged over seeds and clips; positive = better. A scale on
    which a measure with a small or unbounded baseline cannot explode (compare :func:`gain_table`)."""
    z = standardised_changes(scores, vt.spread(scores), baseline=baseline)
    mat = z.groupby(["run", "measure"], sort=False)["z"].mean().unstack("measure")
    mat = mat.loc[list(dict.fromkeys(z["run"])), sorted(mat.columns)]
    mat["median"] = mat.median(axis=1)
    return mat


def held_out_means(table: pd.DataFrame, own: Mapping[str, Sequence[str]]) -> pd.Series:
    """Each run's mean gain over the panel measures of a :func:`gain_table` that are not in its own
    loss and share no training data with it (``own``: run -> the measures it optimizes; a run without an
    entry keeps every measure; :func:`nriqa.study.verdicts.held_out_judges`)."""
    measures = [c for c in table.columns if c != "mean"]
    return pd.Series({run: float(table.loc[run, vt.held_out_judges(measures, own.get(run, ()))].mean())
                      for run in table.index}, dtype=float)


def _one_cell(row: pd.Series, *, floor: float = 0.05) -> str:
    """``, an outlier: one cell, <measure> at <gain>; ...`` when a single cell moves the row's mean by
    more than the other cells' range and more than ``floor`` (5 points), else ``""``."""
    row = row.dropna()
    if len(row) < 3:
        return ""
    cell = (row - row.median()).abs().idxmax()
    rest = row.drop(cell)
    if abs(row.mean() - rest.mean()) <= max(rest.max() - rest.min(), floor):
        return ""
    return f", an outlier: one cell, {cell} at {pct(row[cell])}; its other {len(rest)} average {pct(rest.mean())}"


def describe_gains(table: pd.DataFrame, own: Mapping[str, Sequence[str]] | None = None, *,
                   threshold: float = 0.1) -> str:
    """The runs with the largest and the smallest mean gain of a :func:`gain_table`. With ``own`` (run ->
    the measures it optimizes) the gains are held out (:func:`held_out_means`: own measures and the judges
    sharing their training data excluded), a mean that one cell decides is called an outlier, and the runs
    whose own-measure gain exceeds their held-out gain by more than ``threshold`` (the metric-hacking flag of
    :func:`nriqa.analysis.metric_hacking`) are named with both gains."""
    means = table["mean"] if own is None else held_out_means(table, own)
    what = "mean panel gain" if own is None else "held-out panel gain (own measures excluded)"
    if tied(means):
        return f"all {len(table)} runs have the same {what} ({pct(means.mean())}): no run stands out"
    best, worst = means.idxmax(), means.idxmin()
    if own is None:
        return f"largest {what}: {best} ({pct(means[best])}); smallest: {worst} ({pct(means[worst])})"
    cells = table.drop(columns="mean")

    def held(run: str) -> pd.Series:
        return cells.loc[run, vt.held_out_judges(list(cells.columns), own.get(run, ()))]

    text = (f"largest {what}: {best} ({pct(means[best])}{_one_cell(held(best))}); "
            f"smallest: {worst} ({pct(means[worst])}{_one_cell(held(worst))})")
    flagged = []
    for run, measures in own.items():
        mine = [m for m in measures if m in cells.columns]
        if run in cells.index and mine and float(cells.loc[run, mine].mean()) - means[run] > threshold:
            flagged.append(f"{run} (own {pct(cells.loc[run, mine].mean())}, held-out {pct(means[run])})")
    if flagged:
        text += (f"\nflagged for metric hacking (own-measure gain above the held-out one by more than "
                 f"{100 * threshold:g} points): " + ", ".join(flagged))
    return text


def several_cells(cfg: Mapping[str, Any]) -> bool:
    """Whether the profile asks for more than one model or more than one test set (the
    "every model on every dataset" section of notebook 02 runs only then)."""
    return len(finetune_models(cfg)) > 1 or len(cfg["data"].get("eval_sets") or []) > 1


def grid_scores(cfg: Mapping[str, Any], runs_by_model: Mapping[str, Runs], *,
                panel: list[str] | None = None) -> pd.DataFrame:
    """Tidy scores (``run, seed, model, dataset, clip, frame, measure, score``) of every model's runs
    (``{model: {label: {seed: run}}}``, :func:`nriqa.study.runs.model_finetune_runs`) on every test
    set of :func:`nriqa.study.judging.test_sets`."""
    sets = test_sets(cfg)
    return pd.concat([evaluate_runs(cfg, runs, model=model, panel=panel, sets=sets)
                      for model, runs in runs_by_model.items()], ignore_index=True)


def cell_label(model: str, dataset: str) -> str:
    """The column of one (model, test set) cell in :func:`model_dataset_gains`: ``<model> / <dataset>``."""
    return f"{model} / {dataset}"


def model_dataset_gains(scores: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Rows = runs (loss terms; ``baseline`` left out), columns = one per (model, dataset) cell
    (:func:`cell_label`, models then datasets in table order) plus ``mean`` (the cells' mean): the
    relative gain over the same model's ``baseline`` on the same dataset, averaged over the panel
    measures (each clip, then each measure counts once; seeds averaged first). Fractions,
    positive = better (0.05 = 5 %)."""
    gains = relative_gain(seed_mean(scores), baseline=baseline, by=("model", "dataset"))
    gains["cell"] = [cell_label(m, d) for m, d in zip(gains["model"], gains["dataset"])]
    order = [cell_label(m, d) for m, d in scores[["model", "dataset"]].drop_duplicates().itertuples(index=False)]
    table = gain_matrix(gains, row="run", col="cell", average=False)
    table = table[[c for c in order if c in table.columns]]
    table["mean"] = table.mean(axis=1)
    table.columns.name = None
    return table


def describe_model_dataset_gains(table: pd.DataFrame) -> str:
    """The loss term with the largest and the smallest mean gain over every model x dataset cell,
    and in how many cells the best one gains."""
    cells = [c for c in table.columns if c != "mean"]
    if tied(table["mean"]):
        return (f"all {len(table)} loss terms have the same mean gain over the {len(cells)} model x dataset cells "
                f"({pct(table['mean'].mean())}): none stands out")
    best, worst = table["mean"].idxmax(), table["mean"].idxmin()
    wins = int((table.loc[best, cells] > 0).sum())
    return (f"over the {len(cells)} model x dataset cells, {best} has the largest mean gain "
            f"({pct(table.loc[best, 'mean'])}; positive in {wins} of {len(cells)} cells) and {worst} "
            f"the smallest ({pct(table.loc[worst, 'mean'])})")
