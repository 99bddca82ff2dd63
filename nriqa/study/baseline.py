"""Notebook 01: how well does each VSR model learn x4 super-resolution from Charbonnier alone?

The baselines (:func:`nriqa.study.runs.ensure_baseline`: trained here, or with ``baselines: release``
the kit's shipped releases) are scored with PSNR and SSIM on the held-out clips next to bicubic
upsampling of the same LR frames, the floor every model should clear. :func:`release_table` and
:func:`release_curves` read the releases' provenance files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from nriqa.analysis import evaluate
from nriqa.data import bicubic_resize
from nriqa.models.released import kit_release_info

from .judging import dataset_label, test_set


class Bicubic(torch.nn.Module):
    """Bicubic x``scale`` upsampling as a generator: LR ``(B, T, 3, h, w)`` -> ``(B, T, 3, scale*h,
    scale*w)``, clamped to ``[0, 1]``."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        b, t = lr.shape[:2]
        return bicubic_resize(lr.flatten(0, 1), scale=self.scale).clamp(0, 1).unflatten(0, (b, t))


def evaluate_baselines(cfg: Mapping[str, Any], runs: Mapping[str, Path],
                       measures: Sequence[str] = ("psnr", "ssim")) -> pd.DataFrame:
    """Tidy scores of bicubic (run and model ``"bicubic"``) and of every baseline (model -> run
    folder; run label = the folder name) on the test clips; no cache."""
    clips, dataset = test_set(cfg), dataset_label(cfg)
    frames = [evaluate(Bicubic(cfg["data"]["scale"]), clips, list(measures), run="bicubic", model="bicubic",
                       dataset=dataset, device=cfg["device"])]
    for m, r in runs.items():
        frames.append(evaluate(r, clips, list(measures), run=r.name, model=m, dataset=dataset,
                               device=cfg["device"]))
    return pd.concat(frames)


def describe_baselines(summary: pd.DataFrame, models: Sequence[str]) -> str:
    """One line per model: PSNR (dB) and SSIM and their difference to bicubic. ``summary``: rows =
    model (``"bicubic"`` included), columns ``psnr``, ``ssim`` (mean scores)."""
    lines = []
    for m in models:
        dp = summary.loc[m, "psnr"] - summary.loc["bicubic", "psnr"]
        ds = summary.loc[m, "ssim"] - summary.loc["bicubic", "ssim"]
        lines.append(f"{m}: PSNR {summary.loc[m, 'psnr']:.2f} dB ({dp:+.2f} dB vs bicubic), "
                     f"SSIM {summary.loc[m, 'ssim']:.4f} ({ds:+.4f})")
    return "\n".join(lines)


def release_table(models: Sequence[str], size: str = "tiny") -> pd.DataFrame:
    """One row per shipped kit release (:func:`nriqa.models.released.kit_release_info`): training steps,
    parameters, the commit that trained it, the first digits of its sha256, and the PSNR gain over
    bicubic recorded when it was written (dB, on the clips named in its provenance)."""
    rows = []
    for m in models:
        info = kit_release_info(m, size)
        gain = info["gain_over_bicubic"]
        rows.append({"model": m, "steps": info["steps"], "parameters": info["parameters"],
                     "commit": (info["manifest"].get("commit") or "unknown")[:7]
                     + (" (+ uncommitted code)" if info["manifest"].get("code_changed") else ""),
                     "sha256": info["sha256"][:12], "recorded PSNR gain (dB)": round(gain["psnr_gain"], 2),
                     "test clips": gain["n_clips"], "command": info["command"]})
    return pd.DataFrame(rows).set_index("model")


def release_curves(models: Sequence[str], size: str = "tiny") -> dict[str, pd.DataFrame]:
    """``{model: DataFrame(step, charbonnier)}``: each release's training curve from its provenance file."""
    return {m: pd.DataFrame(kit_release_info(m, size)["curve"], columns=["step", "charbonnier"]) for m in models}
