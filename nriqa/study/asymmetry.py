"""Notebook 06: does a measure that assesses quality well also optimize well?

*Assessment accuracy*: SRCC / PLCC / KRCC on the held-out part of the embedded distortion set
(labels: FR pseudo-score and level ranks, not opinion scores). *Optimization value*: the mean
relative gain (positive = better) of the *other* panel measures when the measure is added to
Charbonnier. A rank correlation near zero or negative between the two is the asymmetry.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from nriqa import quality
from nriqa.analysis import assessment_accuracy, asymmetry_correlation
from nriqa.iqa import distortion_set

from .evaluation import evaluate_runs, mean_gain
from .runs import (ensure_finetune, ensure_gan_run, fidelity_runs, fidelity_terms, finetune_grid, finetune_runs,
                   gan_overrides, gan_terms, middle_gan_weight, slug)
from .text import pct, tied


def held_out_iqa_set(cfg: Mapping[str, Any]):
    """The held-out part of the embedded distortion set (the one the kit models were tested on),
    cut to the first ``asymmetry.max_sources`` sources (every distortion of each, so SRCC stays
    within-content)."""
    iqa = cfg.get("iqa", {})
    ds = distortion_set("test", crop=int(iqa.get("crop", 96)), max_sources=iqa.get("max_sources"),
                        progress=False)
    k = cfg.get("asymmetry", {}).get("max_sources")
    if not k:
        return ds
    keep = set(sorted(set(ds.sources))[: int(k)])
    return ds.subset(np.flatnonzero([s in keep for s in ds.sources]))


def assessment_accuracies(cfg: Mapping[str, Any], measures: list[str] | None = None) -> dict[str, dict]:
    """Measure -> SRCC/PLCC/KRCC on :func:`held_out_iqa_set` (default measures:
    ``asymmetry.measures``); measures whose weights are not on disk are left out."""
    held_out = held_out_iqa_set(cfg)
    out = {}
    for name in measures or cfg["asymmetry"]["measures"]:
        if not quality.card(name).present:
            continue
        out[name] = assessment_accuracy(name, held_out)
    return out


def optimization_values(cfg: Mapping[str, Any]) -> dict[str, float]:
    """Measure -> mean relative gain of the *other* panel measures when it is added to Charbonnier
    (notebook 02's single-term fine-tunes of ``finetune.model`` among ``asymmetry.measures``)."""
    model = cfg["finetune"]["model"]
    singles = {n: t for n, t in finetune_grid(cfg).items() if len(t) == 1 and n in cfg["asymmetry"]["measures"]}
    runs = finetune_runs(cfg, model, singles)
    scores = evaluate_runs(cfg, runs, model=model)
    gains = mean_gain(scores, exclude={n: [n] for n in singles})
    return {n: gains[n] for n in singles}


def describe_asymmetry(table: pd.DataFrame) -> str:
    """The best assessor, the best objective, and their Spearman rank correlation (when there are
    at least three measures). ``table``: :func:`nriqa.analysis.asymmetry_table`."""
    t = table.set_index("measure")
    best_a, best_o = t["srcc"].idxmax(), t["gain"].idxmax()
    assessor = (f"all assessors level (SRCC {t['srcc'].mean():.3f})" if tied(t["srcc"], 5e-4)
                else f"Best assessor: {best_a} (SRCC {t.loc[best_a, 'srcc']:.3f})")
    objective = (f"all objectives level (held-out panel gain {pct(t['gain'].mean())})" if tied(t["gain"])
                 else f"best objective: {best_o} (held-out panel gain {pct(t.loc[best_o, 'gain'])})")
    text = f"{assessor[0].upper()}{assessor[1:]}; {objective}."
    try:
        rho, p = asymmetry_correlation(table)
    except ValueError as err:  # fewer than 3 measures (e.g. the smoke profile)
        return f"{text} No rank correlation: {err}."
    return (f"Spearman rank correlation between assessment SRCC and optimization gain: {rho:+.3f} "
            f"(p = {p:.3f}, n = {len(table)}). {text}")


def seed_noise(cfg: Mapping[str, Any], model: str) -> float:
    """|mean panel gain| of the reseeded fidelity-only fine-tune over the fidelity-only one."""
    runs = fidelity_runs(cfg, model)
    return abs(mean_gain(evaluate_runs(cfg, runs, model=model), baseline="fidelity")["fidelity (reseeded)"])


def adversarial_fidelity(cfg: Mapping[str, Any], model: str, assess: Mapping[str, Mapping[str, float]], *,
                         progress: bool = True) -> pd.DataFrame:
    """Under adversarial training, is a good assessor a good fidelity term? For each measure of
    ``asymmetry.adversarial_fidelity`` (``{name: weight}``): fine-tune Charbonnier + measure + GAN
    (``asymmetry.discriminator`` at the middle GAN weight, GAN-run steps) and compare with
    Charbonnier + GAN on the panel without that measure.

    Returns rows ``measure, srcc`` (from ``assess``), ``gain_vs_charbonnier_gan``."""
    disc, w = cfg["asymmetry"]["discriminator"], middle_gan_weight(cfg)
    runs = {"charbonnier + GAN": ensure_gan_run(cfg, model, disc, w, progress=progress)}
    measures = {k: v for k, v in cfg["asymmetry"]["adversarial_fidelity"].items() if v is not None}
    for name, weight in measures.items():
        terms = gan_terms(cfg, disc, w, {**fidelity_terms(cfg), name: weight})
        runs[name] = ensure_finetune(cfg, model, terms, name=f"gan-{model}-{disc}-w{w:g}+{slug({name: weight})}",
                                     train_overrides=gan_overrides(cfg), progress=progress)
    scores = evaluate_runs(cfg, runs, model=model)
    rows = [{"measure": name, "srcc": assess.get(name, {}).get("srcc", float("nan")),
             "gain_vs_charbonnier_gan": mean_gain(scores[scores["measure"] != name], baseline="charbonnier + GAN")[name]}
            for name in measures]
    return pd.DataFrame(rows)


def fidelity_family(cfg: Mapping[str, Any]) -> pd.DataFrame:
    """DISTS-style measures over different backbones (``dists-*``): assessment SRCC/PLCC on the
    held-out distortion set where the backbone is on disk; the missing weight files otherwise."""
    rows = []
    for name in [n for n in quality.names() if n.startswith("dists-")]:
        card = quality.card(name)
        if card.present:
            acc = assessment_accuracies(cfg, [name])[name]
            rows.append({"measure": name, "srcc": acc["srcc"], "plcc": acc["plcc"], "missing": ""})
        else:
            missing = ", ".join(w.filename for w in card.weights)
            rows.append({"measure": name, "srcc": float("nan"), "plcc": float("nan"), "missing": missing})
    return pd.DataFrame(rows).set_index("measure")
