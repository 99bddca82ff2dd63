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


def describe_artifacts(artifacts: pd.DataFrame) -> str:
    """One measured sentence per artifact measure: which run has most of it vs the baseline."""
    lines = []
    for m in ARTIFACTS:
        run = worst_run(artifacts, m)
        base = artifacts.loc["baseline", m] if "baseline" in artifacts.index else float("nan")
        lines.append(f"{m}: highest in {run!r} ({artifacts.loc[run, m]:.3f} vs baseline {base:.3f})")
    return "\n".join(lines)
