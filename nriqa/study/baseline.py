"""Notebook 01: how well does each VSR model learn x4 super-resolution from Charbonnier alone?

The baselines (:func:`nriqa.study.runs.ensure_baseline`) are scored with PSNR and SSIM on the
held-out clips next to bicubic upsampling of the same LR frames, the floor every model should clear.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from nriqa.analysis import evaluate
from nriqa.data import bicubic_resize

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
