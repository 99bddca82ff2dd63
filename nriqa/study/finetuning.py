"""Notebook 02: when one extra term is added to Charbonnier, what happens to the other measures?

The runs are :func:`nriqa.study.runs.finetune_runs` (the baseline, then one fine-tune per entry of
the profile's grid), scored with :func:`nriqa.study.judging.evaluate_runs`.

The first paper's design fine-tunes that grid on every model of ``finetune.models``
(:func:`nriqa.study.runs.model_finetune_runs`) and scores each on every test set of
``data.eval_sets`` (:func:`grid_scores`); :func:`model_dataset_gains` is its Fig. 2 table.
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from nriqa.analysis import gain_matrix, relative_gain

from .judging import Runs, evaluate_runs, seed_mean, test_sets
from .runs import finetune_models
from .text import pct, tied


def gain_table(scores: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Rows = runs (``baseline`` left out), columns = panel measures plus ``mean`` (their mean):
    relative gain over ``baseline``, positive = better whatever the measure's direction."""
    gains = relative_gain(scores, baseline=baseline, by=("run", "measure"))
    return gain_matrix(gains, row="run", col="measure").rename(columns={"average": "mean"})


def describe_gains(table: pd.DataFrame) -> str:
    """The runs with the largest and the smallest ``mean`` gain of a :func:`gain_table`."""
    if tied(table["mean"]):
        return f"all {len(table)} runs have the same mean panel gain ({pct(table['mean'].mean())}): no run stands out"
    best, worst = table["mean"].idxmax(), table["mean"].idxmin()
    return (f"largest mean panel gain: {best} ({pct(table.loc[best, 'mean'])}); "
            f"smallest: {worst} ({pct(table.loc[worst, 'mean'])})")


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
