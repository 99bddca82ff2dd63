"""Notebook 06: does a measure that assesses quality well also optimize well?

*Assessment accuracy*: on the demo profiles, the held-out part of the embedded distortion set
with the certain label -- the order of distortion levels within each source and kind (level-order
SRCC) -- and, beside it, the FR pseudo-score with the assessed measure's own term left out. With
``asymmetry.iqa_sets`` (the paper profile): SRCC against human opinion scores, FR measures on the
``fr`` sets, NR measures on the ``nr`` sets (:func:`human_rated_sets`). *Optimization value*: the mean
relative gain (positive = better) of the *other* panel measures when the measure is added to
Charbonnier. A rank correlation near zero or negative between the two is the asymmetry.
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nriqa import quality
from nriqa.analysis import assessment_accuracy, asymmetry_correlation, claims
from nriqa.analysis.asymmetry import fr_pseudo_terms
from nriqa.analysis.rankboot import cube_means, gain_cube, seed_means
from nriqa.data.iqa_sets import DATASETS, load_iqa_dataset
from nriqa.errors import ConfigError
from nriqa.iqa import distortion_set

from . import verdicts as vt
from .judging import evaluate_runs, mean_gain
from .runs import (
    arm_jobs,
    ensure_baseline,
    fidelity_terms,
    finetune_grid,
    finetune_runs,
    gan_arm_jobs,
    gan_name,
    gan_overrides,
    gan_terms,
    middle_gan_weight,
    train_arms,
)
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


def human_rated_sets(cfg: Mapping[str, Any]) -> dict[str, list]:
    """``asymmetry.iqa_sets`` loaded: ``{"fr": [IQASet, ...], "nr": [...]}``, or ``{}`` when the
    profile names none (then the embedded set is used). Each entry is ``{name, root, split}``
    (``split`` default "all"); a name the loaders do not know raises ConfigError."""
    spec = (cfg.get("asymmetry") or {}).get("iqa_sets")
    if not spec:
        return {}
    if not isinstance(spec, Mapping) or set(spec) - {"fr", "nr"}:
        raise ConfigError(f"asymmetry.iqa_sets must be {{fr: [...], nr: [...]}} of {{name, root}}, got {spec!r}")
    out: dict[str, list] = {}
    for mode, entries in spec.items():
        sets = []
        for e in entries or []:
            if not isinstance(e, Mapping) or "name" not in e or "root" not in e:
                raise ConfigError(f"asymmetry.iqa_sets.{mode}: each entry needs name and root, got {e!r}")
            if str(e["name"]).lower().replace("-", "").replace("_", "") not in DATASETS:
                raise ConfigError(f"asymmetry.iqa_sets.{mode}: unknown IQA dataset {e['name']!r}; "
                                  f"loaders: {DATASETS}")
            sets.append(load_iqa_dataset(e["name"], e["root"], e.get("split", "all")))
        out[mode] = sets
    return out


def _human_rated_accuracy(name: str, sets: Mapping[str, list]) -> dict | None:
    """SRCC/PLCC/KRCC of measure ``name`` on each human-rated set of its mode, and their mean
    (``srcc_<set>`` per set); None when the profile names no set of that mode."""
    mode = quality.card(name).mode.lower()
    per = [assessment_accuracy(name, ds) for ds in sets.get(mode, [])]
    if not per:
        return None
    out = {"measure": name, "mode": mode.upper(), "label": "/".join(sorted({p["label"] for p in per})),
           **{k: float(np.mean([p[k] for p in per])) for k in ("srcc", "plcc", "krcc")},
           "n": int(sum(p["n"] for p in per))}
    out.update({f"srcc_{ds.name}": p["srcc"] for ds, p in zip(sets[mode], per)})
    return out


def assessment_accuracies(cfg: Mapping[str, Any], measures: list[str] | None = None) -> dict[str, dict]:
    """Measure -> assessment accuracy (:func:`nriqa.analysis.assessment_accuracy`; default measures:
    ``asymmetry.measures``); measures whose weights are not on disk are left out.

    With ``asymmetry.iqa_sets`` the label is human opinion (mean over the sets of the measure's
    mode, FR or NR); otherwise :func:`held_out_iqa_set` with the level order as primary label."""
    names = [n for n in (measures or cfg["asymmetry"]["measures"]) if quality.card(n).present]
    sets = human_rated_sets(cfg)
    out = {}
    if sets:
        for name in names:
            acc = _human_rated_accuracy(name, sets)
            if acc is not None:
                out[name] = acc
        return out
    held_out = held_out_iqa_set(cfg)
    pseudo = fr_pseudo_terms(held_out)   # computed once, a measure's own term left out per measure
    for name in names:
        out[name] = assessment_accuracy(name, held_out, pseudo=pseudo)
    return out


def optimization_gains(cfg: Mapping[str, Any]) -> pd.DataFrame:
    """``run, seed, model, dataset, clip, gain``: per measure (``run``) of ``asymmetry.measures``
    that notebook 02 fine-tuned alone with Charbonnier (``finetune.model``), the relative gain
    (positive = better) over the baseline of the *other* panel measures, per seed and test clip
    (:func:`nriqa.analysis.stats.paired_gains`)."""
    model = cfg["finetune"]["model"]
    singles = {n: t for n, t in finetune_grid(cfg).items() if len(t) == 1 and n in cfg["asymmetry"]["measures"]}
    runs = finetune_runs(cfg, model, singles)
    scores = evaluate_runs(cfg, runs, model=model)
    panel = sorted(set(scores["measure"]))
    parts = []
    for n in singles:
        g = vt.gains(scores, [m for m in panel if m != n])
        if g is not None:
            parts.append(g[g["run"] == n])
    cols = ["run", "seed", "model", "dataset", "clip", "gain"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def optimization_values(cfg: Mapping[str, Any], gains: pd.DataFrame | None = None) -> dict[str, float]:
    """Measure -> its optimization value: the mean over seeds of the mean over test clips of
    :func:`optimization_gains` (``gains``: that table, computed when None), the number the
    asymmetry verdict correlates."""
    gains = optimization_gains(cfg) if gains is None else gains
    names = list(dict.fromkeys(gains["run"]))
    if not names:
        return {}
    return dict(zip(names, (float(v) for v in cube_means(gain_cube(gains, names)))))


def seed_range(gains: pd.DataFrame) -> pd.DataFrame:
    """``measure, gain_seed_min, gain_seed_max``: the lowest and highest of a measure's per-seed
    gains (each the mean over test clips) in :func:`optimization_gains` -- the bar the scatter
    draws through each point."""
    names = list(dict.fromkeys(gains["run"]))
    per_seed = seed_means(gain_cube(gains, names)) if names else np.empty((0, 1))
    with warnings.catch_warnings():   # a measure with fewer seeds has all-NaN padding entries
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanmin(per_seed, axis=1), np.nanmax(per_seed, axis=1)
    return pd.DataFrame({"measure": names, "gain_seed_min": lo, "gain_seed_max": hi})


def describe_asymmetry(table: pd.DataFrame) -> str:
    """The best assessor, the best objective, and their Spearman rank correlation (when there are
    at least three measures). ``table``: :func:`nriqa.analysis.asymmetry_table`."""
    t = table.set_index("measure")
    best_a, best_o = t["srcc"].idxmax(), t["gain"].idxmax()
    label = f" vs {t.loc[best_a, 'label']}" if "label" in t.columns else ""
    assessor = (f"all assessors level (SRCC{label} {t['srcc'].mean():.3f})" if tied(t["srcc"], 5e-4)
                else f"Best assessor: {best_a} (SRCC{label} {t.loc[best_a, 'srcc']:.3f})")
    objective = (f"all objectives level (held-out panel gain {pct(t['gain'].mean())})" if tied(t["gain"])
                 else f"best objective: {best_o} (held-out panel gain {pct(t.loc[best_o, 'gain'])})")
    text = f"{assessor[0].upper()}{assessor[1:]}; {objective}."
    try:
        rho, p = asymmetry_correlation(table)
    except ValueError as err:  # fewer than 3 measures (e.g. the smoke profile)
        return f"{text} No rank correlation: {err}."
    return (f"Spearman rank correlation between assessment SRCC and optimization gain: {rho:+.3f} "
            f"(p = {p:.3f}, n = {len(table)}). {text}")


def adversarial_fidelity_runs(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> dict:
    """``{"baseline": run, "charbonnier + GAN": {seed: run}, measure: {seed: run}}``: Charbonnier +
    GAN (``asymmetry.discriminator`` at the middle GAN weight, GAN-run steps) and, for each measure
    of ``asymmetry.adversarial_fidelity`` (``{name: weight}``, null drops one), the same plus that
    measure as a fidelity term; every arm once per seed."""
    disc, w = cfg["asymmetry"]["discriminator"], middle_gan_weight(cfg)
    base = ensure_baseline(cfg, model, progress=progress)
    arms = {"charbonnier + GAN": gan_arm_jobs(cfg, model, disc, w, baseline=base)}
    measures = {k: v for k, v in cfg["asymmetry"]["adversarial_fidelity"].items() if v is not None}
    for name, weight in measures.items():
        terms = gan_terms(cfg, disc, w, {**fidelity_terms(cfg), name: weight})
        arms[name] = arm_jobs(cfg, model, terms, baseline=base, name=gan_name(model, disc, w, {name: weight}),
                              train_overrides=gan_overrides(cfg))
    return {"baseline": base, **train_arms(cfg, arms, progress=progress)}


def adversarial_fidelity_table(cfg: Mapping[str, Any], model: str, assess: Mapping[str, Mapping[str, float]], *,
                         progress: bool = True) -> pd.DataFrame:
    """Under adversarial training, is a good assessor a good fidelity term? Each measure's arm of
    :func:`adversarial_fidelity_runs` against Charbonnier + GAN on the panel without that measure
    (scores averaged over seeds). Returns rows ``measure, srcc`` (from ``assess``),
    ``gain_vs_charbonnier_gan``."""
    runs = adversarial_fidelity_runs(cfg, model, progress=progress)
    scores = evaluate_runs(cfg, runs, model=model)
    names = [n for n in runs if n not in ("baseline", "charbonnier + GAN")]
    rows = [{"measure": name, "srcc": assess.get(name, {}).get("srcc", float("nan")),
             "gain_vs_charbonnier_gan": mean_gain(scores[scores["measure"] != name],
                                                  baseline="charbonnier + GAN")[name]}
            for name in names]
    return pd.DataFrame(rows, columns=["measure", "srcc", "gain_vs_charbonnier_gan"])


def adversarial_fidelity_verdicts(cfg: Mapping[str, Any], model: str, assess: Mapping[str, Mapping[str, float]], *,
                                  progress: bool = True) -> list[claims.Verdict]:
    """'Good assessors as adversarial fidelity terms': per measure, the paired difference (seed
    index, clip) of its arm's and Charbonnier + GAN's held-out panel gains over the baseline (the
    measure itself left out), judged by :func:`nriqa.analysis.claims.adversarial_fidelity`."""
    runs = adversarial_fidelity_runs(cfg, model, progress=progress)
    scores = evaluate_runs(cfg, runs, model=model)
    panel = sorted(set(scores["measure"]))
    names = [n for n in runs if n not in ("baseline", "charbonnier + GAN")]
    tables = {n: vt.gains(scores, [m for m in panel if m != n]) for n in names}
    srcc = {n: assess.get(n, {}).get("srcc", float("nan")) for n in names}
    return claims.adversarial_fidelity({n: g for n, g in tables.items() if g is not None}, srcc,
                                       "charbonnier + GAN", claims.settings(cfg))


def asymmetry_verdict(cfg: Mapping[str, Any], table: pd.DataFrame, gains: pd.DataFrame | None = None) -> claims.Verdict:
    """The asymmetry claim: Spearman rho between the table's ``srcc`` and the measures' gains,
    never 'agrees' by default. With ``gains`` (:func:`optimization_gains`) the interval resamples
    measures, seeds and clips (:func:`nriqa.analysis.claims.asymmetry_over_seeds`); without, it
    resamples the table's measures only (:func:`nriqa.analysis.claims.asymmetry`), blind to a
    seed or clip that favours some measures."""
    s = claims.settings(cfg)
    if gains is None:
        return claims.asymmetry(table, s)
    return claims.asymmetry_over_seeds(dict(zip(table["measure"], table["srcc"])), gains, s)


def fidelity_family(cfg: Mapping[str, Any]) -> pd.DataFrame:
    """DISTS-style measures over different backbones (``dists-*``): assessment SRCC/KRCC (``label``) on the
    held-out distortion set where the backbone is on disk; the missing weight files otherwise."""
    rows = []
    for name in [n for n in quality.names() if n.startswith("dists-")]:
        card = quality.card(name)
        if card.present:
            acc = assessment_accuracies(cfg, [name])[name]
            rows.append({"measure": name, "label": acc["label"], "srcc": acc["srcc"], "krcc": acc["krcc"],
                         "missing": ""})
        else:
            missing = ", ".join(w.filename for w in card.weights)
            rows.append({"measure": name, "label": "", "srcc": float("nan"), "krcc": float("nan"),
                         "missing": missing})
    return pd.DataFrame(rows).set_index("measure")


def assessment_label(table: pd.DataFrame) -> str:
    """What the table's ``srcc`` is measured against, in words (for an axis or a caption)."""
    labels = sorted({str(v) for v in table.get("label", pd.Series(dtype=str)).dropna() if str(v)})
    words = {"level order": "the distortion-level order", "mos": "human opinion scores (MOS)",
             "dmos": "human opinion scores (DMOS)"}
    return " / ".join(words.get(v, v) for v in labels) or "the set's labels"
