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
import torch

from nriqa.iqa import train_iqa

from .evaluation import artifact_table, evaluate_runs, fr_gain, mean_gain, run_outputs
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
    runs["without GAN (another seed)"] = {arm_seeds[1]: runs["without GAN"][arm_seeds[1]]}
    gains = mean_gain(evaluate_runs(cfg, runs, model=model))
    table = artifact_table(run_outputs(cfg, runs))
    table["mean_gain"] = [gains.get(r, 0.0) for r in table.index]
    table.attrs["term"] = term_label(term)
    return table


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


def discriminator_transfer(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> pd.DataFrame:
    """NR-IQA from each trained discriminator's backbone (its GAN run at the middle GAN weight) vs
    the same architecture from random initialisation, trained on the embedded distortion set for
    ``adversarial.transfer_steps``. Rows ``discriminator, init, srcc, plcc, krcc, loaded_tensors``."""
    a = cfg["adversarial"]
    w = middle_gan_weight(cfg)
    rows = []
    for disc in a["discriminators"]:
        run = ensure_gan_run(cfg, model, disc, w, progress=progress)  # the first seed's run
        ckpt = torch.load(run / "checkpoints" / "latest.pt", map_location="cpu", weights_only=False)
        d_state = ckpt.get("discriminator") or ckpt.get("params_d")
        for init, source in [("random", None), ("discriminator", d_state)]:
            icfg = dict(cfg)
            icfg["iqa"] = {**cfg["iqa"], "steps": int(a.get("transfer_steps", cfg["iqa"]["steps"]))}
            m = train_iqa(f"disc-{disc}", icfg, profile_root(cfg) / "iqa-transfer" / f"{disc}-{init}",
                          init_from=source, progress=progress, install=False)
            o = m["held_out"]["overall"]
            rows.append({"discriminator": disc, "init": init, "srcc": o["srcc"], "plcc": o["plcc"],
                         "krcc": o["krcc"], "loaded_tensors": m["init_loaded_tensors"]})
    return pd.DataFrame(rows)


def describe_transfer(transfer: pd.DataFrame) -> str:
    """Per discriminator: held-out SRCC from random vs discriminator initialisation, and the mean change."""
    piv = transfer.pivot_table(index="discriminator", columns="init", values="srcc")
    lines = [f"{d}: SRCC random {r['random']:.3f} -> from discriminator {r['discriminator']:.3f} "
             f"({r['discriminator'] - r['random']:+.3f})" for d, r in piv.iterrows()]
    lines.append(f"mean change from discriminator initialisation: {(piv['discriminator'] - piv['random']).mean():+.3f} SRCC")
    return "\n".join(lines)
