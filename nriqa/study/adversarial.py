"""Notebook 05: with a fidelity term in the objective, does the kind of discriminator matter?

Every adversarial run fine-tunes the baseline with ``fidelity + w * GAN``
(:func:`nriqa.study.runs.ensure_gan_run`). Two reference runs make its numbers readable: the
fidelity-only fine-tune (same steps, no GAN) isolates the GAN term's effect, and the spread of
its seeds (:func:`nriqa.study.runs.noise_seeds`) measures the seed noise. Every arm is trained once
per seed of :func:`nriqa.study.runs.seeds`; gains are averaged over seeds and are positive =
better (:mod:`nriqa.study.evaluation`).
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
from nriqa import quality
from nriqa.analysis import claims
from nriqa.iqa import train_iqa
from nriqa.iqa.nets import stlpips_trunk_state
from nriqa.iqa.transfer import gan_discriminator

from . import verdicts as vt
from .evaluation import ARTIFACTS, artifact_table, evaluate_runs, fr_gain, fr_measures, mean_gain, run_outputs
from .runs import (arm_jobs, ensure_baseline, ensure_gan_run, fidelity_jobs, gan_arm_jobs, gan_name, gan_terms,
                   middle_gan_weight, noise_seeds, profile_root, term_label, train_arms)
from .text import pct


def adversarial_grid(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> pd.DataFrame:
    """Fine-tune ``fidelity + w * GAN`` for every discriminator kind and GAN weight; one row per
    run with the mean panel relative gain over the baseline (``mean_gain``), over the
    fidelity-only fine-tune (``gain_vs_fidelity``: the adversarial term's effect), the same on the
    full-reference measures only (``fr_gain_vs_fidelity``: faithful detail), and the artifact
    measures (of each arm's first seed). ``attrs``: ``fidelity_gain``, and the seed noise
    ``noise`` / ``fr_noise``: the mean |gain| of the fidelity-only arm's other seeds over its first."""
    a = cfg["adversarial"]
    base = ensure_baseline(cfg, model, progress=progress)
    arms, meta = {"fidelity": fidelity_jobs(cfg, model, baseline=base)}, {}
    for disc in a["discriminators"]:
        for w in a["gan_weights"]:
            label = f"{disc} w={w:g}"
            arms[label] = gan_arm_jobs(cfg, model, disc, w, baseline=base)
            meta[label] = {"discriminator": disc, "gan_weight": float(w)}
    runs = {"baseline": base, **train_arms(cfg, arms, progress=progress)}
    scores = evaluate_runs(cfg, runs, model=model)
    gains = mean_gain(scores)
    fid = mean_gain(scores, baseline="fidelity")
    fid_fr = fr_gain(scores, baseline="fidelity")
    arts = artifact_table(run_outputs(cfg, runs))
    rows = [{"run": r, **m, "mean_gain": gains[r], "gain_vs_fidelity": fid[r], "fr_gain_vs_fidelity": fid_fr[r],
             **arts.loc[r].to_dict()} for r, m in meta.items()]
    out = pd.DataFrame(rows)
    noise, fr_noise = seed_spread(scores, "fidelity")
    out.attrs.update(fidelity_gain=gains["fidelity"], noise=noise, fr_noise=fr_noise)
    return out


def seed_spread(scores: pd.DataFrame, arm: str) -> tuple[float, float]:
    """(panel, full-reference) mean |gain| of ``arm``'s other seeds over its first seed: the seed
    noise of one run's gain (NaN with a single seed)."""
    rows = scores[scores["run"] == arm]
    order = list(dict.fromkeys(rows["seed"]))
    if len(order) < 2:
        return float("nan"), float("nan")
    relabelled = rows.assign(run=[f"seed {s}" for s in rows["seed"]]).drop(columns="seed")
    first = f"seed {order[0]}"
    panel, fr = mean_gain(relabelled, baseline=first), fr_gain(relabelled, baseline=first)
    others = [f"seed {s}" for s in order[1:]]
    return (sum(abs(panel[o]) for o in others) / len(others), sum(abs(fr[o]) for o in others) / len(others))


def artifact_suppression(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> pd.DataFrame:
    """The NR-IQA fine-tune ``adversarial.artifact_term`` (notebook 02's run), the same plus the GAN
    term ``adversarial.artifact_gan`` (same steps), each once per seed of :func:`noise_seeds`.
    Rows: ``without GAN`` and ``with GAN`` (artifact measures of each arm's first seed,
    ``mean_gain`` over the baseline averaged over seeds) and ``without GAN (another seed)`` (the
    first arm's second seed, to compare the GAN's effect with seed noise); ``attrs["term"]``: the
    term's label."""
    runs, term = suppression_runs(cfg, model, progress=progress)
    arm_seeds = list(runs["without GAN"])
    without = runs["without GAN"]
    runs = {**runs, "without GAN (another seed)": {arm_seeds[1]: without[arm_seeds[1]]}}
    gains = mean_gain(evaluate_runs(cfg, runs, model=model))
    table = artifact_table(run_outputs(cfg, runs))
    table["mean_gain"] = [gains.get(r, 0.0) for r in table.index]
    table.attrs["term"] = term_label(term)
    return table


def suppression_runs(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> tuple[dict, dict]:
    """``({"baseline": run, "without GAN": {seed: run}, "with GAN": {seed: run}}, term)``: the
    runs of :func:`artifact_suppression` (each arm once per seed of :func:`noise_seeds`) and the
    NR-IQA term (``adversarial.artifact_term``, null entries dropped)."""
    a = cfg["adversarial"]
    term = {k: v for k, v in a["artifact_term"].items() if v is not None}  # null drops a base term
    gan = dict(a["artifact_gan"])
    base = ensure_baseline(cfg, model, progress=progress)
    arm_seeds = noise_seeds(cfg)
    arms = {"without GAN": arm_jobs(cfg, model, term, baseline=base, arm_seeds=arm_seeds),
            "with GAN": arm_jobs(cfg, model, gan_terms(cfg, gan["discriminator"], gan["weight"], term),
                                 name=gan_name(model, gan["discriminator"], gan["weight"], term),
                                 train_overrides={"d_lr": float(a["d_lr"])}, baseline=base, arm_seeds=arm_seeds)}
    runs = {"baseline": base, **train_arms(cfg, arms, progress=progress)}
    return runs, term


def grid_verdicts(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> list[claims.Verdict]:
    """The discriminator-ranking claims on the grid's arms, every seed and clip: patch-level vs
    vanilla and convolutional vs Transformer, on the full-reference measures (faithful detail)
    and on the whole panel (:func:`nriqa.analysis.claims.discriminator_ranking`). Gains are over
    the baseline; a difference of two arms' gains equals the difference of their gains over the
    fidelity-only arm, which therefore cancels."""
    a, s = cfg["adversarial"], claims.settings(cfg)
    base = ensure_baseline(cfg, model, progress=progress)
    arms, kinds = {}, {}
    for disc in a["discriminators"]:
        for w in a["gan_weights"]:
            label = f"{disc} w={w:g}"
            arms[label] = gan_arm_jobs(cfg, model, disc, w, baseline=base)
            kinds[label] = disc
    runs = {"baseline": base, **train_arms(cfg, arms, progress=progress)}
    scores = evaluate_runs(cfg, runs, model=model)
    measures = sorted(set(scores["measure"]))
    out = []
    fr = vt.gains(scores, fr_measures(measures))
    if fr is not None:
        out += claims.discriminator_ranking(fr, kinds, s)
    out += claims.discriminator_ranking(vt.gains(scores, measures), kinds, s,
                                        outcome="improve the whole panel (FR and NR judges) more")
    return out


def suppression_verdicts(cfg: Mapping[str, Any], model: str, *, measures=("chroma_noise", "edge_artifacts"),
                         progress: bool = True) -> list[claims.Verdict]:
    """Does the GAN term suppress the NR-IQA term's artifacts? Artifact values of every seed of
    :func:`suppression_runs`'s two arms on every clip, paired on seed index and clip
    (:func:`nriqa.analysis.claims.artifact_suppression`)."""
    runs, term = suppression_runs(cfg, model, progress=progress)
    values = vt.artifact_values(cfg, {k: runs[k] for k in ("without GAN", "with GAN")},
                                [m for m in measures if m in ARTIFACTS])
    return claims.artifact_suppression(values, without="without GAN", with_gan="with GAN",
                                       measures=list(dict.fromkeys(values["measure"])), term=term_label(term),
                                       s=claims.settings(cfg))


def describe_adversarial(grid: pd.DataFrame) -> str:
    """The fidelity-only gain, the seed noise, and each discriminator kind's mean
    ``gain_vs_fidelity`` over GAN weights (convolutional kinds vs ViT when both are present)."""
    by_disc = grid.groupby("discriminator")["gain_vs_fidelity"].mean().sort_values(ascending=False)
    lines = [f"fidelity-only fine-tune: mean panel gain {pct(grid.attrs.get('fidelity_gain', float('nan')))} over the baseline",
             f"seed noise (fidelity-only, other seeds vs the first): {pct(grid.attrs.get('noise', float('nan')), sign=False)} "
             f"(full-reference measures: {pct(grid.attrs.get('fr_noise', float('nan')), sign=False)})",
             "mean gain of adding the GAN term (vs fidelity-only), averaged over GAN weights:"]
    lines += [f"  {d}: {pct(v)}" for d, v in by_disc.items()]
    conv = by_disc.drop(index=[d for d in by_disc.index if d == "vit"], errors="ignore")
    if "vit" in by_disc.index and len(conv):
        lines.append(f"convolutional kinds mean {pct(conv.mean())} vs Transformer (vit) {pct(by_disc['vit'])}")
    return "\n".join(lines)


def _transfer_cfg(cfg: Mapping[str, Any]) -> dict:
    a = cfg["adversarial"]
    icfg = dict(cfg)
    icfg["iqa"] = {**cfg["iqa"], "steps": int(a.get("transfer_steps", cfg["iqa"]["steps"]))}
    return icfg


def _options_slug(options: Mapping[str, Any]) -> str:
    return "-".join(f"{k}{v}" for k, v in sorted(options.items())).replace("/", "_") or "default"


def _row(m: dict, **keys) -> dict:
    o = m["held_out"]["overall"]
    return {**keys, "srcc": o["srcc"], "plcc": o["plcc"], "krcc": o["krcc"],
            "rank_acc": o.get("rank_acc", float("nan")), "loaded_tensors": m.get("backbone_loaded", m["init_loaded_tensors"]),
            "backbone_tensors": m.get("backbone_tensors", 0)}


def discriminator_transfer(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> pd.DataFrame:
    """NR-IQA from each trained discriminator's backbone (its GAN run at the middle GAN weight) vs
    the same architecture from random initialisation, trained on the embedded distortion set for
    ``adversarial.transfer_steps``. The IQA backbone is built as the run's own discriminator (kind,
    size and overrides from its ``config.yaml``, :func:`nriqa.iqa.transfer.gan_discriminator`);
    the transfer fails unless >= 95 % of its backbone tensors load. Rows ``discriminator, init,
    srcc, plcc, krcc`` (vs the set's FR pseudo-score), ``rank_acc`` (fraction of level pairs within a
    source and kind ordered right: the certain label), ``loaded_tensors`` (backbone tensors filled by
    the init), ``backbone_tensors``."""
    w = middle_gan_weight(cfg)
    icfg = _transfer_cfg(cfg)
    rows = []
    for disc in cfg["adversarial"]["discriminators"]:
        gan = gan_discriminator(ensure_gan_run(cfg, model, disc, w, progress=progress))  # the first seed's run
        for init, source in [("random", None), ("discriminator", gan.state)]:
            folder = profile_root(cfg) / "iqa-transfer" / f"{disc}-{_options_slug(gan.options)}-{init}"
            m = train_iqa(gan.arch, icfg, folder, init_from=source, arch_options=gan.options,
                          progress=progress, install=False)
            rows.append(_row(m, discriminator=disc, init=init))
    return pd.DataFrame(rows)


_IMAGENET_FILES = {"stlpips-alex": "alexnet-owt-7be5be79.pth", "stlpips-vgg": "vgg16-397923af.pth"}


def _imagenet_note(arch: str) -> str:
    """Why the ImageNet arm of trunk ``arch`` has no numbers (it is never trained here)."""
    path = quality.torch_hub_dir() / "checkpoints" / _IMAGENET_FILES.get(arch, "?")
    if not path.exists():
        return f"skipped: ImageNet weights not on disk ({path}; nriqa downloads nothing)"
    return (f"skipped: {path.name} is on disk, but the shift-tolerant trunk (stride-1 convolutions, blur "
            "pooling) is not torchvision's network, so its ImageNet weights are not mapped onto it")


def trunk_transfer(cfg: Mapping[str, Any], *, progress: bool = True) -> pd.DataFrame:
    """The same IQA training from a perceptually pretrained trunk: for each ``adversarial.transfer_trunks``
    arch (``stlpips-alex`` / ``stlpips-vgg``: ST-LPIPS's BAPPS-trained trunk from the stlpips-pytorch
    wheel) a random-init arm and an ``st-lpips trunk`` arm; plus an ``imagenet`` arm, skipped with its
    reason (nothing is downloaded). Rows as :func:`discriminator_transfer`'s with ``backbone`` for
    ``discriminator``, plus ``note`` (why an arm has no numbers)."""
    icfg = _transfer_cfg(cfg)
    rows = []
    for arch in cfg["adversarial"].get("transfer_trunks") or []:
        measure = arch.replace("stlpips", "st-lpips")
        if not quality.card(measure).present:
            rows.append({"backbone": arch, "init": "st-lpips trunk", "note": f"skipped: {measure}'s weight "
                         "file is not on disk (pip install stlpips-pytorch==0.0.2)"})
            continue
        for init, source in [("random", None), ("st-lpips trunk", stlpips_trunk_state(arch))]:
            m = train_iqa(arch, icfg, profile_root(cfg) / "iqa-transfer" / f"{arch}-{init.replace(' ', '-')}",
                          init_from=source, progress=progress, install=False)
            rows.append({**_row(m, backbone=arch, init=init), "note": ""})
        rows.append({"backbone": arch, "init": "imagenet", "note": _imagenet_note(arch)})
    cols = ["backbone", "init", "srcc", "plcc", "krcc", "rank_acc", "loaded_tensors", "backbone_tensors", "note"]
    return pd.DataFrame(rows, columns=cols)


def describe_transfer(transfer: pd.DataFrame) -> str:
    """Per discriminator: held-out SRCC from random vs discriminator initialisation, and the mean change."""
    piv = transfer.pivot_table(index="discriminator", columns="init", values="srcc")
    lines = [f"{d}: SRCC random {r['random']:.3f} -> from discriminator {r['discriminator']:.3f} "
             f"({r['discriminator'] - r['random']:+.3f})" for d, r in piv.iterrows()]
    lines.append(f"mean change from discriminator initialisation: {(piv['discriminator'] - piv['random']).mean():+.3f} SRCC")
    return "\n".join(lines)


def describe_trunk_transfer(trunks: pd.DataFrame) -> str:
    """Per pretrained trunk: held-out SRCC from random vs pretrained initialisation; skipped arms with their reason."""
    lines = []
    for arch, g in trunks.groupby("backbone", sort=False):
        got = g.dropna(subset=["srcc"]).set_index("init")
        if {"random", "st-lpips trunk"} <= set(got.index):
            r, t = float(got.loc["random", "srcc"]), float(got.loc["st-lpips trunk", "srcc"])
            line = f"{arch}: SRCC random {r:.3f} -> from the ST-LPIPS trunk {t:.3f} ({t - r:+.3f})"
            if "rank_acc" in got.columns:
                ra, ta = float(got.loc["random", "rank_acc"]), float(got.loc["st-lpips trunk", "rank_acc"])
                line += f"; level pairs ordered right {ra:.3f} -> {ta:.3f}"
            lines.append(line)
        lines += [f"{arch} / {row.init}: {row.note}" for row in g.itertuples() if row.note]
    return "\n".join(lines) or "no pretrained trunk arms in this profile (adversarial.transfer_trunks)"
