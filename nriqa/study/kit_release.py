"""The kit's released baselines: ``python -m nriqa release MODEL --profile demo``.

The first paper fine-tunes the authors' *released, well-trained* checkpoints. The kit does the same
with its tiny generators: this command trains one on the profile's **training** clips only (the
profile's ``train`` section with the ``release`` section's length over it), scores it against bicubic
upsampling on the profile's test clips and writes, into ``nriqa/models/kit_releases/``:

- ``<model>-<size>.pt``: the EMA weights as a state_dict in nriqa's key layout;
- ``<model>-<size>.json``: its provenance: the command, the code's commit (and whether the checkout had
  uncommitted code), the training run's config hash and run key, the file's sha256, the training curve
  (Charbonnier per logged step), and the PSNR / SSIM gain over bicubic on the test clips.

A profile with ``baselines: release`` imports these files through ``import-checkpoint``
(:func:`nriqa.study.checkpoint_import.import_checkpoint`), the path the paper profile takes for the
authors' checkpoints, instead of training its baselines; the baseline run's key holds the file's sha256,
so a new release makes new baseline runs.
"""
from __future__ import annotations

import argparse
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import torch

from nriqa.config import deep_merge
from nriqa.errors import ConfigError
from nriqa.models import available
from nriqa.models.released import KIT_RELEASE_DIR, kit_release_file
from nriqa.paths import atomic_path, atomic_write_text, file_sha256
from nriqa.train import load_generator
from nriqa.train.run_files import DONE_FILE, config_hash, model_name, read_log_rows, run_key

from .manifest import manifest
from .runs import baseline_config, profile, train_jobs, workers

#: release-section knobs and what they set in the training config
RELEASE_KEYS = ("steps", "warmup_steps", "flow_freeze_steps")


def release_config(cfg: Mapping[str, Any], model: str) -> dict:
    """The training config of ``model``'s release: its Charbonnier baseline (:func:`baseline_config`)
    with ``cfg["release"]`` over ``train`` (``steps`` in one cosine period, ``warmup_steps``,
    ``flow_freeze_steps``); experiment ``release-<model>``. ConfigError when the profile has no
    ``release.steps``."""
    rel = dict(cfg.get("release") or {})
    if not rel.get("steps"):
        raise ConfigError(f"profile {cfg.get('name')!r} has no release.steps: the length of a release's training")
    out = baseline_config({**cfg, "baselines": "train"}, model)
    steps = int(rel["steps"])
    over: dict[str, Any] = {"steps": steps, "schedule": {"periods": [steps]}}
    if rel.get("warmup_steps") is not None:
        over["schedule"]["warmup_steps"] = int(rel["warmup_steps"])
    if rel.get("flow_freeze_steps") is not None:
        over["flow_freeze_steps"] = int(rel["flow_freeze_steps"])
    out["train"] = deep_merge(out["train"], over)
    out["experiment"] = f"release-{model}"
    return out


def _curve(run: Path) -> list[list[float]]:
    """``[[step, Charbonnier], ...]`` of every logged step of a run (training loss)."""
    return [[int(r["step"]), float(r["loss/charbonnier"])] for r in read_log_rows(run)
            if "loss/charbonnier" in r and "step" in r]


def _gain(cfg: Mapping[str, Any], model: str, run: Path) -> dict:
    """PSNR (dB) and SSIM of the run and of bicubic on the profile's test clips, and the gains."""
    from .baseline import evaluate_baselines  # pandas and the evaluation panel: only when scoring

    scores = evaluate_baselines(cfg, {model: run})
    mean = scores.pivot_table(index="model", columns="measure", values="score", aggfunc="mean")
    clips = sorted(set(scores["clip"])) if "clip" in scores else []
    out = {"test_clips": clips, "n_clips": len(clips),
           "test_settings": {k: v for k, v in cfg["data"].items() if str(k).startswith("test_")}}
    for m in ("psnr", "ssim"):
        out[m] = float(mean.loc[model, m])
        out[f"bicubic_{m}"] = float(mean.loc["bicubic", m])
        out[f"{m}_gain"] = out[m] - out[f"bicubic_{m}"]
    return out


def write_release(cfg: Mapping[str, Any], model: str, run: Path, *, out_dir: Path = KIT_RELEASE_DIR,
                  command: str | None = None, code: Mapping[str, Any] | None = None) -> Path:
    """Write ``<model>-<size>.pt`` (EMA weights) and its ``.json`` provenance from the finished release
    run ``run`` into ``out_dir``; returns the weights file. Both written atomically. ``code``: the
    :func:`~nriqa.study.manifest.manifest` taken before any release file was written (a file written
    into the package would otherwise read as uncommitted code); default: taken now."""
    rcfg = release_config(cfg, model)
    code = dict(code) if code is not None else manifest(rcfg)
    name, size = model_name(rcfg)
    net = load_generator(run, ema=True)
    weights = Path(out_dir) / kit_release_file(name, size).name
    weights.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()   # not the temporary file's name: torch.save records it, so the bytes would differ
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, buffer)
    with atomic_path(weights) as tmp:
        tmp.write_bytes(buffer.getvalue())
    done = json.loads((run / DONE_FILE).read_text())
    info = {
        "model": name, "model_size": size, "weights": weights.name, "sha256": file_sha256(weights),
        "parameters": sum(p.numel() for p in net.parameters()),
        "command": command or f"python -m nriqa release {name} --profile {cfg.get('name')}",
        "profile": cfg.get("name"), "run": run.name, "run_key": run_key(rcfg), "config_hash": config_hash(rcfg),
        "steps": int(done.get("step", rcfg["train"]["steps"])), "train": rcfg["train"],
        "data": {k: v for k, v in rcfg["data"].items() if not str(k).startswith("test_")},
        "trained_on": "the profile's training clips (nriqa.data.embedded: split 'train'); never its test clips",
        "manifest": code, "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "curve": _curve(run), "gain_over_bicubic": _gain(cfg, name, run),
    }
    atomic_write_text(weights.with_suffix(".json"), json.dumps(info, indent=1) + "\n")
    return weights


def make_releases(cfg: Mapping[str, Any], models: list[str], *, out_dir: Path = KIT_RELEASE_DIR,
                  progress: bool = True) -> list[Path]:
    """Train (or load, when done) the release run of each of ``models`` side by side in the profile's
    workers, then write each release (:func:`write_release`); returns the weights files."""
    unknown = [m for m in models if m not in available()]
    if unknown:
        raise ConfigError(f"unknown generator(s) {unknown}; available: {', '.join(available())}")
    code = manifest(release_config(cfg, models[0]))   # before any release file lands in the package
    runs = train_jobs([(release_config(cfg, m), None) for m in models], n_workers=workers(cfg), progress=progress)
    return [write_release(cfg, m, r, out_dir=out_dir, code=code) for m, r in zip(models, runs)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nriqa release",
                                 description="Train the kit's released baselines on the training clips and write "
                                             "them, with their provenance, into nriqa/models/kit_releases/.")
    ap.add_argument("models", nargs="*", help=f"generators (default: the profile's models): {', '.join(available())}")
    ap.add_argument("--profile", default="demo", help="profile whose training settings and release length to use")
    ap.add_argument("--run-root", default=None, help="runs folder (default: nriqa.paths.runs_dir())")
    ap.add_argument("--out", default=str(KIT_RELEASE_DIR), help="where the release files go")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="profile override")
    a = ap.parse_args(argv)
    from nriqa.config import parse_overrides

    cfg = profile(a.profile, parse_overrides(a.set) or None, run_root=a.run_root)
    for path in make_releases(cfg, a.models or list(cfg["models"]), out_dir=Path(a.out)):
        gain = json.loads(path.with_suffix(".json").read_text())["gain_over_bicubic"]
        print(f"{path}: PSNR {gain['psnr']:.2f} dB ({gain['psnr_gain']:+.2f} dB over bicubic) "
              f"on {gain['n_clips']} test clips")
    return 0
