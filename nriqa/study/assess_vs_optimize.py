"""Notebook 06: does a measure that assesses quality well also optimize well?

*Assessment accuracy* (claim B1's x-axis) comes from human-rated data, never from the kit's own
synthetic set: with ``asymmetry.published`` (the demo: no human-rated set on disk), the published
SRCC of the same implementation on the named human-rated sets (:mod:`nriqa.quality.published`,
each number with its citation); with ``asymmetry.iqa_sets`` (the paper profile), SRCC against human
opinion scores on those sets, FR measures on the ``fr`` sets, NR measures on the ``nr`` sets
(:func:`human_rated_sets`). A measure without a human-grounded number (the kit-trained models) is
left out of B1 (:func:`left_out`); without either setting, the level order of the held-out embedded
distortion set is used and labelled as such. *Optimization value*: the median standardised change
(seed-to-seed SD units, positive = better) of the *other* panel measures when the measure is added
to Charbonnier (:func:`optimization_gains`). A rank correlation near zero or negative between the
two is the asymmetry.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from nriqa import quality
from nriqa.analysis import assessment_accuracy, asymmetry_correlation, claims, generator_outputs
from nriqa.analysis.asymmetry import fit_min_size, fr_pseudo_terms
from nriqa.analysis.multiplicity import min_detectable_rho
from nriqa.analysis.pixel_optimization import optimize_pixels, pixel_loss
from nriqa.analysis.rankboot import cube_means, gain_cube, seed_means
from nriqa.analysis.standardise import panel_effect, seed_spread, standardised_changes
from nriqa.compute import resolve_device, use_job_numerics
from nriqa.data.iqa_sets import DATASETS, load_iqa_dataset
from nriqa.errors import ConfigError
from nriqa.iqa import distortion_set
from nriqa.paths import atomic_write_text
from nriqa.quality.published import published_source, published_srcc

from . import verdicts as vt
from .judging import dataset_label, evaluate_runs, mean_gain, test_set
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
    profile_root,
    run_jobs,
    train_arms,
)
from .text import tied


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


def _published(cfg: Mapping[str, Any]) -> list[str]:
    """The human-rated sets of ``asymmetry.published`` (``{datasets: [...]}``), ``[]`` when unset."""
    pub = cfg.get("asymmetry", {}).get("published") or {}
    return [str(d) for d in pub.get("datasets") or []]


def assessment_accuracies(cfg: Mapping[str, Any], measures: list[str] | None = None) -> dict[str, dict]:
    """Measure -> assessment accuracy (default measures: ``asymmetry.measures``): with
    ``asymmetry.published.datasets`` (an ordered preference), the published SRCC on the first of those
    human-rated sets the measure has one on (``label`` names it, ``source`` cites it); else the SRCC on
    ``asymmetry.iqa_sets`` against human opinion; else :func:`nriqa.analysis.assessment_accuracy` on
    :func:`held_out_iqa_set` (level order). Measures without a number are left out (:func:`left_out`)."""
    names = list(measures or cfg["asymmetry"]["measures"])
    datasets = _published(cfg)
    if datasets:
        out = {}
        for name in names:
            found = next(((d, v) for d in datasets if (v := published_srcc(name, [d])) is not None), None)
            if found is not None:
                d, srcc = found
                out[name] = {"mode": quality.card(name).mode.upper(), "srcc": float(srcc),
                             "label": f"published SRCC ({d})", "dataset": d,
                             "source": published_source(name, [d])}
        return out
    names = [n for n in names if quality.card(n).present]
    sets = human_rated_sets(cfg)
    if sets:
        out = {}
        for name in names:
            acc = _human_rated_accuracy(name, sets)
            if acc is not None:
                out[name] = acc
        return out
    return level_order_accuracies(cfg, names)


def level_order_accuracies(cfg: Mapping[str, Any], names: list[str]) -> dict[str, dict]:
    """Measure -> :func:`nriqa.analysis.assessment_accuracy` on :func:`held_out_iqa_set` (the level
    order of the kit's own distortion set: no human rating, so never B1's axis when a human-grounded
    one is set)."""
    held_out = held_out_iqa_set(cfg)
    pseudo = fr_pseudo_terms(held_out)   # computed once, a measure's own term left out per measure
    return {name: assessment_accuracy(name, held_out, pseudo=pseudo) for name in names}


def left_out(cfg: Mapping[str, Any], assess: Mapping[str, Any]) -> list[str]:
    """The ``asymmetry.measures`` without an assessment accuracy (e.g. kit models: no human-rated SRCC)."""
    return [m for m in cfg["asymmetry"]["measures"] if m not in assess]


def optimization_gains(cfg: Mapping[str, Any], measures: list[str] | None = None, *,
                       progress: bool = True) -> pd.DataFrame:
    """``run, seed, model, dataset, clip, gain``: each measure's optimization value per seed and test
    clip, by the method ``asymmetry.optimization`` names: ``"pixels"`` (the demo: optimize the pixels
    of each seed's fidelity-only output against the measure, :func:`pixel_optimization_scores`) or
    ``"finetune"`` (notebook 02's fine-tunes with the measure added, :func:`finetune_optimization_gains`).
    ``measures``: default ``asymmetry.measures``; positive = the other judges improved."""
    method = cfg["asymmetry"].get("optimization", "finetune")
    if method == "pixels":
        names = list(measures or cfg["asymmetry"]["measures"])
        return pixel_optimization_gains(pixel_optimization_scores(cfg, names, progress=progress))
    if method != "finetune":
        raise ConfigError(f"asymmetry.optimization must be 'pixels' or 'finetune', got {method!r}")
    gains = finetune_optimization_gains(cfg)
    return gains if measures is None else gains[gains["run"].isin(list(measures))]


def finetune_optimization_gains(cfg: Mapping[str, Any]) -> pd.DataFrame:
    """``run, seed, model, dataset, clip, gain``: per measure (``run``) of ``asymmetry.measures``
    that notebook 02 fine-tuned alone with Charbonnier (``finetune.model``), the median over the
    *other* panel measures of their standardised change over the baseline (seed-to-seed SD units of
    the fidelity-only arm, positive = better; :func:`nriqa.study.verdicts.standardised_effects`),
    per seed and test clip."""
    model = cfg["finetune"]["model"]
    grid = finetune_grid(cfg)
    singles = {n: t for n, t in grid.items() if len(t) == 1 and n in cfg["asymmetry"]["measures"]}
    runs = finetune_runs(cfg, model, {**{k: v for k, v in grid.items() if k == vt.SPREAD_ARM}, **singles})
    scores = evaluate_runs(cfg, runs, model=model)
    panel = sorted(set(scores["measure"]))
    spread = vt.spread(scores)
    parts = []
    for n in singles:
        g = vt.standardised_effects(scores, vt.held_out_judges(panel, [n]), spread, terms=[n])
        if g is not None:
            parts.append(g[g["run"] == n].rename(columns={"value": "gain"}))
    cols = ["run", "seed", "model", "dataset", "clip", "gain"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def optimization_values(cfg: Mapping[str, Any], gains: pd.DataFrame | None = None) -> dict[str, float]:
    """Measure -> its optimization value: the mean over seeds of the mean over test clips of
    :func:`optimization_gains` (``gains``: that table, computed when None), the number the
    asymmetry verdict correlates (in seed-to-seed SD units)."""
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
    objective = (f"all objectives level (held-out effect {t['gain'].mean():+.2f} SD)" if tied(t["gain"])
                 else f"best objective: {best_o} (held-out effect {t.loc[best_o, 'gain']:+.2f} SD)")
    text = f"{assessor[0].upper()}{assessor[1:]}; {objective}."
    try:
        rho, p = asymmetry_correlation(table)
    except ValueError as err:  # fewer than 3 measures (e.g. the smoke profile)
        return f"{text} No rank correlation: {err}."
    return (f"Spearman rank correlation between assessment SRCC and optimization effect: {rho:+.3f} "
            f"(n = {len(table)} measures; minimum detectable |rho| at that n: {min_detectable_rho(len(table)):.2f}). "
            f"{text}")


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
             "gain_vs_charbonnier_gan": mean_gain(scores[scores["measure"].isin(vt.held_out_judges(
                 sorted(set(scores["measure"])), [name]))],
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
    tables = {n: vt.gains(scores, vt.held_out_judges(panel, [n]), terms=[n]) for n in names}
    srcc = {n: assess.get(n, {}).get("srcc", float("nan")) for n in names}
    return claims.adversarial_fidelity({n: g for n, g in tables.items() if g is not None}, srcc,
                                       "charbonnier + GAN", claims.settings(cfg))


def asymmetry_verdict(cfg: Mapping[str, Any], table: pd.DataFrame, gains: pd.DataFrame | None = None) -> claims.Verdict:
    """The asymmetry claim: Spearman rho between the table's ``srcc`` and the measures' gains,
    never 'agrees' by default. With ``gains`` (:func:`optimization_gains`) the interval resamples
    measures, seeds and clips (:func:`nriqa.analysis.claims.asymmetry_over_seeds`, B1's primary row);
    without, it resamples the table's measures only (:func:`nriqa.analysis.claims.asymmetry`), blind
    to a seed or clip that favours some measures."""
    s = claims.settings(cfg)
    if gains is None:
        return claims.asymmetry(table, s)
    return claims.asymmetry_over_seeds(dict(zip(table["measure"], table["srcc"])), gains, s)


def b1_verdicts(cfg: Mapping[str, Any], table: pd.DataFrame, gains: pd.DataFrame) -> list[claims.Verdict]:
    """B1's primary row over every measure of ``table``, and -- when the accuracies come from more than
    one human-rated set (``dataset`` column) -- a secondary row over the measures of the first set
    alone (one set: every accuracy on the same images)."""
    out = [asymmetry_verdict(cfg, table, gains)]
    if "dataset" in table.columns and table["dataset"].nunique() > 1:
        first = _published(cfg)[0]
        sub = table[table["dataset"] == first]
        if len(sub) >= 3:
            v = asymmetry_verdict(cfg, sub, gains[gains["run"].isin(set(sub["measure"]))])
            out.append(replace(v, primary=False, id="", claim=f"{v.claim} ({first} measures only)"))
    return out


def fidelity_family(cfg: Mapping[str, Any]) -> pd.DataFrame:
    """DISTS-style measures over different backbones (``dists-*``): assessment SRCC/KRCC (``label``) on the
    held-out distortion set where the backbone is on disk; the missing weight files otherwise."""
    rows = []
    for name in [n for n in quality.names() if n.startswith("dists-")]:
        card = quality.card(name)
        if card.present:
            acc = assessment_accuracies(cfg, [name]).get(name) or level_order_accuracies(cfg, [name])[name]
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


# --------------------------------------------------------------------------- B1's optimization by pixels

PIXEL_B1 = {"steps": 25, "lr": 0.02, "anchor_weight": 1.0, "crop": 96, "frame": 0}
"""Defaults of ``asymmetry.pixels``: Adam steps and rate on the pixels, the Charbonnier anchor to
the start image, the centre crop (px) of one frame per test clip (``frame``)."""


def pixel_b1_settings(cfg: Mapping[str, Any]) -> dict:
    """``asymmetry.pixels`` over :data:`PIXEL_B1`."""
    return {**PIXEL_B1, **dict(cfg.get("asymmetry", {}).get("pixels") or {})}


def _centre(x: torch.Tensor, c: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    c = min(c, h, w)
    top, left = (h - c) // 2, (w - c) // 2
    return x[..., top:top + c, left:left + c].reshape(1, 3, c, c).clamp(0, 1).float()


def _judge(judges: Mapping[str, Any], x: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
    out = {}
    for name, m in judges.items():
        card = m.card
        xi, gi = fit_min_size(x, card), fit_min_size(gt, card)
        if card.video:   # a video judge (cvvdp) scores each image as a one-frame clip
            xi, gi = xi[:, None], gi[:, None]
        out[name] = float(torch.as_tensor(m(xi, gi) if card.mode == "FR" else m(xi)).mean())
    return out


def _pixel_seed_rows(cfg: Mapping[str, Any], measures: list[str], seed: int, folder: Path, out: Path) -> None:
    """One seed of :func:`pixel_optimization_scores`, written to ``out`` (CSV; a worker's job: the
    profile's job numerics, so a seed gives the same numbers in any process)."""
    use_job_numerics(cfg)
    s = pixel_b1_settings(cfg)
    model = cfg["finetune"]["model"]
    clips = test_set(cfg)
    judges = {n: quality.create(n) for n in cfg["panel"]}
    outs = generator_outputs(folder, clips, cache_dir=profile_root(cfg) / "eval-cache",
                             device=resolve_device(cfg.get("device")))
    losses: dict = {}
    rows = []
    for c in clips:
        name = str(c["name"])
        gt = _centre(c["hr"][0][int(s["frame"])], int(s["crop"]))
        start = _centre(outs[name][int(s["frame"])], int(s["crop"]))
        images = {"start": start}
        for m in measures:
            fn = pixel_loss(m, gt=gt, start=start, with_="charbonnier", anchor_weight=float(s["anchor_weight"]),
                            cache=losses)
            images[m] = optimize_pixels(start, fn, steps=int(s["steps"]), lr=float(s["lr"])).image
        for label, img in images.items():
            for judge, score in _judge(judges, img, gt).items():
                rows.append({"run": label, "seed": int(seed), "model": model, "dataset": dataset_label(cfg),
                             "clip": name, "measure": judge, "score": score,
                             "higher_better": bool(judges[judge].card.higher_better)})
    atomic_write_text(out, pd.DataFrame(rows).to_csv(index=False))


def pixel_optimization_scores(cfg: Mapping[str, Any], measures: list[str], *, progress: bool = True) -> pd.DataFrame:
    """Claim B1's optimization by pixels (Ding et al. 2021): for each seed's fidelity-only fine-tune
    output (notebook 02, :data:`nriqa.study.verdicts.SPREAD_ARM`) on each test clip, the centre
    ``asymmetry.pixels.crop`` px of one frame is optimized directly against each of ``measures`` (Adam
    on the pixels, Charbonnier anchor to the start), then every panel judge scores the start and the
    result. Returns ``run`` (the measure optimized, ``"start"`` for the start image), ``seed, model,
    dataset, clip, measure`` (the judge), ``score``, ``higher_better``. One job per seed, in the
    profile's ``workers`` processes; each seed's table is cached in the profile's ``tables`` folder
    under a key of everything it depends on (an interrupted run keeps the seeds it finished)."""
    model = cfg["finetune"]["model"]
    runs = finetune_runs(cfg, model, {vt.SPREAD_ARM: {}}, progress=progress)[vt.SPREAD_ARM]
    key = hashlib.sha256(json.dumps([sorted(measures), list(cfg["panel"]), pixel_b1_settings(cfg),
                                     sorted((int(k), str(v)) for k, v in runs.items()),
                                     [str(c["name"]) for c in test_set(cfg)]], sort_keys=True).encode()
                         ).hexdigest()[:12]
    folder = profile_root(cfg) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    parts = {seed: folder / f"06_b1_pixel_scores-{key}-s{seed}.csv" for seed in sorted(runs)}
    todo = [(dict(cfg), list(measures), seed, runs[seed], part) for seed, part in parts.items() if not part.exists()]
    what = (lambda k, t: f"B1 pixels: {len(todo)} seeds in {k} processes of {t} thread(s)") if progress else None
    run_jobs(cfg, _pixel_seed_rows, todo, what=what)
    return pd.concat([pd.read_csv(p) for p in parts.values()], ignore_index=True)


def pixel_optimization_gains(scores: pd.DataFrame) -> pd.DataFrame:
    """``run, seed, model, dataset, clip, gain``: per optimized measure (``run``), seed and clip, the
    median over the *other* judges of their standardised change from the start image (in units of
    each judge's seed-to-seed spread of the start images, positive = better)."""
    spread = seed_spread(scores, "start")
    parts = []
    for m in [r for r in dict.fromkeys(scores["run"]) if r != "start"]:
        keep = scores[scores["run"].isin(["start", m]) & (scores["measure"] != m)]
        if keep.empty:
            continue
        z = standardised_changes(keep, spread, baseline="start")
        parts.append(panel_effect(z).rename(columns={"value": "gain"}))
    cols = ["run", "seed", "model", "dataset", "clip", "gain"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
