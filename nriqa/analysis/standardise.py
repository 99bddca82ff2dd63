"""Changes over the baseline on a scale that does not explode: measure change / seed spread.

The relative gain ``(m(run) - m(baseline)) / |m(baseline)|`` of :func:`nriqa.analysis.relative_gain`
explodes when a measure's baseline is near 0 or the measure is unbounded (one such measure can
make a panel mean read thousands of percent). Here each measure's change is divided by how much
that measure moves from seed to seed instead::

    z = sign_m * (m(run, seed, clip) - m(baseline, clip)) / spread_m

(``sign_m = +1`` when higher is better, so positive = better; the baseline averaged over its
seeds), ``spread_m`` from :func:`seed_spread`: a ``z`` of 1 is a change as large as one
retraining with another seed moves that measure. :func:`panel_effect` aggregates ``z`` over the
measures of each unit, by the median by default so that no single measure can dominate.
Scores are the tidy table of :func:`nriqa.analysis.stats.paired_gains` (``run, seed, model,
dataset, clip[, frame], measure, score``; ``seed`` optional), averaged over frames per clip first.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from nriqa.errors import UserError

from .gain import _directions
from .stats import baseline_pairs

_CLIP = ["model", "dataset", "clip"]
_HOW = ("median", "mean")


def _clip_cells(scores: pd.DataFrame) -> pd.DataFrame:
    """``run, seed, model, dataset, clip, measure, score``: scores averaged over frames."""
    df = scores if "seed" in scores.columns else scores.assign(seed=0)
    missing = {"run", "seed", "measure", "score", *_CLIP} - set(df.columns)
    if missing:
        raise UserError(f"scores lack columns {sorted(missing)}; expected the tidy evaluate_runs() table")
    return df.groupby(["run", "seed", *_CLIP, "measure"], as_index=False, sort=False)["score"].mean()


def seed_spread(scores: pd.DataFrame, arm: str, *, floor: float = 0.05) -> pd.Series:
    """Per measure, the seed-to-seed standard deviation of ``arm``'s clip scores.

    Within each ``(model, dataset, clip)`` the variance over ``arm``'s seeds (``ddof=1``), pooled
    over clips as ``sqrt(mean of the within-clip variances)``. It is at least ``floor`` times the
    measure's across-clip standard deviation (``ddof=1``) of ``arm``'s seed-averaged clip scores:
    a measure that every seed scores alike (a deterministic or insensitive measure) would otherwise
    divide by 0, and the content spread over clips is a scale of the measure that only vanishes for
    a constant measure; with ``floor = 0.05`` a change of one clip-to-clip SD is at most ``z = 20``.
    A measure constant over seeds and clips has no scale: NaN (its ``z`` is NaN and left out of
    :func:`panel_effect`). ``arm`` is typically the baseline (the common starting point) when it
    has several seeds.

    Returns:
        Series ``measure -> spread`` (``>= 0`` or NaN), in the units of each measure's score.
    """
    if not floor >= 0:
        raise UserError(f"floor must be >= 0, got {floor}")
    cells = _clip_cells(scores)
    cells = cells[cells["run"] == arm]
    if cells.empty:
        raise UserError(f"run {arm!r} is not in the scores; runs: {sorted(set(scores['run']))}")
    if cells["seed"].nunique() < 2:
        raise UserError(f"run {arm!r} has one seed; a seed-to-seed spread needs at least two")
    by_clip = cells.groupby([*_CLIP, "measure"])["score"]
    within = by_clip.var(ddof=1).groupby("measure").mean()           # clips with one seed: NaN, skipped
    across = by_clip.mean().groupby("measure").std(ddof=1)
    spread = pd.Series(np.fmax(np.sqrt(within), floor * across.reindex(within.index)), index=within.index)
    spread = spread.where(spread > 0)
    spread.name = "spread"
    return spread


def standardised_changes(scores: pd.DataFrame, spread: pd.Series, *, baseline: str = "baseline",
                         higher_better: Mapping[str, bool] | None = None) -> pd.DataFrame:
    """One standardised change per ``(run, seed, clip, measure)`` over ``baseline``.

    ``z = sign_m * (m(run, seed, clip) - m(baseline, clip)) / spread[m]`` (module docstring;
    positive = better), the baseline's clip score averaged over its seeds. Directions from
    ``higher_better``, else a ``higher_better`` column, else the measure's quality card (as
    :func:`nriqa.analysis.stats.paired_gains`). Every measure in ``scores`` needs a ``spread``.

    Returns:
        DataFrame ``run, seed, model, dataset, clip, measure, z`` without the baseline (``z`` NaN
        where ``spread`` is NaN).
    """
    cells = _clip_cells(scores)
    if baseline not in set(cells["run"]):
        raise UserError(f"baseline run {baseline!r} not in the scores; runs: {sorted(set(cells['run']))}")
    unknown = sorted(set(cells["measure"]) - set(spread.index))
    if unknown:
        raise UserError(f"no seed spread for measures {unknown}; compute it with seed_spread() on all measures")
    keys = [*_CLIP, "measure"]
    arms = baseline_pairs(cells, keys, baseline=baseline,
                          directions=_directions(scores, list(cells["measure"].unique()), higher_better))
    arms["z"] = arms["sign"] * (arms["score"] - arms["base"]) / arms["measure"].map(spread).astype(float)
    return arms[["run", "seed", *keys, "z"]].reset_index(drop=True)


def panel_effect(z: pd.DataFrame, *, how: str = "median") -> pd.DataFrame:
    """Aggregate :func:`standardised_changes` over the measures of each ``(run, seed, clip)``.

    ``how``: ``"median"`` (default: no single measure can move it beyond its neighbours) or
    ``"mean"``; NaN ``z`` are left out. Returns ``run, seed, model, dataset, clip, value``, ready
    for :func:`nriqa.analysis.stats.contrast` with ``value="value"``.
    """
    if how not in _HOW:
        raise UserError(f"how must be one of {list(_HOW)}, got {how!r}")
    missing = {"run", "seed", *_CLIP, "z"} - set(z.columns)
    if missing:
        raise UserError(f"the table lacks columns {sorted(missing)}; expected standardised_changes()")
    out = z.groupby(["run", "seed", *_CLIP], as_index=False, sort=False)["z"].agg(how)
    return out.rename(columns={"z": "value"})
