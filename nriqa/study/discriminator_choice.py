"""Notebook 05: with a fidelity term in the objective, does the kind of discriminator matter?

Every adversarial run fine-tunes the baseline with ``fidelity + w * GAN``
(:func:`nriqa.study.runs.gan_arm_jobs`). Two reference runs make its numbers readable: the
fidelity-only fine-tune (same steps, no GAN) isolates the GAN term's effect, and the spread of
its seeds (:func:`nriqa.study.runs.noise_seeds`) measures the seed noise. Every arm is trained once
per seed of :func:`nriqa.study.runs.seeds`; gains are averaged over seeds and are positive =
better (:mod:`nriqa.study.judging`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from nriqa import quality
from nriqa.analysis import claims
from nriqa.analysis.asymmetry import level_order_srcc
from nriqa.compute import job_threads
from nriqa.errors import CheckpointError, ConfigError
from nriqa.iqa import train_iqa
from nriqa.iqa.iqa_training import HELD_OUT_SCORES, EarlyStop, iqa_config, label_srcc, load_held_out_scores
from nriqa.iqa.nets import stlpips_trunk_state
from nriqa.iqa.transfer import discriminator_spec

from . import verdicts as vt
from .judging import ARTIFACTS, artifact_table, evaluate_runs, fr_gain, fr_measures, mean_gain, run_outputs
from .runs import (
    IqaJob,
    arm_jobs,
    ensure_baseline,
    fidelity_jobs,
    gan_arm_jobs,
    gan_name,
    gan_terms,
    middle_gan_weight,
    noise_seeds,
    profile_root,
    term_label,
    train_arms,
    train_iqa_jobs,
    workers,
)
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
    noise, fr_noise = _seed_gain_spread(scores, "fidelity")
    out.attrs.update(fidelity_gain=gains["fidelity"], noise=noise, fr_noise=fr_noise,
                     seed_gains=per_seed_gains(scores, meta))
    return out


def per_seed_gains(scores: pd.DataFrame, meta: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """``run, discriminator, gan_weight, seed, mean_gain``: each arm's mean panel relative gain over
    the baseline per seed (:func:`nriqa.study.judging.mean_gain` of that seed's scores; their mean
    over seeds is the grid's ``mean_gain``), the seeds' spread notebook 05's figure shows."""
    arms = scores[scores["run"].isin(list(meta))]
    keyed = arms.assign(run=[f"{r}\x00{s}" for r, s in zip(arms["run"], arms["seed"])])
    gains = mean_gain(pd.concat([scores[scores["run"] == "baseline"], keyed], ignore_index=True))
    rows = []
    for key, g in gains.items():
        run, seed = key.split("\x00")
        rows.append({"run": run, **meta[run], "seed": int(seed), "mean_gain": g})
    return pd.DataFrame(rows, columns=["run", "discriminator", "gan_weight", "seed", "mean_gain"])


def _seed_gain_spread(scores: pd.DataFrame, arm: str) -> tuple[float, float]:
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


def suppression_table(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> pd.DataFrame:
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
    runs of :func:`suppression_table` (each arm once per seed of :func:`noise_seeds`) and the
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
    out += claims.discriminator_ranking(vt.gains(scores, measures), kinds, s, primary=False,
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
    lines = [f"fidelity-only fine-tune: mean panel gain {pct(grid.attrs.get('fidelity_gain', float('nan')))} "
             "over the baseline",
             "seed noise (fidelity-only, other seeds vs the first): "
             f"{pct(grid.attrs.get('noise', float('nan')), sign=False)} "
             f"(full-reference measures: {pct(grid.attrs.get('fr_noise', float('nan')), sign=False)})",
             "mean gain of adding the GAN term (vs fidelity-only), averaged over GAN weights:"]
    lines += [f"  {d}: {pct(v)}" for d, v in by_disc.items()]
    conv = by_disc.drop(index=[d for d in by_disc.index if d == "vit"], errors="ignore")
    if "vit" in by_disc.index and len(conv):
        lines.append(f"convolutional kinds mean {pct(conv.mean())} vs Transformer (vit) {pct(by_disc['vit'])}")
    return "\n".join(lines)


TRANSFER_KEYS = ("eval_every", "patience", "min_delta", "max_steps", "val_sources")
"""The keys of ``adversarial.transfer``: the patience rule of the transfer test's IQA trainings."""


def _transfer_section(cfg: Mapping[str, Any]) -> dict:
    t = dict(cfg["adversarial"].get("transfer") or {})
    missing = [k for k in TRANSFER_KEYS if k not in t]
    if missing:
        raise ConfigError(f"adversarial.transfer lacks {missing}; it needs {list(TRANSFER_KEYS)} "
                          "(eval_every: null trains max_steps steps with no patience rule)")
    return t


def _transfer_cfg(cfg: Mapping[str, Any], seed: int | None = None) -> dict:
    """``cfg`` with the IQA section of the transfer test: at most ``adversarial.transfer.max_steps``
    steps and, given ``seed``, that seed (the IQA model's initial weights and batches)."""
    icfg = dict(cfg)
    icfg["iqa"] = {**cfg["iqa"], "steps": int(_transfer_section(cfg)["max_steps"])}
    if seed is not None:
        icfg["iqa"]["seed"] = int(seed)
    return icfg


def held_out_label_score(pred, ds) -> float:
    """The transfer test's validation score of raw IQA scores ``pred`` (N,) of the set ``ds``: the
    level-order SRCC (:func:`nriqa.analysis.asymmetry.level_order_srcc`, in [-1, 1]) on a set with
    distortion levels, else the SRCC against its label (:func:`nriqa.iqa.iqa_training.label_srcc`):
    the same measure :func:`discriminator_transfer` reports on the test set."""
    if ds.label != "pseudo":
        return label_srcc(pred, ds)
    return float(level_order_srcc(pred, ds.sources, ds.kinds, ds.levels)["srcc"])


def transfer_stop(cfg: Mapping[str, Any]) -> EarlyStop | None:
    """The patience rule of every transfer-test IQA training (both arms, every kind and seed), from
    ``adversarial.transfer``: score :func:`held_out_label_score` on ``val_sources`` training sources
    every ``eval_every`` steps, stop after ``patience`` evaluations without a gain of ``min_delta``
    (or at ``max_steps``), keep the best weights (:class:`nriqa.iqa.iqa_training.EarlyStop`). None
    when ``eval_every`` is null: a fixed ``max_steps`` steps."""
    t = _transfer_section(cfg)
    if t["eval_every"] is None:
        return None
    return EarlyStop(int(t["eval_every"]), int(t["patience"]), float(t["min_delta"]), int(t["val_sources"]),
                     score=held_out_label_score)


def _options_slug(options: Mapping[str, Any]) -> str:
    return "-".join(f"{k}{v}" for k, v in sorted(options.items())).replace("/", "_") or "default"


def _row(m: dict, **keys) -> dict:
    o = m["held_out"]["overall"]
    return {**keys, "srcc": o["srcc"], "plcc": o["plcc"], "krcc": o["krcc"],
            "rank_acc": o.get("rank_acc", float("nan")),
            "loaded_tensors": m.get("backbone_loaded", m["init_loaded_tensors"]),
            "backbone_tensors": m.get("backbone_tensors", 0)}


def transfer_folder(cfg: Mapping[str, Any], icfg: Mapping[str, Any], arch: str, options: Mapping[str, Any],
                    init_run: Path | None, stop: EarlyStop | None = None) -> Path:
    """``<profile>/iqa-transfer/<arch>-<options>-<random|discriminator>-s<seed>-<key>``: the keyed
    folder of one transfer IQA training. The key (8 hex digits) hashes what changes the trained
    weights: the IQA settings (:func:`nriqa.iqa.iqa_training.iqa_config` of ``icfg``, steps and seed
    included), the patience rule ``stop`` (:meth:`~nriqa.iqa.iqa_training.EarlyStop.key`), the arch
    and its options, and the GAN run the init comes from (its folder name, which holds that run's
    own key). A random-init arm names no run, so two kinds that built the same arch would share it."""
    c = {k: v for k, v in iqa_config(dict(icfg), arch).items() if k != "ckpt_every"}
    keyed = {"iqa": c, "arch": arch, "options": dict(options), "init_from": init_run.name if init_run else None,
             "threads": job_threads(icfg), "early_stop": stop.key() if stop is not None else None}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:8]
    init = "discriminator" if init_run else "random"
    return profile_root(cfg) / "iqa-transfer" / f"{arch}-{_options_slug(options)}-{init}-s{int(c['seed'])}-{key}"


def transfer_jobs(cfg: Mapping[str, Any], model: str, *,
                  progress: bool = True) -> list[tuple[dict, IqaJob]]:
    """``[(row keys, job)]`` of the transfer test: for every discriminator kind and every seed of
    :func:`~nriqa.study.runs.seeds`, an IQA model initialised from that seed's GAN run (at the
    middle GAN weight; trained here unless the grid trained it) and one from random
    initialisation with the same seed and settings, both trained to a plateau (:func:`transfer_stop`).
    Row keys: ``discriminator, seed, init``."""
    w = middle_gan_weight(cfg)
    stop = transfer_stop(cfg)
    base = ensure_baseline(cfg, model, progress=progress)
    kinds = list(cfg["adversarial"]["discriminators"])
    gans = train_arms(cfg, {d: gan_arm_jobs(cfg, model, d, w, baseline=base) for d in kinds}, progress=progress)
    out = []
    for disc in kinds:
        for seed, run in gans[disc].items():
            kind, options = discriminator_spec(run)
            arch, icfg = f"disc-{kind}", _transfer_cfg(cfg, seed)
            for init, source in [("random", None), ("discriminator", run)]:
                job = IqaJob(arch, icfg, transfer_folder(cfg, icfg, arch, options, source, stop), source, options,
                             early_stop=stop)
                out.append(({"discriminator": disc, "seed": int(seed), "init": init}, job))
    return out


def _level_row(m: dict, folder: Path) -> dict:
    """The held-out accuracy of one IQA training on the set's primary label: the level order on a
    set with distortion levels (:func:`nriqa.analysis.asymmetry.level_order_srcc` of the saved
    held-out scores; the SRCC against the FR pseudo-score beside it), else the set's own (MOS)."""
    o = m["held_out"]["overall"]
    out = {"rank_acc": o.get("rank_acc", float("nan")),
           "loaded_tensors": m.get("backbone_loaded", m["init_loaded_tensors"]),
           "backbone_tensors": m.get("backbone_tensors", 0), "steps": int(m["steps"]),
           "best_step": int((m.get("early_stop") or {}).get("best_step", m["steps"]))}
    if m.get("label") != "pseudo":
        return {"label": str(m.get("label")), "srcc": o["srcc"], "krcc": o["krcc"],
                "srcc_fr_pseudo": float("nan"), **out}
    held = load_held_out_scores(folder)
    if held is None:
        raise CheckpointError(f"{folder} has no {HELD_OUT_SCORES} (trained by an older nriqa); "
                              "delete the folder to train it again")
    lo = level_order_srcc(held["scores"], held["sources"], held["kinds"], held["levels"])
    return {"label": "level order", "srcc": lo["srcc"], "krcc": lo["krcc"], "srcc_fr_pseudo": o["srcc"], **out}


def discriminator_transfer(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> pd.DataFrame:
    """NR-IQA from each trained discriminator's backbone vs the same architecture from random
    initialisation, once per discriminator kind and seed (:func:`transfer_jobs`), trained on the
    IQA set to a validation plateau (:func:`transfer_stop`) in the profile's ``workers`` processes
    and cached in keyed folders (:func:`transfer_folder`). The IQA backbone is built as the run's own
    discriminator (kind, size and overrides from its ``config.yaml``); the transfer fails unless
    >= 95 % of its backbone tensors load. One row per (kind, seed, init): ``discriminator, seed,
    init, label`` ("level order" on the embedded set), ``srcc`` and ``krcc`` against that label on
    the held-out content, ``srcc_fr_pseudo`` (against the FR pseudo-score), ``rank_acc`` (fraction of
    level pairs within a source and kind ordered right), ``loaded_tensors`` (backbone tensors filled
    by the init), ``backbone_tensors``, ``steps`` (steps trained) and ``best_step`` (the step whose
    weights were kept and scored)."""
    jobs = transfer_jobs(cfg, model, progress=progress)
    metrics = train_iqa_jobs([j for _, j in jobs], n_workers=workers(cfg), progress=progress)
    return pd.DataFrame([{**keys, **_level_row(m, job.folder)} for (keys, job), m in zip(jobs, metrics)])


def transfer_curves(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> pd.DataFrame:
    """The validation curves of :func:`discriminator_transfer`'s trainings (trained here unless
    cached): one row per evaluation, ``discriminator, seed, init, step, score`` (the validation
    :func:`held_out_label_score`, step 0 = the initialisation), ``best`` (the evaluation whose
    weights were kept), ``steps`` (steps trained) and ``stopped`` ("plateau" | "max_steps").
    Empty (same columns) when the profile trains fixed steps (``adversarial.transfer.eval_every: null``)."""
    jobs = transfer_jobs(cfg, model, progress=progress)
    metrics = train_iqa_jobs([j for _, j in jobs], n_workers=workers(cfg), progress=progress)
    rows = []
    for (keys, _), m in zip(jobs, metrics):
        es = m.get("early_stop")
        for point in (es or {}).get("curve", []):
            rows.append({**keys, "step": int(point["step"]), "score": float(point["score"]),
                         "best": int(point["step"]) == int(es["best_step"]), "steps": int(m["steps"]),
                         "stopped": es["stopped"]})
    return pd.DataFrame(rows, columns=["discriminator", "seed", "init", "step", "score", "best", "steps", "stopped"])


def describe_transfer_steps(curves: pd.DataFrame) -> str:
    """Per discriminator kind and initialisation: the steps each seed's training ran and the step
    kept (``steps@best``), and how many stopped on the plateau rule vs at ``max_steps``."""
    if curves.empty:
        return "fixed-step trainings (adversarial.transfer.eval_every: null): no validation curve"
    runs = curves.drop_duplicates(["discriminator", "seed", "init"])
    best = curves[curves["best"]].set_index(["discriminator", "seed", "init"])["step"]
    lines = []
    for (d, init), g in runs.groupby(["discriminator", "init"], sort=False):
        cells = ", ".join(f"s{r.seed}: {r.steps}@{best.get((d, r.seed, init), float('nan')):g}"
                          for r in g.itertuples())
        lines.append(f"{d} / {init}: steps run@kept {cells}")
    n_plateau = int((runs["stopped"] == "plateau").sum())
    lines.append(f"{n_plateau} of {len(runs)} trainings stopped on the plateau rule, "
                 f"{len(runs) - n_plateau} at max_steps; steps run: median {runs['steps'].median():g}, "
                 f"max {runs['steps'].max():g}")
    return "\n".join(lines)


def transfer_pairs(transfer: pd.DataFrame) -> pd.DataFrame:
    """One row per (discriminator kind, seed) of :func:`discriminator_transfer`: held-out
    ``srcc_random``, ``srcc_discriminator`` and their ``change`` (the paired effect the verdict
    averages; positive = the discriminator's backbone helped)."""
    piv = transfer.pivot_table(index=["discriminator", "seed"], columns="init", values="srcc", sort=False)
    out = pd.DataFrame({"srcc_random": piv["random"], "srcc_discriminator": piv["discriminator"]})
    out["change"] = out["srcc_discriminator"] - out["srcc_random"]
    return out.reset_index()


def transfer_label(transfer: pd.DataFrame) -> str:
    """What the table's ``srcc`` is measured against, in words: "level-order SRCC" on the embedded
    set, "SRCC (mos)" on a human-rated one."""
    label = str(transfer["label"].iloc[0]) if "label" in transfer.columns and len(transfer) else ""
    return {"level order": "level-order SRCC", "": "SRCC"}.get(label, f"SRCC ({label})")


def transfer_verdicts(cfg: Mapping[str, Any], transfer: pd.DataFrame) -> list[claims.Verdict]:
    """The claim that discriminators transfer little (:func:`nriqa.analysis.claims.transfer_little`)
    on :func:`discriminator_transfer`'s table, beside the directional row against 0: pooled over
    kinds, then per kind; the bar is the seed-to-seed spread of the random-init arm
    (:func:`nriqa.analysis.claims.transfer_noise_bar`). The pooled row is B3's primary row when the
    profile's ``verdicts.primary.B3`` names ``transfers_little``."""
    s = claims.settings(cfg)
    rows = claims.transfer_little(transfer, s, label=transfer_label(transfer))
    if rows and claims.primary_spec(s)["B3"] == "transfers_little":
        rows[0] = claims.as_primary(rows[0], "B3")
    return rows


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
    reason (nothing is downloaded). Trained with the transfer test's patience rule
    (:func:`transfer_stop`), in folders keyed as :func:`transfer_folder`'s. Rows as
    :func:`discriminator_transfer`'s with ``backbone`` for ``discriminator``, plus ``note`` (why an
    arm has no numbers)."""
    icfg, stop = _transfer_cfg(cfg), transfer_stop(cfg)
    rows = []
    for arch in cfg["adversarial"].get("transfer_trunks") or []:
        measure = arch.replace("stlpips", "st-lpips")
        if not quality.card(measure).present:
            rows.append({"backbone": arch, "init": "st-lpips trunk", "note": f"skipped: {measure}'s weight "
                         "file is not on disk (pip install stlpips-pytorch==0.0.2)"})
            continue
        key = transfer_folder(cfg, icfg, arch, {}, None, stop).name.rsplit("-", 1)[1]
        for init, source in [("random", None), ("st-lpips trunk", stlpips_trunk_state(arch))]:
            m = train_iqa(arch, icfg, profile_root(cfg) / "iqa-transfer" / f"{arch}-{init.replace(' ', '-')}-{key}",
                          init_from=source, progress=progress, install=False, early_stop=stop)
            rows.append({**_row(m, backbone=arch, init=init), "note": ""})
        rows.append({"backbone": arch, "init": "imagenet", "note": _imagenet_note(arch)})
    cols = ["backbone", "init", "srcc", "plcc", "krcc", "rank_acc", "loaded_tensors", "backbone_tensors", "note"]
    return pd.DataFrame(rows, columns=cols)


def describe_transfer(transfer: pd.DataFrame, *, mean: bool = True) -> str:
    """Per discriminator kind: held-out SRCC from random vs discriminator initialisation (means over
    seeds) and the change per seed; then (``mean``) the mean change over kinds and seeds, which the
    notebook records as a finding of its own (so its summary leaves this line out)."""
    pairs = transfer_pairs(transfer if "seed" in transfer.columns else transfer.assign(seed=0))
    words = transfer_label(transfer)
    lines = []
    for d, g in pairs.groupby("discriminator", sort=False):
        line = (f"{d}: {words} random {g['srcc_random'].mean():.3f} -> from discriminator "
                f"{g['srcc_discriminator'].mean():.3f} ({g['change'].mean():+.3f})")
        if len(g) > 1:
            line += " per seed " + ", ".join(f"{c:+.3f}" for c in g["change"])
        lines.append(line)
    n_seeds, n_kinds = pairs["seed"].nunique(), pairs["discriminator"].nunique()
    if mean:
        lines.append(f"mean change from discriminator initialisation: {pairs['change'].mean():+.3f} {words} "
                     f"({n_seeds} seed{'s' if n_seeds != 1 else ''} x {n_kinds} kind{'s' if n_kinds != 1 else ''})")
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
