"""The study's experiments as cached runs: what the notebooks call so they hold no shared logic.

Every experiment is a run folder ``<RUN_ROOT>/<profile>/<experiment>/`` (see
:mod:`nriqa.train`). The ``ensure_*`` functions train only what is missing, so re-running a
notebook is cheap and an interrupted run resumes.

Experiment names:

- ``baseline-<model>``                        Charbonnier only (notebook 01)
- ``ft-<model>-<terms>``                      baseline + extra terms (notebooks 02, 04)
- ``gan-<model>-<disc>-w<weight>``            fidelity + adversarial term (notebook 05)
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Mapping

from .config import deep_merge, load_profile
from .paths import figures_dir, runs_dir


def profile(name: str = "demo", overrides: Mapping[str, Any] | None = None, *,
            device: str | None = None, seed: int | None = None, run_root: str | None = None) -> dict:
    """Load a profile as the notebooks do: parameters cell values override the YAML."""
    cfg = load_profile(name, overrides)
    if device is not None:
        cfg["device"] = device
    if seed is not None:
        cfg["seed"] = int(seed)
    if run_root:
        cfg["run_root"] = str(run_root)
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


def slug(terms: Mapping[str, Any]) -> str:
    """Short, filesystem-safe name of a set of extra loss terms, e.g. ``cnniqa@embedded+lpips``."""
    parts = []
    for name, weight in terms.items():
        if name in {"charbonnier", "pixel"}:
            continue
        w = weight.get("weight") if isinstance(weight, Mapping) else weight
        parts.append(f"{name}x{w:g}" if isinstance(w, (int, float)) else str(name))
    text = "+".join(parts) or "charbonnier"
    return re.sub(r"[^A-Za-z0-9@+._-]", "_", text)


def term_label(terms: Mapping[str, Any]) -> str:
    """Human label of the extra terms (weights left out): ``cnniqa@embedded + lpips-vgg-randtrunk``."""
    names = [n for n in terms if n not in {"charbonnier", "pixel", "weights"}]
    return " + ".join(names) or "charbonnier"


def baseline_config(cfg: Mapping[str, Any], model: str) -> dict:
    """Resolved config of the Charbonnier baseline for ``model``."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    out["experiment"] = f"baseline-{model}"
    out["train"] = copy.deepcopy(cfg["train"])
    out["train"]["objective"] = {"charbonnier": 1.0}
    return out


def finetune_config(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *,
                    name: str | None = None, train_overrides: Mapping[str, Any] | None = None) -> dict:
    """Config of a fine-tune: the baseline's trainer knobs, the ``finetune`` section over them,
    and objective ``{charbonnier: 1.0, **extra_terms}``."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    ft = {k: v for k, v in cfg.get("finetune", {}).items() if k not in {"extra_terms", "combos", "model"}}
    out["train"] = deep_merge(cfg["train"], ft)
    if train_overrides:
        out["train"] = deep_merge(out["train"], train_overrides)
    objective = {"charbonnier": 1.0}
    objective.update(copy.deepcopy(dict(extra_terms)))
    out["train"]["objective"] = objective
    out["experiment"] = name or f"ft-{model}-{slug(extra_terms)}"
    return out


def run_dir(cfg: Mapping[str, Any]) -> Path:
    """Run folder of a resolved experiment config."""
    return profile_root(cfg) / str(cfg["experiment"])


def ensure_run(cfg: Mapping[str, Any], *, init_from: Path | None = None, progress: bool = True) -> Path:
    """Train ``cfg`` unless its run folder is already done; resume it when interrupted."""
    from .train import train

    return train(dict(cfg), run_dir(cfg), init_from=init_from, progress=progress)


def ensure_baseline(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> Path:
    """The Charbonnier baseline of ``model`` (trained on first use, cached afterwards)."""
    return ensure_run(baseline_config(cfg, model), progress=progress)


def ensure_finetune(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *,
                    name: str | None = None, train_overrides: Mapping[str, Any] | None = None,
                    progress: bool = True) -> Path:
    """A fine-tune of ``model``'s baseline with ``extra_terms`` added to Charbonnier."""
    base = ensure_baseline(cfg, model, progress=progress)
    ft = finetune_config(cfg, model, extra_terms, name=name, train_overrides=train_overrides)
    return ensure_run(ft, init_from=base, progress=progress)


def finetune_grid(cfg: Mapping[str, Any]) -> dict[str, dict]:
    """The profile's fine-tuning grid: label -> extra terms (each term alone, then the combos)."""
    ft = cfg.get("finetune", {})
    grid: dict[str, dict] = {}
    for name, weight in (ft.get("extra_terms") or {}).items():
        grid[name] = {name: weight}
    for combo in ft.get("combos") or []:
        grid[term_label(combo)] = dict(combo)
    return grid
