"""Relative gain over a baseline run, and the metric-hacking flag.

Relative gain of measure ``m`` for a run over the baseline::

    gain_m = sign_m * (m(run) - m(baseline)) / |m(baseline)|,   sign_m = +1 if higher is better else -1

so a positive gain is always an improvement (0.05 = 5 % better than the baseline).  Scores are
first averaged over frames within each ``level`` unit (default: per clip, which keeps the
ratio stable where per-frame baselines come close to 0), the gain is computed per unit against
the baseline's matching unit (same model, dataset, clip), then averaged over everything not
in ``by``.  :func:`nriqa.viz.plots.gain_heatmap` draws the gain matrix with the metric-hacking flags.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from nriqa import quality

_KEYS = {"frame": ["model", "dataset", "clip", "frame"], "clip": ["model", "dataset", "clip"],
         "dataset": ["model", "dataset"]}


def _directions(df: pd.DataFrame, measures: Sequence[str],
                higher_better: Mapping[str, bool] | None) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for m in measures:
        if higher_better is not None and m in higher_better:
            out[m] = bool(higher_better[m])
        elif "higher_better" in df.columns and df.loc[df["measure"] == m, "higher_better"].notna().any():
            out[m] = bool(df.loc[df["measure"] == m, "higher_better"].dropna().iloc[0])
        else:
            try:
                out[m] = bool(quality.card(m).higher_better)
            except ValueError as e:
                raise ValueError(f"direction of measure {m!r} unknown: pass higher_better={{{m!r}: ...}} "
                                 "or a 'higher_better' column") from e
    return out


def relative_gain(df: pd.DataFrame, baseline: str, by: Sequence[str] = ("measure",), *,
                  level: str = "clip", higher_better: Mapping[str, bool] | None = None,
                  eps: float = 1e-8) -> pd.DataFrame:
    """Mean relative gain of every run over ``baseline`` (see the module docstring for the formula).

    Args:
        df: tidy scores from :func:`nriqa.analysis.evaluate` (``run, model, dataset, clip,
            frame, measure, score``), the baseline run included.
        baseline: the ``run`` label of the baseline (Charbonnier-only) run.
        by: columns kept apart (besides ``run``), e.g. ``("measure",)`` or
            ``("measure", "model", "dataset")``; everything else is averaged.
        level: ``"frame"``, ``"clip"`` or ``"dataset"`` -- the unit at which the ratio is taken.
        higher_better: measure -> direction; default from a ``higher_better`` column or
            :func:`nriqa.quality.card`.
        eps: floor on ``|m(baseline)|``.

    Returns:
        DataFrame ``run, *by, gain`` (baseline excluded), one row per group.
    """
    need = {"run", "measure", "score"} | set(_KEYS.get(level, []))
    if level not in _KEYS:
        raise ValueError(f"level must be one of {list(_KEYS)}, got {level!r}")
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"df lacks columns {sorted(missing)}; expected the tidy evaluate() table")
    by = list(by)
    if "run" in by:
        by.remove("run")
    bad = [c for c in by if c not in df.columns]
    if bad:
        raise ValueError(f"by names columns {bad} that df does not have ({list(df.columns)})")
    if baseline not in set(df["run"]):
        raise ValueError(f"baseline run {baseline!r} not in df; runs: {sorted(df['run'].unique())}")
    keys = _KEYS[level] + ["measure"]
    finer = [c for c in by if c in ("clip", "frame") and c not in keys]
    if finer:
        raise ValueError(f"by={tuple(by)} keeps {finer} apart, which is finer than level={level!r}; "
                         "use level='frame' or 'clip'")
    unit = df.groupby(["run"] + keys, as_index=False, sort=False)["score"].mean()
    base = unit[unit["run"] == baseline].drop(columns="run").rename(columns={"score": "base"})
    others = unit[unit["run"] != baseline]
    merged = others.merge(base, on=keys, how="inner")
    if merged.empty:
        raise ValueError(f"no (model, dataset, clip, measure) unit is shared by the baseline {baseline!r} "
                         "and the other runs")
    dirs = _directions(df, merged["measure"].unique(), higher_better)
    sign = merged["measure"].map(lambda m: 1.0 if dirs[m] else -1.0)
    merged["gain"] = sign * (merged["score"] - merged["base"]) / np.maximum(merged["base"].abs(), eps)
    extra = [c for c in by if c not in merged.columns]
    if extra:  # columns constant within a unit (e.g. a 'loss' label): bring them along
        labels = df[["run"] + keys + extra].drop_duplicates(["run"] + keys)
        merged = merged.merge(labels, on=["run"] + keys, how="left")
    return merged.groupby(["run"] + by, as_index=False, sort=False)["gain"].mean()


def gain_matrix(gains: pd.DataFrame, *, row: str = "run", col: str = "measure", value: str = "gain",
                average: bool = True) -> pd.DataFrame:
    """Pivot ``gains`` into rows x measures (mean over anything else), plus an ``average`` column."""
    for c in (row, col, value):
        if c not in gains.columns:
            raise ValueError(f"gains lacks column {c!r}; it has {list(gains.columns)}")
    mat = gains.pivot_table(index=row, columns=col, values=value, aggfunc="mean", sort=False)
    if average:
        mat["average"] = mat.mean(axis=1)
    return mat


def held_out_average(matrix: pd.DataFrame, own: Mapping[str, str | Sequence[str]] | None) -> pd.Series:
    """Per row of ``matrix`` (rows x measures, e.g. :func:`gain_matrix` with ``average=False``) the
    mean over the measures that are not the row's own (``own``: row -> the measure(s) it optimized;
    a row with none in ``matrix`` averages every measure). The held-out gain of
    :func:`metric_hacking` for a row it flags; a measure judging the run it drove is not a fair judge."""
    out = {}
    for r in matrix.index:
        ms = (own or {}).get(r, [])
        ms = [ms] if isinstance(ms, str) else list(ms)
        held = [c for c in matrix.columns if c not in ms]
        out[r] = float(matrix.loc[r, held].mean()) if held else float("nan")
    return pd.Series(out, dtype=float)


def metric_hacking(gains: pd.DataFrame, own: Mapping[str, str | Sequence[str]], *,
                   threshold: float = 0.1, row: str = "run", col: str = "measure",
                   value: str = "gain") -> pd.DataFrame:
    """Flag runs whose own loss metric gains much more than the held-out measures.

    ``own`` maps a run (row label) to the measure(s) it optimized.  For each such run:
    ``excess = mean gain on own measures - mean gain on all other (held-out) measures``;
    ``flagged = excess > threshold`` (threshold in relative-gain units, 0.1 = 10 points).

    Returns DataFrame ``run, own, own_gain, heldout_gain, excess, flagged``.
    """
    mat = gain_matrix(gains, row=row, col=col, value=value, average=False)
    out = []
    for r, measures in own.items():
        ms = [measures] if isinstance(measures, str) else list(measures)
        ms = [m for m in ms if m in mat.columns]
        if r not in mat.index or not ms:
            continue
        held = [c for c in mat.columns if c not in ms]
        own_g = float(mat.loc[r, ms].mean())
        held_g = float(mat.loc[r, held].mean()) if held else float("nan")
        excess = own_g - held_g
        out.append({"run": r, "own": ",".join(ms), "own_gain": own_g, "heldout_gain": held_g,
                    "excess": excess, "flagged": bool(excess > threshold)})
    return pd.DataFrame(out, columns=["run", "own", "own_gain", "heldout_gain", "excess", "flagged"])
