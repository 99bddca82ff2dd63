"""A rank correlation between one value per measure and a gain measured per (measure, seed, clip).

The asymmetry verdict of notebook 06 correlates each measure's *assessment accuracy* (one SRCC
per measure) with its *optimization gain* (the held-out panel gain of the fine-tune that used
the measure as a loss), and that gain is measured once per training seed and test clip.
:func:`gain_cube` arranges the gains as a ``(measures, seeds, clips)`` array and
:func:`hierarchical_spearman` gives Spearman's rho with a hierarchical bootstrap interval, so
that the spread over seeds and clips enters the interval instead of being averaged away first.
Every random draw comes from the caller's :class:`numpy.random.Generator`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from nriqa.errors import UserError

from .stats import RHO_CAP, row_spearman

_CLIP = ("model", "dataset", "clip")


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's ``rho`` over ``n`` measures with a bootstrap interval ``(lo, hi)`` (``nan``
    below the minimum number of measures); ``n_seeds`` / ``n_clips``: the most seeds of a
    measure and the number of clips behind each measure's gain."""

    rho: float
    lo: float
    hi: float
    n: int
    n_seeds: int
    n_clips: int

    @property
    def units(self) -> str:
        """What the estimate rests on, e.g. ``"6 measures x 3 seeds x 3 clips"``."""
        def count(k: int, what: str) -> str:
            return f"{k} {what}{'' if k == 1 else 's'}"
        return " x ".join([count(self.n, "measure"), count(self.n_seeds, "seed"), count(self.n_clips, "clip")])


def gain_cube(table: pd.DataFrame, measures: Sequence[str], *, value: str = "gain") -> np.ndarray:
    """``(measures, seeds, clips)`` array of ``value`` from a table ``run, seed, clip, <value>``
    (``run`` = the measure used as a loss; ``model`` / ``dataset`` columns, when present, are part
    of the clip key; ``seed`` absent = one seed). Each measure's seeds are sorted and padded with
    NaN up to the largest count; a (seed, clip) a measure lacks is NaN. Several rows of one cell
    (e.g. frames) are averaged."""
    t = table if "seed" in table.columns else table.assign(seed=0)
    if "clip" not in t.columns or value not in t.columns or "run" not in t.columns:
        raise UserError(f"the table needs 'run', 'clip' and {value!r} columns (it has {list(t.columns)})")
    missing = [m for m in measures if m not in set(t["run"])]
    if missing:
        raise UserError(f"measures {missing} have no gains; runs in the table: {sorted(set(t['run']))}")
    parts = [c for c in _CLIP if c in t.columns]
    t = t[t["run"].isin(list(measures))].assign(_clip=t[parts].astype(str).agg("/".join, axis=1))
    cell = t.groupby(["run", "seed", "_clip"])[value].mean()
    clips = sorted(t["_clip"].unique())
    seeds = {m: sorted(t.loc[t["run"] == m, "seed"].unique()) for m in measures}
    k = max(len(s) for s in seeds.values())
    cube = np.full((len(measures), k, len(clips)), np.nan)
    for i, m in enumerate(measures):
        rows = cell.loc[m].unstack("_clip").reindex(index=seeds[m], columns=clips)
        cube[i, :len(seeds[m])] = rows.to_numpy(float)
    return cube


def seed_means(cube: np.ndarray) -> np.ndarray:
    """``(measures, seeds)``: each seed's mean gain over clips (NaN cells left out; NaN for a
    padded, missing seed)."""
    with warnings.catch_warnings():           # a padded (missing) seed is an all-NaN row
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(cube, axis=2)


def cube_means(cube: np.ndarray) -> np.ndarray:
    """Each measure's mean gain: the mean over its seeds of its mean over clips (NaN cells left out)."""
    with warnings.catch_warnings():           # a padded (missing) seed is left out
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(seed_means(cube), axis=1)


def hierarchical_replicates(x: np.ndarray, cube: np.ndarray, *, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """``n_boot`` bootstrap replicates of Spearman's rho between ``x`` (measures,) and the measures'
    mean gains over ``cube`` (measures, seeds, clips); NaN for a replicate with a constant variable.

    Each replicate draws measures with replacement, then one draw of seed indices and one of
    clips, both with replacement and shared by every measure of the replicate: the k-th seed of
    every arm is a fine-tune of the same baseline with the same training seed (paired on seed
    index as in :func:`nriqa.analysis.stats.arm_values`), and the test clips are the same for
    every arm, so a seed or a clip that favours some measures moves their gains together
    (each drawn measure drawing its own seeds instead misses that: tried, it did worse).
    A drawn measure's gain is the mean over the drawn seeds (those it has) of the mean over the
    drawn clips.

    ``x`` is taken as exact. Its own sampling error (an SRCC over a few hundred images, the same
    images for every measure) was tried as an independent Fisher-z perturbation per measure: it
    pulls the replicates' rho towards 0, which *narrows* the Fisher-z interval (simulated null
    rate 2 % -> 21 % at 12 measures x 5 seeds x 8 clips), so it is left out."""
    m, k, c = cube.shape
    valid = np.isfinite(cube)
    mi = rng.integers(0, m, (n_boot, m))                                # measures
    ci = rng.integers(0, c, (n_boot, c))                                # clips, shared
    w_clip = np.zeros((n_boot, c))
    np.add.at(w_clip, (np.arange(n_boot)[:, None], ci), 1.0)
    num = np.einsum("msc,bc->bms", np.where(valid, cube, 0.0), w_clip)
    den = np.einsum("msc,bc->bms", valid.astype(float), w_clip)
    with np.errstate(invalid="ignore", divide="ignore"):
        seed_mean = num / den                                           # (B, m, k): NaN where no drawn clip
    si = np.broadcast_to(rng.integers(0, k, (n_boot, 1, k)), (n_boot, m, k))   # one seed draw for every measure
    vals = np.take_along_axis(seed_mean[np.arange(n_boot)[:, None], mi], si, axis=2)
    ok = np.isfinite(vals)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(ok, vals, 0.0).sum(-1) / ok.sum(-1)                # (B, m)
    xb = x[mi]
    r = row_spearman(xb, y)
    return np.where(np.isfinite(y).all(axis=1), r, np.nan)


def hierarchical_spearman(x: Sequence[float], cube: np.ndarray, *, rng: np.random.Generator, n_boot: int,
                          level: float = 0.95, min_n: int = 5, replicates: np.ndarray | None = None) -> RankCorrelation:
    """Spearman's rho between ``x`` (one value per measure, e.g. its assessment SRCC) and the
    measures' mean gains over ``cube`` (measures, seeds, clips; :func:`gain_cube`), with a
    bootstrap-t interval on Fisher's z scale from :func:`hierarchical_replicates`.

    On ``z = atanh(rho)`` (``|rho|`` capped at 0.999): the replicates' variance, inflated by
    ``k/(k-1)`` for the smaller of the seed and clip counts ``k`` (the plug-in bootstrap variance
    over ``k`` units is that much too low), is split into the Fieller-Hartley-Pearson part of
    ``n`` independent measures, ``1.06 / (n - 3)`` (always kept, so a handful of measures gives a
    wide interval), and what the seeds and clips add beyond it; the quantile is Student's t on
    their Welch-Satterthwaite degrees of freedom (``n - 3`` and ``k - 1``). Unlike
    :func:`nriqa.analysis.stats.spearman_interval` (measures only, each at its seed-averaged gain)
    this stays near its nominal level when a few shared seeds or clips favour the high- or the
    low-accuracy measures (``tests/test_analysis_rankboot.py`` simulates it). A near-perfect rho
    with some seed spread can give a wide interval (z swings between the cap and the rest):
    conservative, never a false decision. Below ``min_n`` measures (at least 4) there is no
    interval. ``replicates``: precomputed :func:`hierarchical_replicates` of the same ``x`` and
    ``cube`` (to get the 95 % and the 90 % interval from one set)."""
    x = np.asarray(x, float)
    cube = np.asarray(cube, float)
    if cube.ndim != 3 or cube.shape[0] != len(x) or 0 in cube.shape:
        raise UserError(f"expected x (measures,) and a non-empty (measures, seeds, clips) cube, "
                        f"got {x.shape} and {cube.shape}")
    if n_boot < 100:
        raise UserError(f"n_boot must be at least 100, got {n_boot}")
    y = cube_means(cube)
    ok = np.isfinite(x) & np.isfinite(y)
    x, cube, y = x[ok], cube[ok], y[ok]
    n = len(x)
    if n < 3:
        raise UserError(f"need at least 3 measures with a gain and an accuracy for a rank correlation, got {n}")
    seeds = int(np.isfinite(cube).any(axis=2).sum(axis=1).max())
    clips = int(np.isfinite(cube).any(axis=(0, 1)).sum())
    rho = float(sps.spearmanr(x, y)[0])
    if n < max(4, min_n) or not math.isfinite(rho):
        return RankCorrelation(rho, float("nan"), float("nan"), n, seeds, clips)
    r = replicates if replicates is not None else hierarchical_replicates(x, cube, rng=rng, n_boot=n_boot)
    r = r[np.isfinite(r)]
    zs = np.arctanh(np.clip(r, -RHO_CAP, RHO_CAP))
    small = min(seeds, clips)                # the plug-in bootstrap variance over k units is k/(k-1) too low
    inflate = small / (small - 1) if small > 1 else 1.0
    v_boot = float(np.var(zs, ddof=1)) * inflate if zs.size > 1 else 0.0
    v_measures = 1.06 / (n - 3)              # Spearman's z over n independent pairs
    v_units = max(0.0, v_boot - v_measures)  # what the seeds and clips add beyond that
    se = math.sqrt(v_measures + v_units)
    df = (v_measures + v_units) ** 2 / (v_measures ** 2 / (n - 3) + (v_units ** 2 / (small - 1) if small > 1 else 0.0))
    z = math.atanh(max(-RHO_CAP, min(RHO_CAP, rho)))
    q = float(sps.t.ppf(0.5 + level / 2, df))
    return RankCorrelation(rho, math.tanh(z - q * se), math.tanh(z + q * se), n, seeds, clips)
