"""The asymmetry question: does a measure that *assesses* quality well also *optimize* well?

- :func:`assessment_accuracy`: SRCC / PLCC / KRCC of a measure's scores against an IQA set's
  opinion labels (FR measures compare each image with its pristine reference).
- :func:`asymmetry_table`: one row per measure -- its assessment accuracy and its mean relative
  gain when used as a loss (from :func:`nriqa.analysis.relative_gain`).
- :func:`asymmetry_scatter`: the two against each other, with Spearman's rho and its p-value.

An IQA set is any object with ``arrays() -> (images (N,3,H,W), refs (N,3,H,W) | None, labels (N,))``,
images in [0, 1] and labels *higher = better quality* (MOS; negate DMOS first), or an
:class:`nriqa.data.iqa_sets.IQASet` (adapted by :func:`iqa_arrays`: scores sign-corrected by
``higher_better``, references = the level-0 "pristine" image of the same source when present).
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from scipy import stats
from scipy.optimize import curve_fit

from nriqa import quality
from nriqa.viz import plots


def _logistic4(x, b1, b2, b3, b4):
    return (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4) - 1e-12)) + b2


def plcc_logistic(pred: np.ndarray, labels: np.ndarray) -> float:
    """PLCC after the usual 4-parameter logistic mapping of scores to labels (plain PLCC if the
    fit fails)."""
    pred, labels = np.asarray(pred, float), np.asarray(labels, float)
    p0 = [labels.max(), labels.min(), float(np.median(pred)), float(np.std(pred)) or 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(_logistic4, pred, labels, p0=p0, maxfev=20000)
        mapped = _logistic4(pred, *params)
        if np.all(np.isfinite(mapped)) and np.std(mapped) > 0:
            return float(stats.pearsonr(mapped, labels)[0])
    except (RuntimeError, ValueError):
        pass
    return float(stats.pearsonr(pred, labels)[0])


def correlations(scores: np.ndarray, labels: np.ndarray, *, higher_better: bool = True,
                 logistic: bool = True) -> dict[str, float]:
    """SRCC / PLCC / KRCC between ``scores`` and ``labels`` (higher = better); scores of a
    lower-is-better measure are negated first so that a good measure is always positive."""
    s = np.asarray(scores, float) * (1.0 if higher_better else -1.0)
    y = np.asarray(labels, float)
    if s.shape != y.shape or s.ndim != 1 or len(s) < 3:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must be 1-D, equal length, >= 3")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN/inf")
    return {"srcc": float(stats.spearmanr(s, y)[0]),
            "plcc": plcc_logistic(s, y) if logistic else float(stats.pearsonr(s, y)[0]),
            "krcc": float(stats.kendalltau(s, y)[0]),
            "n": int(len(s))}


def iqa_arrays(iqa_set: Any) -> tuple[Any, Any, np.ndarray]:
    """``(images, refs | None, labels)`` of an IQA set; labels higher = better.

    Uses ``iqa_set.arrays()`` when present.  Otherwise adapts an ``IQASet`` (``.image(i)``,
    ``.scores``, ``.higher_better``, ``.sources``, ``.levels``): images and references are lists
    of ``(3,H,W)`` tensors (sizes may differ); refs is None when a source has no pristine image.
    """
    if hasattr(iqa_set, "arrays"):
        images, refs, labels = iqa_set.arrays()
        return images, refs, np.asarray(torch.as_tensor(labels).float().cpu().numpy(), float).ravel()
    needed = ("image", "scores", "sources", "levels")
    if not all(hasattr(iqa_set, a) for a in needed):
        raise TypeError(f"iqa_set must have .arrays() -> (images, refs|None, labels) or be an IQASet "
                        f"({', '.join(needed)}); got {type(iqa_set).__name__}")
    n = len(iqa_set.scores)
    labels = np.asarray(iqa_set.scores, float) * (1.0 if getattr(iqa_set, "higher_better", True) else -1.0)
    images = [iqa_set.image(i) for i in range(n)]
    pristine = {iqa_set.sources[i]: i for i in range(n) if int(iqa_set.levels[i]) == 0}
    refs = None
    if all(s in pristine for s in iqa_set.sources):
        refs = [images[pristine[s]] for s in iqa_set.sources]
    return images, refs, labels


def _batches(items: Any, batch_size: int):
    """Yield ``(start, stacked batch)``; lists of differently sized images go one by one."""
    if isinstance(items, torch.Tensor):
        for i in range(0, len(items), batch_size):
            yield i, items[i:i + batch_size]
        return
    i = 0
    while i < len(items):
        j = i + 1
        while j < len(items) and j - i < batch_size and items[j].shape == items[i].shape:
            j += 1
        yield i, torch.stack([torch.as_tensor(t) for t in items[i:j]])
        i = j


@torch.no_grad()
def fit_min_size(x: torch.Tensor, card: Any) -> torch.Tensor:
    """``x`` (N,3,H,W), bilinearly enlarged (aspect kept) so its short side is the card's ``min_size``
    when it is smaller (MANIQA and HyperIQA need 224 px; a held-out set of 128 px crops would
    otherwise be refused); unchanged when it is large enough."""
    need = int(getattr(card, "min_size", 0) or 0)
    short = min(x.shape[-2:])
    if short >= need:
        return x
    size = [max(need, round(side * need / short)) for side in x.shape[-2:]]
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


def assessment_accuracy(measure: Any, iqa_set: Any, *, batch_size: int = 16, device: str = "cpu",
                        logistic: bool = True) -> dict[str, float]:
    """How well ``measure`` assesses quality on ``iqa_set``: ``{"srcc", "plcc", "krcc", "n"}``.

    ``measure``: a name (built with :func:`nriqa.quality.create`) or a measure object with a
    ``.card`` (``mode``, ``higher_better``) called as ``m(x)`` (NR) or ``m(x, ref)`` (FR) on
    ``(N,3,H,W)``.  Correlations use sign-corrected scores, so a good measure is positive.
    PLCC is after a 4-parameter logistic fit (``logistic=False``: raw Pearson). Images smaller than
    the measure's ``min_size`` are enlarged first (:func:`fit_min_size`).
    """
    if isinstance(measure, str):
        measure = quality.create(measure, device=device)
    card = getattr(measure, "card", None)
    if card is None:
        raise ValueError("measure must be a name or an object with a .card (mode, higher_better)")
    images, refs, labels = iqa_arrays(iqa_set)
    if len(images) != len(labels) or (refs is not None and len(refs) != len(labels)):
        raise ValueError(f"iqa_set has {len(images)} images, {len(labels)} labels and "
                         f"{'no' if refs is None else len(refs)} references; they must match")
    fr = card.mode == "FR"
    if fr and refs is None:
        raise ValueError(f"measure {card.name!r} is full-reference but iqa_set provides no references")
    scores = []
    for i, x in _batches(images, batch_size):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"iqa_set images must be (3,H,W) RGB, got a batch of shape {tuple(x.shape)}")
        x = fit_min_size(x.float().to(device), card)
        if fr:
            ref = torch.stack([torch.as_tensor(r) for r in refs[i:i + len(x)]]).float().to(device)
            s = measure(x, fit_min_size(ref, card))
        else:
            s = measure(x)
        scores.append(torch.as_tensor(s).float().flatten().cpu())
    out = correlations(torch.cat(scores).numpy(), labels, higher_better=card.higher_better, logistic=logistic)
    out["measure"] = card.name
    return out


def asymmetry_table(assess: Mapping[str, Mapping[str, float]], optimize: Mapping[str, float]) -> pd.DataFrame:
    """One row per measure present in both: ``measure, srcc, plcc, krcc, gain`` where ``gain`` is
    the mean relative gain (over the held-out panel) of the run that used the measure as a loss.
    Sorted by SRCC (best assessor first)."""
    common = [m for m in assess if m in optimize]
    if not common:
        raise ValueError(f"assess {list(assess)} and optimize {list(optimize)} share no measure")
    rows = [{"measure": m, **{k: assess[m].get(k, np.nan) for k in ("srcc", "plcc", "krcc")},
             "gain": float(optimize[m])} for m in common]
    return pd.DataFrame(rows).sort_values("srcc", ascending=False).reset_index(drop=True)


def asymmetry_correlation(table: pd.DataFrame, x: str = "srcc", y: str = "gain") -> tuple[float, float]:
    """Spearman's rho between assessment accuracy and optimization gain, and its p-value."""
    d = table[[x, y]].dropna()
    if len(d) < 3:
        raise ValueError(f"need at least 3 measures for a rank correlation, got {len(d)}")
    rho, p = stats.spearmanr(d[x], d[y])
    return float(rho), float(p)


def asymmetry_scatter(table: pd.DataFrame, *, x: str = "srcc", y: str = "gain", label: str = "measure",
                      title: str | None = None):
    """Assessment accuracy (``x``) vs mean relative gain as a loss (``y``), one labelled point per
    measure, with Spearman's rho and its p-value in the title (``fig.spearman``); drawn by
    :func:`nriqa.viz.plots.asymmetry_scatter`."""
    for c in (x, y, label):
        if c not in table.columns:
            raise ValueError(f"table lacks column {c!r}; it has {list(table.columns)}")
    d = table[[x, y, label]].dropna()
    if len(d) < 2:
        raise ValueError(f"need at least 2 measures with both {x} and {y}, got {len(d)}")
    rho, p = stats.spearmanr(d[x], d[y])
    return plots.asymmetry_scatter(d, x=x, y=y, label=label, title=title, spearman=(float(rho), float(p)))
