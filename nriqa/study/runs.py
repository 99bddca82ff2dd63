"""Profiles, run names, run configs and cached training: the study's shared core.

Experiment (run folder) names, under ``<RUN_ROOT>/<profile>/``:

- ``baseline-<model>``                   Charbonnier only (notebook 01)
- ``ft-<model>-<slug>``                  baseline + extra terms (notebooks 02, 03, 06)
- ``w-<model>-<weighting>-<slug>``       a weighting of a combination (notebook 04)
- ``gan-<model>-<disc>-w<weight>``       fidelity + adversarial term (notebooks 05, 06)
- ``gan-<model>-fidelity-only``          the same steps without the GAN term (notebooks 05, 06)
- ``<name>-seed<k>``                     a fine-tune repeated with seed ``k`` (seed noise)

An *extra-terms* mapping is ``{measure name: weight}`` (a GAN term's value is a dict with
``weight``); it is added to ``{charbonnier: 1.0}`` to form a fine-tune's objective.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from nriqa.config import deep_merge, load_profile, resolve_device
from nriqa.iqa import train_iqa
from nriqa.quality import register_kit_models
from nriqa.paths import figures_dir, runs_dir
from nriqa.train import run_is_done, train

_PIXEL_TERMS = {"charbonnier", "pixel"}


# --------------------------------------------------------------------------- profiles and folders

def profile(name: str | None = None, overrides: Mapping[str, Any] | None = None, *,
            device: str | None = None, seed: int | None = None, run_root: str | None = None) -> dict:
    """Load a profile as the notebooks do: parameters cell values override the YAML, and
    ``device`` is resolved (``"auto"`` -> ``"cuda"`` when present, else ``"cpu"``).

    ``name=None`` is ``$NRIQA_PROFILE`` or ``demo``; ``run_root=None`` is :func:`nriqa.paths.runs_dir`
    (a relative ``run_root`` is taken from the current folder)."""
    name = name or os.environ.get("NRIQA_PROFILE") or "demo"
    cfg = load_profile(name, overrides)
    cfg["device"] = resolve_device(device if device is not None else cfg.get("device", "auto"))
    if seed is not None:
        cfg["seed"] = int(seed)
    cfg["run_root"] = str(Path(run_root).expanduser().resolve() if run_root else runs_dir())
    return cfg


def profile_root(cfg: Mapping[str, Any]) -> Path:
    """``<RUN_ROOT>/<profile>``: all runs of one profile."""
    root = Path(cfg.get("run_root") or runs_dir())
    return root / str(cfg["name"])


def figure_dir(cfg: Mapping[str, Any]) -> Path:
    """Where a notebook saves figures: ``figures/`` for the demo profile (referenced by README),
    ``<RUN_ROOT>/<profile>/figures`` for every other profile (so smoke tests never overwrite them)."""
    if cfg["name"] == "demo" and not os.environ.get("NRIQA_FIGURES_IN_RUNS"):
        return figures_dir()
    p = profile_root(cfg) / "figures"
    p.mkdir(parents=True, exist_ok=True)
    return p


def run_dir(cfg: Mapping[str, Any]) -> Path:
    """Run folder of a resolved experiment config: ``<RUN_ROOT>/<profile>/<experiment>``."""
    return profile_root(cfg) / str(cfg["experiment"])


# --------------------------------------------------------------------------- names and configs

def slug(terms: Mapping[str, Any]) -> str:
    """Short, filesystem-safe name of a set of extra loss terms: ``name x weight`` joined by ``+``,
    pixel terms left out, e.g. ``{"niqe": 0.02, "lpips": 1}`` -> ``niqex0.02+lpipsx1``."""
    parts = []
    for name, weight in terms.items():
        if name in _PIXEL_TERMS:
            continue
        w = weight.get("weight") if isinstance(weight, Mapping) else weight
        parts.append(f"{name}x{w:g}" if isinstance(w, (int, float)) else str(name))
    text = "+".join(parts) or "charbonnier"
    return re.sub(r"[^A-Za-z0-9@+._-]", "_", text)


def term_label(terms: Mapping[str, Any]) -> str:
    """Human label of the extra terms (weights left out): ``cnniqa@embedded + lpips-vgg-randtrunk``."""
    names = [n for n in terms if n not in _PIXEL_TERMS | {"weights"}]
    return " + ".join(names) or "charbonnier"


def finetune_name(model: str, extra_terms: Mapping[str, Any]) -> str:
    """Default experiment name of a fine-tune: ``ft-<model>-<slug of the extra terms>``."""
    return f"ft-{model}-{slug(extra_terms)}"


def baseline_config(cfg: Mapping[str, Any], model: str) -> dict:
    """Resolved config of the Charbonnier baseline for ``model`` (experiment ``baseline-<model>``)."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    out["experiment"] = f"baseline-{model}"
    out["train"] = copy.deepcopy(cfg["train"])
    out["train"]["objective"] = {"charbonnier": 1.0}
    return out


def finetune_config(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *,
                    name: str | None = None, train_overrides: Mapping[str, Any] | None = None) -> dict:
    """Config of a fine-tune: the baseline's trainer knobs, the ``finetune`` section over them,
    ``train_overrides`` over that, and objective ``{charbonnier: 1.0, **extra_terms}``."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    ft = {k: v for k, v in cfg.get("finetune", {}).items() if k not in {"extra_terms", "combos", "model"}}
    out["train"] = deep_merge(cfg["train"], ft)
    if train_overrides:
        out["train"] = deep_merge(out["train"], train_overrides)
    objective = {"charbonnier": 1.0}
    objective.update(copy.deepcopy(dict(extra_terms)))
    out["train"]["objective"] = objective
    out["experiment"] = name or finetune_name(model, extra_terms)
    return out


def finetune_grid(cfg: Mapping[str, Any]) -> dict[str, dict]:
    """The profile's fine-tuning grid: label -> extra terms (each term alone, then the combos).
    A term whose weight is null is left out (lets a profile drop a term of its base)."""
    ft = cfg.get("finetune", {})
    grid: dict[str, dict] = {}
    for name, weight in (ft.get("extra_terms") or {}).items():
        if weight is not None:
            grid[name] = {name: weight}
    for combo in ft.get("combos") or []:
        grid[term_label(combo)] = dict(combo)
    return grid


def reseeded(cfg: Mapping[str, Any]) -> dict:
    """``cfg`` with the next seed: the same experiment with other sampled batches (seed noise)."""
    out = copy.deepcopy(dict(cfg))
    out["seed"] = int(cfg.get("seed", 0)) + 1
    return out


# --------------------------------------------------------------------------- adversarial terms

def fidelity_terms(cfg: Mapping[str, Any]) -> dict:
    """The profile's ``adversarial.fidelity`` terms besides the pixel terms."""
    return {k: v for k, v in cfg["adversarial"]["fidelity"].items() if k not in _PIXEL_TERMS}


def gan_terms(cfg: Mapping[str, Any], discriminator: str, weight: float,
              fidelity: Mapping[str, Any] | None = None) -> dict:
    """Extra terms of an adversarial fine-tune: ``fidelity`` (default: :func:`fidelity_terms`)
    plus ``gan: {weight, discriminator, loss, size}``."""
    a = cfg["adversarial"]
    terms = dict(fidelity_terms(cfg) if fidelity is None else fidelity)
    terms["gan"] = {"weight": float(weight), "discriminator": discriminator, "loss": a["gan_loss"],
                    "size": a.get("size", "tiny")}
    return terms


def gan_overrides(cfg: Mapping[str, Any]) -> dict:
    """Trainer overrides of a GAN-length fine-tune: ``adversarial.steps`` in one schedule period,
    the discriminator's learning rate ``adversarial.d_lr``."""
    a = cfg["adversarial"]
    return {"steps": int(a["steps"]), "schedule": {"periods": [int(a["steps"])]}, "d_lr": float(a["d_lr"])}


def middle_gan_weight(cfg: Mapping[str, Any]) -> float:
    """The middle of ``adversarial.gan_weights`` (the upper middle for an even count)."""
    w = sorted(float(v) for v in cfg["adversarial"]["gan_weights"])
    return w[len(w) // 2]


# --------------------------------------------------------------------------- cached training

def ensure_run(cfg: Mapping[str, Any], *, init_from: Path | None = None, progress: bool = True) -> Path:
    """Train ``cfg`` unless its run folder is already done; resume it when interrupted. Says which
    run it trains (one line, when ``progress``), so a notebook's output and ``nriqa run``'s status
    line name the run behind the progress bar."""
    folder = run_dir(cfg)
    if progress and not run_is_done(folder):
        print(f"training {folder.name} ({(cfg.get('train') or {}).get('steps', '?')} steps)", flush=True)
    return train(dict(cfg), folder, init_from=init_from, progress=progress)


def ensure_baseline(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> Path:
    """The Charbonnier baseline of ``model`` (trained on first use, cached afterwards)."""
    return ensure_run(baseline_config(cfg, model), progress=progress)


def ensure_finetune(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *,
                    name: str | None = None, train_overrides: Mapping[str, Any] | None = None,
                    baseline: Path | None = None, progress: bool = True) -> Path:
    """A fine-tune of ``model``'s baseline (or of the run ``baseline``) with ``extra_terms`` added
    to Charbonnier."""
    base = baseline or ensure_baseline(cfg, model, progress=progress)
    ft = finetune_config(cfg, model, extra_terms, name=name, train_overrides=train_overrides)
    return ensure_run(ft, init_from=base, progress=progress)


def finetune_runs(cfg: Mapping[str, Any], model: str, grid: Mapping[str, Mapping[str, Any]] | None = None, *,
                  progress: bool = True) -> dict[str, Path]:
    """``{"baseline": run, label: run}``: the baseline of ``model``, then one fine-tune per entry
    of ``grid`` (label -> extra terms; default: :func:`finetune_grid`), trained in that order."""
    grid = finetune_grid(cfg) if grid is None else grid
    runs = {"baseline": ensure_baseline(cfg, model, progress=progress)}
    for label, terms in grid.items():
        runs[label] = ensure_finetune(cfg, model, terms, progress=progress)
    return runs


def ensure_reseeded_finetune(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *, name: str,
                             train_overrides: Mapping[str, Any] | None = None, progress: bool = True) -> Path:
    """The fine-tune ``name`` repeated with the next seed (run ``<name>-seed<k>``), starting from
    the same baseline as the original (only the fine-tune's batches and initial noise differ)."""
    base = ensure_baseline(cfg, model, progress=progress)
    other = reseeded(cfg)
    return ensure_finetune(other, model, extra_terms, name=f"{name}-seed{other['seed']}",
                           train_overrides=train_overrides, baseline=base, progress=progress)


def ensure_gan_run(cfg: Mapping[str, Any], model: str, discriminator: str, weight: float, *,
                   progress: bool = True) -> Path:
    """The fine-tune ``gan-<model>-<discriminator>-w<weight>``: fidelity terms + GAN term, GAN-run
    steps (:func:`gan_overrides`)."""
    return ensure_finetune(cfg, model, gan_terms(cfg, discriminator, weight),
                           name=f"gan-{model}-{discriminator}-w{weight:g}",
                           train_overrides=gan_overrides(cfg), progress=progress)


def fidelity_runs(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> dict[str, Path]:
    """``{"fidelity": run, "fidelity (reseeded)": run}``: the fidelity-only fine-tune (GAN-run
    steps, no GAN) and its repeat with the next seed."""
    over = gan_overrides(cfg)
    name = f"gan-{model}-fidelity-only"
    return {"fidelity": ensure_finetune(cfg, model, fidelity_terms(cfg), name=name,
                                        train_overrides=over, progress=progress),
            "fidelity (reseeded)": ensure_reseeded_finetune(cfg, model, fidelity_terms(cfg), name=name,
                                                            train_overrides=over, progress=progress)}


def ensure_kit_iqa(cfg: Mapping[str, Any], *, progress: bool = True) -> pd.DataFrame:
    """Train (or load) the profile's kit NR-IQA models (``iqa.models``) on the embedded distortion
    set and register them as ``<arch>@embedded`` measures. Returns one row per measure: params,
    train_s, steps and held-out srcc / plcc / krcc."""
    rows = []
    for arch in cfg["iqa"]["models"]:
        m = train_iqa(arch, dict(cfg), profile_root(cfg) / "iqa" / arch, progress=progress)
        overall = m["held_out"]["overall"]
        rows.append({"measure": m["name"], "params": m["params"], "train_s": m["train_seconds"],
                     "steps": m["steps"], **{k: overall[k] for k in ("srcc", "plcc", "krcc")}})
    register_kit_models()
    return pd.DataFrame(rows).set_index("measure")
