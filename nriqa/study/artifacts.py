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
ARTIFACT_NAMES = {"chroma_noise": "coloured dots", "edge_artifacts": "dotted edges", "eyes": '"eyes" (dark blobs)',
                  "ringing": "ringing", "blur": "added blur", "flicker": "temporal flicker"}


def _num(v: float) -> str:
    return f"{v:.2g}" if v != 0 else "0"


def describe_artifacts(artifacts: pd.DataFrame, *, tie: float = 1e-9) -> str:
    """One measured sentence per artifact measure: which run has most of it, against the baseline
    (two significant digits: these values are small). A measure on which every run is equal (within
    ``tie``) says so instead of naming an arbitrary "highest" run."""
    lines = []
    for m in [a for a in ARTIFACTS if a in artifacts.columns]:
        col = artifacts[m].astype(float)
        what = ARTIFACT_NAMES.get(m, m)
        if float(col.max() - col.min()) <= tie:
            v = float(col.iloc[0])
            lines.append(f"{m}: all runs {_num(v)}: " + (f"no {what} detected" if abs(v) <= tie
                                                          else "no run differs from another"))
            continue
        run = worst_run(artifacts, m)
        val = float(artifacts.loc[run, m])
        if "baseline" not in artifacts.index:
            lines.append(f"{m}: highest in {run!r} ({_num(val)})")
            continue
        base = float(artifacts.loc["baseline", m])
        ratio = f", {val / base:.1f}x the baseline's {_num(base)}" if base > tie else f" vs baseline {_num(base)}"
        lines.append(f"{m} ({what}): highest in {run!r} ({_num(val)}{ratio})")
    return "\n".join(lines)
