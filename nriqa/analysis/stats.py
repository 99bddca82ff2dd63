"""Statistics of the verdicts: paired gains over seeds and clips, bootstrap intervals, TOST.

Every arm (a fine-tune) is trained with several seeds and scored on the same test clips as the
baseline. :func:`paired_gains` turns tidy scores into one gain per ``(run, seed, clip)`` (or per
frame), with the gain of :func:`nriqa.analysis.relative_gain`::

    gain = mean over measures m of  sign_m * (m(arm) - m(baseline)) / |m(baseline)|

(``sign_m = +1`` when higher is better, so positive = better), the baseline being the run named
``baseline`` scored on the same clip (and frame).

:func:`contrast` estimates a mean over seeds and clips -- or a *paired difference* of arms, the
arms' values subtracted on the same clip and seed index first -- with a hierarchical bootstrap:
resample seeds, then clips (the same clips for every arm of a difference), then frames within a
clip when frames are the unit. The interval is a bootstrap-t interval: the bootstrap standard
error, inflated by ``k/(k-1)`` for the smallest resampled level of ``k`` units (the plug-in
bootstrap variance is biased low by that factor), with Student's t on Welch-Satterthwaite degrees
of freedom from the seed-level and clip-level variances. A plain percentile interval of three
seeds would exclude zero under no true effect far more often than 5 %; this one does not
(``tests/test_analysis_stats.py`` simulates it).

:func:`tost` is the equivalence test of a claimed *absence* of effect against a margin;
:func:`spearman_interval` a bootstrap interval of a rank correlation over few points.
Everything is numpy / pandas / scipy; every random draw comes from the caller's
:class:`numpy.random.Generator`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from nriqa.errors import UserError

from .gain import _directions

_UNITS = ("clip", "frame")
_CLIP = ("model", "dataset", "clip")
_ALTERNATIVES = ("two-sided", "greater", "less")
_ROUNDING = 1e-12       # a standard error at most this fraction of |effect| is rounding, not spread


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds x clips (x frames) with its bootstrap standard error.

    ``effect`` in the units of the table (a gain: a fraction, ``0.01`` = +1 %); ``se`` the
    small-sample corrected bootstrap standard error; ``df`` the degrees of freedom of the t
    reference (``nan`` with one seed or one clip: no interval, their variance is unknown); ``n_seeds``, ``n_clips``,
    ``n_frames`` (0 when clips are the unit) count the units behind it.
    """

    effect: float
    se: float
    df: float
    n_seeds: int
    n_clips: int
    n_frames: int = 0

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided ``level`` interval ``effect +- t_{df} * se`` (``(nan, nan)`` without one)."""
        if not (math.isfinite(self.se) and math.isfinite(self.df) and self.df > 0):
            return float("nan"), float("nan")
        q = float(sps.t.ppf(0.5 + level / 2, self.df))
        return self.effect - q * self.se, self.effect + q * self.se

    def p_value(self, null: float = 0.0, alternative: str = "two-sided") -> float:
        """Student-t p-value of ``H0: effect == null`` on ``df`` and ``se``, the reference of
        :meth:`interval`: two-sided ``p < 1 - level`` exactly when the ``level`` interval excludes
        ``null``. ``alternative``: ``"two-sided"``, ``"greater"`` (H1: effect > null) or ``"less"``.
        ``nan`` without an interval (one seed or one clip) or with ``se == 0`` (no spread: the data
        cannot tell a difference from noise)."""
        if alternative not in _ALTERNATIVES:
            raise UserError(f"alternative must be one of {list(_ALTERNATIVES)}, got {alternative!r}")
        if not _testable(self):
            return float("nan")
        t = (self.effect - float(null)) / self.se
        if alternative == "greater":
            return float(sps.t.sf(t, self.df))
        if alternative == "less":
            return float(sps.t.cdf(t, self.df))
        return float(min(1.0, 2.0 * sps.t.sf(abs(t), self.df)))

    @property
    def n(self) -> str:
        """What the estimate rests on, e.g. ``"3 seeds x 3 clips"``."""
        def count(k: int, what: str) -> str:
            return f"{k} {what}{'' if k == 1 else 's'}"
        parts = [count(self.n_seeds, "seed"), count(self.n_clips, "clip")]
        if self.n_frames:
            parts.append(count(self.n_frames, "frame") + " per clip")
        return " x ".join(parts)


def _testable(est: Estimate) -> bool:
    """An interval exists and the standard error is more than rounding: a table of one repeated
    value gives ``se`` of 0 or ~1e-17 (means of the same value over different counts differ in
    the last bit), which must read as no spread, not as infinite evidence."""
    finite = math.isfinite(est.se) and math.isfinite(est.df) and est.df > 0
    return finite and est.se > _ROUNDING * abs(est.effect) and est.se > 0


# --------------------------------------------------------------------------- gains per unit

def paired_gains(scores: pd.DataFrame, *, baseline: str = "baseline", measures: Sequence[str] | None = None,
                 unit: str = "clip", higher_better: Mapping[str, bool] | None = None,
                 eps: float = 1e-8) -> pd.DataFrame:
    """One relative gain per ``(run, seed, clip)`` (``unit="frame"``: per frame) over ``baseline``.

    Args:
        scores: tidy scores ``run, seed, model, dataset, clip, frame, measure, score``
            (``seed`` may be absent: one seed, 0); the baseline run included.
        baseline: the run every other run is compared with on the same clip (and frame). When it
            has several seeds its scores are averaged over them (it is the common starting point).
        measures: the measures averaged into the gain (default: all in ``scores``); each counts once.
        unit: ``"clip"`` (scores averaged over frames first) or ``"frame"``.
        higher_better: measure -> direction (default: a ``higher_better`` column or the card).
        eps: floor on ``|m(baseline)|``.

    Returns:
        DataFrame ``run, seed, model, dataset, clip[, frame], gain`` without the baseline.
    """
    if unit not in _UNITS:
        raise UserError(f"unit must be one of {list(_UNITS)}, got {unit!r}")
    df = scores if "seed" in scores.columns else scores.assign(seed=0)
    need = {"run", "seed", "measure", "score", *_CLIP} | ({"frame"} if unit == "frame" else set())
    missing = need - set(df.columns)
    if missing:
        raise UserError(f"scores lack columns {sorted(missing)}; expected the tidy evaluate_runs() table")
    if measures is not None:
        unknown = sorted(set(measures) - set(df["measure"]))
        if unknown:
            raise UserError(f"measures {unknown} are not in the scores (they have {sorted(set(df['measure']))})")
        df = df[df["measure"].isin(list(measures))]
    if baseline not in set(df["run"]):
        raise UserError(f"baseline run {baseline!r} not in the scores; runs: {sorted(set(df['run']))}")
    keys = list(_CLIP) + (["frame"] if unit == "frame" else []) + ["measure"]
    cell = df.groupby(["run", "seed"] + keys, as_index=False, sort=False)["score"].mean()
    arms = baseline_pairs(cell, keys, baseline=baseline, directions=_directions(df, list(cell["measure"].unique()),
                                                                                 higher_better))
    arms["gain"] = arms["sign"] * (arms["score"] - arms["base"]) / np.maximum(arms["base"].abs(), eps)
    out = keys[:-1]
    return arms.groupby(["run", "seed"] + out, as_index=False, sort=False)["gain"].mean()


def baseline_pairs(cells: pd.DataFrame, keys: Sequence[str], *, baseline: str,
                   directions: Mapping[str, bool]) -> pd.DataFrame:
    """Every non-baseline row of ``cells`` (``run, seed, <keys>, score``; ``keys`` end with
    ``measure``) beside ``base``: the baseline's score on the same keys averaged over its seeds, and
    ``sign``: +1 where the measure is higher-better (``directions``), else -1. A clear error when no
    key is shared with the baseline."""
    base = (cells[cells["run"] == baseline].groupby(list(keys), as_index=False, sort=False)["score"].mean()
            .rename(columns={"score": "base"}))
    arms = cells[cells["run"] != baseline].merge(base, on=list(keys), how="inner")
    if arms.empty:
        raise UserError(f"no clip and measure is shared by the baseline {baseline!r} and another run")
    return arms.assign(sign=arms["measure"].map(lambda m: 1.0 if directions[m] else -1.0))


def paired_change(table: pd.DataFrame, *, baseline: str = "baseline", value: str = "value") -> pd.DataFrame:
    """``value(run, seed, clip) - value(baseline, clip)`` for every run but ``baseline`` (whose
    value is averaged over its seeds): an absolute change on the same clip, e.g. of an artifact
    measure (higher = more artifact). ``table``: ``run, seed, clip, <value>`` (``seed`` optional;
    ``model``, ``dataset``, ``frame`` and ``measure`` columns, when present, are matched too).
    Returns ``run, seed, <those keys>, change``."""
    t = table if "seed" in table.columns else table.assign(seed=0)
    keys = [c for c in (*_CLIP, "frame", "measure") if c in t.columns]
    if "clip" not in keys or value not in t.columns:
        raise UserError(f"the table needs 'clip' and {value!r} columns (it has {list(t.columns)})")
    if baseline not in set(t["run"]):
        raise UserError(f"baseline run {baseline!r} not in the table; runs: {sorted(set(t['run']))}")
    base = (t[t["run"] == baseline].groupby(keys, as_index=False)[value].mean()
            .rename(columns={value: "_base"}))
    arms = t[t["run"] != baseline].merge(base, on=keys, how="inner")
    if arms.empty:
        raise UserError(f"no clip is shared by the baseline {baseline!r} and another run")
    arms["change"] = arms[value] - arms["_base"]
    return arms[["run", "seed", *keys, "change"]].reset_index(drop=True)


def _cube(table: pd.DataFrame, run: str, value: str, clips: list, frames: list | None) -> np.ndarray:
    """``(seeds, clips[, frames])`` array of ``run``'s ``value`` (seeds sorted; NaN where missing)."""
    rows = table[table["run"] == run]
    if rows.empty:
        raise UserError(f"run {run!r} is not in the table; runs: {sorted(set(table['run']))}")
    idx = ["seed", "_clip"] + (["frame"] if frames is not None else [])
    s = rows.groupby(idx)[value].mean()
    seeds = sorted(rows["seed"].unique())
    full = pd.MultiIndex.from_product([seeds, clips] + ([frames] if frames is not None else []), names=idx)
    arr = s.reindex(full).to_numpy(float)
    return arr.reshape(len(seeds), len(clips), *([len(frames)] if frames is not None else []))


def _with_clip_key(table: pd.DataFrame) -> pd.DataFrame:
    if "seed" not in table.columns:
        table = table.assign(seed=0)
    if "clip" not in table.columns:
        raise UserError(f"the table needs a 'clip' column (it has {list(table.columns)})")
    parts = [c for c in _CLIP if c in table.columns]
    return table.assign(_clip=table[parts].astype(str).agg("/".join, axis=1))


def arm_values(table: pd.DataFrame, plus: Sequence[str], minus: Sequence[str] = (), *,
               value: str = "gain") -> np.ndarray:
    """The paired contrast per unit: mean of the ``plus`` runs minus mean of the ``minus`` runs,
    as a ``(seeds, clips[, frames])`` array. Runs are paired on clip (and frame) and on *seed
    index* (each run's seeds sorted, the k-th with the k-th); only the first ``min`` seeds of
    the runs are used when their counts differ."""
    if not plus:
        raise UserError("a contrast needs at least one run in 'plus'")
    t = _with_clip_key(table)
    clips = sorted(t["_clip"].unique())
    frames = sorted(t["frame"].unique()) if "frame" in t.columns else None
    cubes = {r: _cube(t, r, value, clips, frames) for r in [*plus, *minus]}
    k = min(c.shape[0] for c in cubes.values())
    mean = lambda runs: np.mean([cubes[r][:k] for r in runs], axis=0)  # noqa: E731
    out = mean(plus)
    return out - mean(minus) if minus else out


# --------------------------------------------------------------------------- the bootstrap

def _satterthwaite(arr: np.ndarray) -> float:
    """Welch-Satterthwaite degrees of freedom from the seed-level and clip-level variances of the
    mean of ``arr`` (seeds, clips); a level with one unit contributes nothing."""
    s, c = arr.shape[:2]
    flat = np.nanmean(arr.reshape(s, c, -1), axis=2)
    parts = []
    if s > 1:
        parts.append((np.nanvar(np.nanmean(flat, axis=1), ddof=1) / s, s - 1))
    if c > 1:
        parts.append((np.nanvar(np.nanmean(flat, axis=0), ddof=1) / c, c - 1))
    if not parts:
        return float("nan")
    num = sum(v for v, _ in parts) ** 2
    den = sum(v * v / d for v, d in parts)
    if den <= 0:
        return float(min(d for _, d in parts))
    return float(num / den)


def bootstrap(arr: np.ndarray, *, rng: np.random.Generator, n_boot: int) -> Estimate:
    """Hierarchical bootstrap of the mean of ``arr`` ``(seeds, clips[, frames])``: each replicate
    draws seeds with replacement, clips with replacement (the same clips for every seed) and,
    with a frame axis, frames with replacement within each drawn clip. NaN cells (a missing
    frame) are left out of the means. See the module docstring for the interval."""
    arr = np.asarray(arr, float)
    if arr.ndim not in (2, 3) or 0 in arr.shape:
        raise UserError(f"expected a non-empty (seeds, clips[, frames]) array, got shape {arr.shape}")
    if n_boot < 100:
        raise UserError(f"n_boot must be at least 100, got {n_boot}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    s, c, f = arr.shape
    effect = float(np.nanmean(arr))
    if not math.isfinite(effect):
        raise UserError("the table holds no finite value")
    df = _satterthwaite(arr)
    if s < 2 or c < 2:  # one seed or one clip: its variance is unknown, so there is no interval
        return Estimate(effect, float("nan"), float("nan"), s, c, f if f > 1 else 0)
    si = rng.integers(0, s, (n_boot, s))
    ci = rng.integers(0, c, (n_boot, c))
    sub = arr[si[:, :, None], ci[:, None, :]]                       # (n_boot, s, c, f)
    if f > 1:
        fi = rng.integers(0, f, (n_boot, 1, c, f))
        sub = np.take_along_axis(sub, np.broadcast_to(fi, sub.shape), axis=3)
    means = np.nanmean(sub.reshape(n_boot, -1), axis=1)
    k = min(s, c)
    se = float(np.nanstd(means, ddof=1) * math.sqrt(k / (k - 1)))
    return Estimate(effect, se, df, s, c, f if f > 1 else 0)


def contrast(table: pd.DataFrame, plus: Sequence[str], minus: Sequence[str] = (), *, rng: np.random.Generator,
             n_boot: int, value: str = "gain") -> Estimate:
    """:func:`bootstrap` of :func:`arm_values`: e.g. ``contrast(g, ["nr"])`` is the NR arm's mean
    gain, ``contrast(g, ["nr+lpips"], ["nr"])`` the paired difference of two arms.

    ``table``: ``run, seed, clip[, frame], <value>`` (e.g. :func:`paired_gains`, or artifact
    values ``run, seed, clip, value``)."""
    return bootstrap(arm_values(table, plus, minus, value=value), rng=rng, n_boot=n_boot)


# --------------------------------------------------------------------------- equivalence

def tost(est: Estimate, margin: float, *, alpha: float = 0.05, lower: float | None = None) -> tuple[float, bool]:
    """Two one-sided tests that the true effect lies within ``(lower, margin)`` (``lower``
    defaults to ``-margin``; ``lower=-inf`` makes it a one-sided non-inferiority test, e.g. "adds
    no more than ``margin`` of an artifact"). Returns ``(p, passed)``: ``p`` the larger of the
    two one-sided p-values, ``passed = p < alpha`` (equivalently: the ``1 - 2 alpha`` interval
    lies inside the bounds). No interval (one seed or one clip) and a zero standard error (every
    seed and clip gave the same value: no spread to judge a difference by) give ``(nan, False)``."""
    if not margin > 0:
        raise UserError(f"an equivalence margin must be positive, got {margin}")
    lo_bound = -margin if lower is None else float(lower)
    if not _testable(est):
        return float("nan"), False       # se == 0: every seed and clip gave one value, no evidence
    p_upper = float(sps.t.cdf((est.effect - margin) / est.se, est.df))          # H0: effect >= margin
    p_lower = 0.0 if not math.isfinite(lo_bound) else float(sps.t.sf((est.effect - lo_bound) / est.se, est.df))
    p = max(p_upper, p_lower)
    return p, bool(p < alpha)


# --------------------------------------------------------------------------- seeds over fixed units

def seed_bootstrap(arr: np.ndarray, *, rng: np.random.Generator, n_boot: int) -> Estimate:
    """Bootstrap of the mean of ``arr`` ``(seeds, units)`` where only the seeds are a sample: the
    units (e.g. the discriminator kinds a study names) are fixed, so each replicate draws seeds
    with replacement and keeps every unit (each seed's value is its mean over the units; NaN cells
    left out). The interval is bootstrap-t as :func:`bootstrap`'s: the standard error inflated by
    ``s/(s-1)`` for ``s`` seeds, Student's t with ``s - 1`` degrees of freedom; one seed gives no
    interval. ``n_seeds``: the seeds, ``n_clips``: the units."""
    arr = np.asarray(arr, float)
    if arr.ndim != 2 or 0 in arr.shape:
        raise UserError(f"expected a non-empty (seeds, units) array, got shape {arr.shape}")
    if n_boot < 100:
        raise UserError(f"n_boot must be at least 100, got {n_boot}")
    if not np.isfinite(arr).any(axis=1).all():
        raise UserError("every seed needs at least one finite value")
    per_seed = np.nanmean(arr, axis=1)
    s, u = arr.shape
    effect = float(per_seed.mean())
    if s < 2:
        return Estimate(effect, float("nan"), float("nan"), s, u)
    means = per_seed[rng.integers(0, s, (n_boot, s))].mean(axis=1)
    se = float(np.std(means, ddof=1) * math.sqrt(s / (s - 1)))
    return Estimate(effect, se, float(s - 1), s, u)


# --------------------------------------------------------------------------- rank correlation

RHO_CAP = 0.999
"""``|rho|`` cap before Fisher's ``z = atanh(rho)`` (a perfect rank correlation has no finite z)."""


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``a`` and ``b`` ``(..., n)`` (average ranks along the last
    axis, then Pearson's r of the ranks); NaN where a row is constant."""
    ra, rb = sps.rankdata(a, axis=-1), sps.rankdata(b, axis=-1)
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1.0), np.nan)

@dataclass(frozen=True)
class Correlation:
    """Spearman's ``rho`` over ``n`` points with a bootstrap interval ``(lo, hi)`` (``nan`` when
    ``n`` is below the minimum)."""

    rho: float
    lo: float
    hi: float
    n: int


def spearman_interval(x: Sequence[float], y: Sequence[float], *, rng: np.random.Generator, n_boot: int,
                      level: float = 0.95, min_n: int = 5) -> Correlation:
    """Spearman's rho of paired ``x, y`` and a bootstrap-t interval on Fisher's z scale.

    Pairs are resampled with replacement; the standard error of ``atanh(rho)`` is the bootstrap
    one (replicates with a constant variable dropped, ``|rho|`` capped at 0.999), at least the
    Fieller-Hartley-Pearson ``sqrt(1.06 / (n - 3))``, and the quantile is Student's t with
    ``n - 3`` degrees of freedom, so a handful of points gives a wide interval, never a
    degenerate one. Below ``min_n`` points (at least 4) there is no interval.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 3:
        raise UserError(f"need at least 3 points for a rank correlation, got {n}")
    rho = float(sps.spearmanr(x, y)[0])
    if n < max(4, min_n) or not math.isfinite(rho):
        return Correlation(rho, float("nan"), float("nan"), n)
    idx = rng.integers(0, n, (n_boot, n))
    a = sps.rankdata(x[idx], axis=1)
    b = sps.rankdata(y[idx], axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    keep = den > 0                                   # a replicate with a constant variable has no rho
    r = (a * b).sum(axis=1)[keep] / den[keep]
    zs = np.arctanh(np.clip(r, -RHO_CAP, RHO_CAP))
    se = max(float(np.std(zs, ddof=1)) if zs.size > 1 else 0.0, math.sqrt(1.06 / (n - 3)))
    z = math.atanh(max(-RHO_CAP, min(RHO_CAP, rho)))
    q = float(sps.t.ppf(0.5 + level / 2, n - 3))
    return Correlation(rho, math.tanh(z - q * se), math.tanh(z + q * se), n)
