"""The asymmetry question: does a measure that *assesses* quality well also *optimize* well?

- :func:`assessment_accuracy`: how well a measure assesses an IQA set. On a synthetic set with
  distortion levels (``label == "pseudo"``, the embedded set) the primary label is the *level
  order* within each (source, distortion kind) -- known for certain (:func:`level_order_srcc`);
  the FR pseudo-score is reported beside it with the assessed measure's own term left out
  (:func:`pseudo_labels`). On a human-rated set the label is the (D)MOS.
- :func:`asymmetry_table`: one row per measure -- its assessment accuracy and its mean relative
  gain when used as a loss (from :func:`nriqa.analysis.relative_gain`).
- :func:`nriqa.viz.plots.asymmetry_scatter` draws the two against each other, with Spearman's rho.

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
from nriqa.data.iqa_sets import PSEUDO_TERMS, pseudo_terms

from .stats import row_spearman


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
    images = _Lazy(iqa_set.image, n)
    refs = None
    if getattr(iqa_set, "refs", None) is not None:   # a published FR set: reference files
        from nriqa.data.iqa_sets import read_image
        paths = iqa_set.refs
        refs = _Lazy(lambda i: read_image(paths[i]), n)
    else:
        pristine = {iqa_set.sources[i]: i for i in range(n) if int(iqa_set.levels[i]) == 0}
        if all(s in pristine for s in iqa_set.sources):
            refs = _Lazy(lambda i: iqa_set.image(pristine[iqa_set.sources[i]]), n)
    return images, refs, labels


class _Lazy:
    """A read-on-access sequence of ``(3,H,W)`` tensors (a published set does not fit in memory)."""

    def __init__(self, get, n: int):
        self.get, self.n = get, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.get(j) for j in range(*i.indices(self.n))]
        return self.get(int(i))


def _batches(items: Any, batch_size: int):
    """Yield ``(start, stacked batch)``; lists of differently sized images go one by one."""
    if isinstance(items, torch.Tensor):
        for i in range(0, len(items), batch_size):
            yield i, items[i:i + batch_size]
        return
    i, batch = 0, []
    for k in range(len(items)):
        t = torch.as_tensor(items[k])
        if batch and (len(batch) == batch_size or t.shape != batch[0].shape):
            yield i, torch.stack(batch)
            i, batch = k, []
        batch.append(t)
    if batch:
        yield i, torch.stack(batch)


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


@torch.no_grad()
def measure_scores(measure: Any, iqa_set: Any, *, batch_size: int = 16, device: str = "cpu"):
    """``(raw scores (N,), card)`` of ``measure`` (a name or an object with a ``.card``) on every
    image of ``iqa_set``; FR measures compare with the set's references. Images smaller than the
    measure's ``min_size`` are enlarged first (:func:`fit_min_size`)."""
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
    return torch.cat(scores).numpy().astype(float), card


def level_order_srcc(scores: np.ndarray, sources, kinds, levels, *, higher_better: bool = True) -> dict:
    """Agreement with the *certain* label of a synthetic set: within each (source, distortion kind)
    the higher level is the worse image. Mean over groups of Spearman's rho (and Kendall's tau-b)
    between the sign-corrected scores and ``-level`` (levels >= 1, groups with >= 2 levels); a
    group where the measure gives one score to every level counts as 0 (it orders nothing).
    Returns ``{"srcc", "krcc", "groups"}``; 1 = every level order right, -1 = every one reversed.
    Groups of one size are scored together as arrays (scipy's ``spearmanr`` / ``kendalltau`` per
    group give the same numbers, ``tests/test_analysis_asymmetry.py``)."""
    s = np.asarray(scores, float) * (1.0 if higher_better else -1.0)
    levels = np.asarray(levels)
    if not (len(s) == len(sources) == len(kinds) == len(levels)):
        raise ValueError(f"scores ({len(s)}), sources, kinds and levels ({len(levels)}) must have one entry per image")
    groups: dict[tuple, list[int]] = {}
    for i, (src, kind, lv) in enumerate(zip(sources, kinds, levels)):
        if int(lv) >= 1:
            groups.setdefault((src, kind), []).append(i)
    by_size: dict[int, list[list[int]]] = {}
    for idx in groups.values():
        if len(set(int(levels[i]) for i in idx)) >= 2:
            by_size.setdefault(len(idx), []).append(idx)
    if not by_size:
        raise ValueError("no (source, kind) group with two distortion levels >= 1 to order")
    rhos, taus = [], []
    for idx in by_size.values():
        x, y = s[np.array(idx)], -levels[np.array(idx)].astype(float)     # (groups, images per group)
        if not np.all(np.isfinite(x)):
            raise ValueError("scores contain NaN/inf")
        flat = np.ptp(x, axis=1) == 0
        rho = row_spearman(x, y)
        i, j = np.triu_indices(x.shape[1], 1)                              # tau-b over the image pairs
        dx, dy = np.sign(x[:, j] - x[:, i]), np.sign(y[:, j] - y[:, i])
        pairs = len(i)
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = (dx * dy).sum(axis=1) / np.sqrt((pairs - (dx == 0).sum(axis=1)) * (pairs - (dy == 0).sum(axis=1)))
        rhos.append(np.where(flat, 0.0, np.clip(rho, -1.0, 1.0)))
        taus.append(np.where(flat, 0.0, np.clip(tau, -1.0, 1.0)))
    rho_all, tau_all = np.concatenate(rhos), np.concatenate(taus)
    return {"srcc": float(np.mean(rho_all)), "krcc": float(np.mean(tau_all)), "groups": len(rho_all)}


def fr_pseudo_terms(iqa_set: Any) -> dict[str, np.ndarray]:
    """Per image, each term of the FR pseudo-score (:data:`nriqa.data.iqa_sets.PSEUDO_TERMS`) against
    its pristine reference, in [0, 1], higher = better."""
    images, refs, _ = iqa_arrays(iqa_set)
    if refs is None:
        raise ValueError("the FR pseudo-score needs references; iqa_set provides none")
    rows = [pseudo_terms(images[i], refs[i]) for i in range(len(images))]
    return {t: np.array([r[t] for r in rows]) for t in PSEUDO_TERMS}


def pseudo_labels(terms: Mapping[str, np.ndarray], leave_out: str | None = None) -> tuple[np.ndarray, list[str]]:
    """The FR pseudo-score (mean of ``terms``) without the term named ``leave_out`` (the measure being
    assessed: PSNR, SSIM and GMSD are themselves terms of the ensemble); returns it and the terms used."""
    used = [t for t in terms if t != leave_out]
    if not used:
        raise ValueError(f"leaving out {leave_out!r} leaves no pseudo-score term")
    return np.mean([terms[t] for t in used], axis=0), used


def assessment_accuracy(measure: Any, iqa_set: Any, *, batch_size: int = 16, device: str = "cpu",
                        logistic: bool = True, pseudo: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """How well ``measure`` assesses quality on ``iqa_set``.

    ``measure``: a name (built with :func:`nriqa.quality.create`) or a measure object with a
    ``.card`` (``mode``, ``higher_better``) called as ``m(x)`` (NR) or ``m(x, ref)`` (FR) on
    ``(N,3,H,W)``. Correlations use sign-corrected scores, so a good measure is positive.

    - a set with distortion levels and pseudo-labels (``label == "pseudo"``): ``label = "level order"``,
      ``srcc`` / ``krcc`` from :func:`level_order_srcc` (``plcc`` NaN: an order has no scale), and
      ``srcc_fr_pseudo`` against the FR pseudo-score with the measure's own term left out
      (``fr_pseudo_terms`` names those used; ``pseudo``: precomputed :func:`fr_pseudo_terms`);
    - otherwise ``label`` is the set's (``"mos"`` for ``.arrays()`` sets): SRCC / PLCC (after a
      4-parameter logistic fit; ``logistic=False``: raw Pearson) / KRCC against it.
    Always ``measure``, ``mode`` ("FR" | "NR") and ``n``.
    """
    scores, card = measure_scores(measure, iqa_set, batch_size=batch_size, device=device)
    base = {"measure": card.name, "mode": card.mode}
    if getattr(iqa_set, "label", None) == "pseudo" and hasattr(iqa_set, "levels"):
        lo = level_order_srcc(scores, iqa_set.sources, iqa_set.kinds, iqa_set.levels,
                              higher_better=card.higher_better)
        terms = pseudo if pseudo is not None else fr_pseudo_terms(iqa_set)
        if any(len(v) != len(scores) for v in terms.values()):
            raise ValueError(f"pseudo terms must have one value per image ({len(scores)})")
        labels, used = pseudo_labels(terms, leave_out=card.name)
        keep = np.asarray(iqa_set.levels) >= 1
        fr = correlations(scores[keep], labels[keep], higher_better=card.higher_better, logistic=False)
        return {**base, "label": "level order", "srcc": lo["srcc"], "plcc": float("nan"), "krcc": lo["krcc"],
                "groups": lo["groups"], "srcc_fr_pseudo": fr["srcc"], "fr_pseudo_terms": "+".join(used),
                "n": int(keep.sum())}
    _, _, labels = iqa_arrays(iqa_set)
    out = correlations(scores, labels, higher_better=card.higher_better, logistic=logistic)
    return {**base, "label": str(getattr(iqa_set, "label", "mos")), **out}


def assessment_frame(assess: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The assessment results as a table, FR and NR measures apart (``mode`` first, best first within)."""
    cols = ["mode", "label", "srcc", "krcc", "plcc", "srcc_fr_pseudo", "fr_pseudo_terms", "n"]
    t = pd.DataFrame([{**{c: a.get(c, np.nan) for c in cols}, "measure": m} for m, a in assess.items()],
                     columns=["measure", *cols])
    extra = sorted({k for a in assess.values() for k in a if k.startswith("srcc_") and k not in cols})
    for k in extra:   # per-dataset SRCC of the human-rated sets
        t[k] = [assess[m].get(k, np.nan) for m in t["measure"]]
    if t["plcc"].isna().all():   # the level order has no scale, so no PLCC
        t = t.drop(columns="plcc")
    return t.sort_values(["mode", "srcc"], ascending=[True, False]).set_index("measure")


def asymmetry_table(assess: Mapping[str, Mapping[str, float]], optimize: Mapping[str, float]) -> pd.DataFrame:
    """One row per measure present in both: ``measure, mode, label, srcc, plcc, krcc, gain`` (``label``:
    what ``srcc`` is measured against, e.g. "level order"; ``mode``: FR / NR; ``dataset``: the
    human-rated set of a published SRCC, when ``assess`` names one) where ``gain`` is the measure's
    optimization value (:func:`nriqa.study.assess_vs_optimize.optimization_values`).
    Sorted by SRCC (best assessor first)."""
    common = [m for m in assess if m in optimize]
    if not common:
        raise ValueError(f"assess {list(assess)} and optimize {list(optimize)} share no measure")
    rows = [{"measure": m, "mode": assess[m].get("mode", ""), "label": assess[m].get("label", ""),
             **{k: assess[m].get(k, np.nan) for k in ("srcc", "plcc", "krcc")},
             **({"dataset": assess[m]["dataset"]} if "dataset" in assess[m] else {}),
             "gain": float(optimize[m])} for m in common]
    return pd.DataFrame(rows).sort_values("srcc", ascending=False).reset_index(drop=True)


def asymmetry_correlation(table: pd.DataFrame, x: str = "srcc", y: str = "gain") -> tuple[float, float]:
    """Spearman's rho between assessment accuracy and optimization gain, and its p-value."""
    d = table[[x, y]].dropna()
    if len(d) < 3:
        raise ValueError(f"need at least 3 measures for a rank correlation, got {len(d)}")
    rho, p = stats.spearmanr(d[x], d[y])
    return float(rho), float(p)
