"""Notebook 03: which loss terms produce which artifacts, and does a run hack its own measure?

Artifact values come from :func:`nriqa.study.evaluation.artifact_table` (rows = runs, columns =
:data:`nriqa.study.evaluation.ARTIFACTS`, higher = more artifact).
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
import torch

from nriqa.analysis.artifacts import measure_artifacts

from .evaluation import ARTIFACTS


def own_measures(grid: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Run label -> the measures its objective optimizes (the extra terms of the grid entry)."""
    return {label: list(terms) for label, terms in grid.items()}


def worst_run(artifacts: pd.DataFrame, measure: str) -> str:
    """The run (baseline excluded when others exist) with the highest value of ``measure``."""
    col = artifacts[measure]
    others = col.drop(index="baseline", errors="ignore")
    return str((others if len(others) else col).idxmax())


def worst_clip(outputs: Mapping[str, Mapping[str, torch.Tensor]], run: str, measure: str) -> str:
    """The test clip on which ``run`` scores highest on artifact ``measure`` (mean over frames)."""
    gt = outputs["ground truth"]
    vals = {name: measure_artifacts(fr, gt[name], [measure])[measure].float().mean().item()
            for name, fr in outputs[run].items()}
    return max(vals, key=vals.get)


#: what each artifact measure detects, in the sentences of :func:`describe_artifacts`
ARTIFACT_NAMES = {"chroma_noise": "coloured dots", "edge_artifacts": "dotted edges", "blur": "added blur"}


def _num(v: float) -> str:
    return f"{v:.2g}" if v != 0 else "0"


def describe_artifacts(artifacts: pd.DataFrame, *, floor: float = 1e-3, rel: float = 0.01) -> str:
    """One measured sentence per artifact measure: which run has most of it, against the baseline
    (two significant digits: these values are small). Ties and near-zeros are said as such instead
    of naming an arbitrary "highest" run: every run below ``floor`` (the measures are log2 energy
    ratios: 0.001 is 0.07 % more energy) is "no <artifact> detected"; runs within ``floor`` or
    ``rel`` of the largest value of each other are "no run stands out"."""
    lines = []
    for m in ARTIFACTS:
        col = artifacts[m].astype(float)
        what = ARTIFACT_NAMES.get(m, m)
        top, spread = float(col.abs().max()), float(col.max() - col.min())
        if top < floor:
            level = "0.000" if top < 5e-4 else f"below {floor:g}"
            lines.append(f"{m}: all runs {level}: no {what} detected")
            continue
        if spread <= max(floor, rel * top):
            lines.append(f"{m} ({what}): all runs {float(col.mean()):.3g} (spread {spread:.2g}): no run stands out")
            continue
        run = worst_run(artifacts, m)
        val = float(artifacts.loc[run, m])
        if "baseline" not in artifacts.index:
            lines.append(f"{m}: highest in {run!r} ({_num(val)})")
            continue
        base = float(artifacts.loc["baseline", m])
        ratio = f", {val / base:.1f}x the baseline's {_num(base)}" if base > floor else f" vs baseline {_num(base)}"
        lines.append(f"{m} ({what}): highest in {run!r} ({_num(val)}{ratio})")
    return "\n".join(lines)
