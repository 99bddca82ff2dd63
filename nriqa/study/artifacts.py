"""Notebook 03: which loss terms produce which artifacts, and does a run hack its own measure?

Artifact values come from :func:`nriqa.study.evaluation.artifact_table` (rows = runs, columns =
:data:`nriqa.study.evaluation.ARTIFACTS`, higher = more artifact).
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
import torch

from nriqa.analysis import claims
from nriqa.analysis.artifacts import measure_artifacts

from . import verdicts as vt
from .evaluation import ARTIFACTS, evaluate_runs


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


def describe_artifacts(artifacts: pd.DataFrame, *, tie: float = 1e-9) -> str:
    """One measured sentence per artifact measure: which run has most of it, against the baseline
    (two significant digits: these values are small). A measure on which every run is equal (within
    ``tie``) says so instead of naming an arbitrary "highest" run."""
    lines = []
    for m in ARTIFACTS:
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


# --------------------------------------------------------------------------- paper A verdicts

def nr_terms(grid: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The grid entries that add one no-reference (NR-IQA) term alone (label == the term)."""
    return [label for label, terms in grid.items()
            if len(terms) == 1 and label in terms and vt.modes([label], "NR")]


def lpips_term(cfg: Mapping[str, Any]) -> str | None:
    """The profile's LPIPS-type loss term: the first term of
    ``finetune.extra_terms`` or ``finetune.combos`` whose name contains ``lpips``."""
    ft = cfg.get("finetune", {})
    names = [n for n, w in (ft.get("extra_terms") or {}).items() if w is not None]
    names += [n for combo in ft.get("combos") or [] for n in combo]
    return next((n for n in names if "lpips" in n.lower()), None)


def nr_lpips_pairs(grid: Mapping[str, Mapping[str, Any]], lpips: str | None) -> list[tuple[str, str]]:
    """``(combo label, NR term)``: the grid's combos of one NR term with ``lpips`` whose NR term
    also has a run of its own."""
    singles = set(nr_terms(grid))
    out = []
    for label, terms in grid.items():
        names = [n for n in terms if n != lpips]
        if lpips in terms and len(terms) == 2 and len(names) == 1 and names[0] in singles:
            out.append((label, names[0]))
    return out


def paper_a_verdicts(cfg: Mapping[str, Any], model: str, runs: Mapping[str, Any], scores: pd.DataFrame,
                     grid: Mapping[str, Mapping[str, Any]]) -> dict[str, list[claims.Verdict]]:
    """Paper A's claims on notebook 02's arms (every seed and clip), keyed ``A1``..``A4``:

    - A1 naive NR-IQA fine-tuning raises the held-out NR judges and its own score, while the FR
      measures fall and artifacts appear (per term, per artifact measure);
    - A2 the LPIPS-type measure (:func:`lpips_term`, scored here if the panel lacks it) judges
      NR-only fine-tuning worse than the baseline;
    - A3 NR + LPIPS has fewer artifacts and a higher mean panel gain than the NR term alone;
    - A4 some NR terms stay artifact-free: a one-sided equivalence test per term and artifact
      measure against ``verdicts.artifact_margin``.

    ``runs``: :func:`nriqa.study.runs.finetune_runs`; ``scores``: their panel scores."""
    s = claims.settings(cfg)
    panel = sorted(set(scores["measure"]))
    terms = nr_terms(grid)
    values = vt.artifact_values(cfg, runs)
    changes = vt.artifact_changes(values)
    out: dict[str, list[claims.Verdict]] = {"A1": [], "A2": [], "A3": [], "A4": []}
    nr_judges = vt.modes(panel, "NR")
    fr = vt.gains(scores, vt.modes(panel, "FR"))
    for t in terms:
        own_scores = scores
        if t not in panel:  # score the arm on its own measure too
            own_scores = evaluate_runs(cfg, vt.arms_only(runs, [t]), model=model, panel=[t])
        out["A1"] += claims.naive_nr_tuning(t, held_out_nr=vt.gains(scores, [m for m in nr_judges if m != t]),
                                            own=vt.gains(own_scores, [t]), fr=fr, artifacts=changes, s=s)
    lp = lpips_term(cfg)
    if lp is not None and terms:
        lp_scores = scores if lp in panel else evaluate_runs(cfg, vt.arms_only(runs, terms), model=model, panel=[lp])
        out["A2"] = claims.lpips_judges_nr_badly(vt.gains(lp_scores, [lp]), terms, lp, s)
    all_gains = vt.gains(scores, panel)
    for combo, single in nr_lpips_pairs(grid, lp):
        out["A3"] += claims.lpips_mitigates(combo, single, gains=all_gains, artifacts=changes, s=s)
    out["A4"] = claims.artifact_free(changes, terms, s)
    return out


def describe_artifact_free(verdicts: list[claims.Verdict], terms: list[str], margin: float) -> str:
    """Which NR terms passed the artifact-free equivalence test on every artifact measure."""
    free = claims.artifact_free_terms(verdicts, terms)
    if not free:
        return (f"No NR-IQA term passed the artifact-free test on every artifact measure (within +{margin:g} of "
                "the baseline, TOST).")
    return f"NR-IQA terms that stay artifact-free (every artifact measure within +{margin:g} of the baseline): " + \
        ", ".join(free)
