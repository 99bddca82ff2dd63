"""Notebook 02: when one extra term is added to Charbonnier, what happens to the other measures?

The runs are :func:`nriqa.study.runs.finetune_runs` (the baseline, then one fine-tune per entry of
the profile's grid), scored with :func:`nriqa.study.evaluation.evaluate_runs`.
"""
from __future__ import annotations

import pandas as pd

from nriqa.analysis import gain_matrix, relative_gain
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
