"""The fine-tuning learning rate, chosen rather than inherited: every arm of a profile's fine-tune grid at
several learning rates, from the profile's baseline (the released one on the demo), one or more seeds.

Per (arm, learning rate) it reports, against the baseline on the profile's test clips:

- ``own``: the mean relative gain of the arm's own loss measure(s), signed so that positive = better by
  that measure (the term raised its own score);
- ``psnr_db`` / ``ssim``: the change in PSNR (dB) and SSIM;
- ``niqe``: the relative change of published NIQE (positive = worse: NIQE is lower-better);
- ``artifacts``: the largest artifact change over the detectors, in each detector's visibility margin
  (``artifact_margins`` of the profile; 1 = as visible as the positive control), and which detector;
- ``nonfinite``: steps the trainer skipped for a non-finite loss (stability).

    python benchmarks/lr_sweep.py --profile demo --lrs 1e-4 3e-4 1e-3 --seeds 0 \\
        --run-root /tmp/lr-sweep --out benchmarks/results/lr_sweep.csv

prints a Markdown table (docs/BENCHMARKS.md quotes it) and writes the CSV.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from nriqa.analysis.margins import profile_margins
from nriqa.quality import card
from nriqa.study.judging import evaluate_runs
from nriqa.study.runs import arm_jobs, ensure_baseline, ensure_kit_iqa, finetune_grid, profile, slug, train_arms
from nriqa.study.verdicts import artifact_values
from nriqa.train.run_files import read_log_rows


def _relative(after: float, before: float) -> float:
    return (after - before) / abs(before) if before else float("nan")


def _row(label: str, terms: dict, lr: float, seed: int, folder: Path, means: pd.DataFrame, arts: pd.DataFrame,
         margins: dict) -> dict:
    run = f"{label}@{lr:g}"
    m = means.loc[(run, seed)]
    b = means.loc[("baseline", means.loc["baseline"].index[0])]
    own = [t for t in terms if t in m.index]
    art = arts[(arts["run"] == run) & (arts["seed"] == seed)].groupby("measure")["value"].mean()
    base_art = arts[arts["run"] == "baseline"].groupby("measure")["value"].mean()
    load = {d: (art[d] - base_art[d]) / margins[d] for d in art.index if d in margins}
    worst = max(load, key=load.get) if load else None
    return {"arm": label, "lr": lr, "seed": seed,
            "own": sum(_relative(m[t], b[t]) * (1 if card(t).higher_better else -1) for t in own) / len(own)
            if own else None,
            "psnr_db": m["psnr"] - b["psnr"], "ssim": m["ssim"] - b["ssim"], "niqe": _relative(m["niqe"], b["niqe"]),
            "artifacts": load[worst] if worst else None, "worst_detector": worst,
            "nonfinite": sum(int(r.get("nonfinite", 0) or 0) for r in read_log_rows(folder))}


def sweep(profile_name: str, lrs: list[float], seeds: list[int], run_root: str | None) -> pd.DataFrame:
    cfg = profile(profile_name, run_root=run_root)
    model = cfg["finetune"].get("model") or cfg["models"][0]
    base = ensure_baseline(cfg, model)
    ensure_kit_iqa(cfg)   # the kit NR-IQA loss terms (and judges) of the profile
    grid = finetune_grid(cfg)
    arms = {f"{label}@{lr:g}": arm_jobs(cfg, model, terms, baseline=base, arm_seeds=seeds,
                                        name=f"lrsweep-{model}-{slug(terms) or 'fidelity'}-lr{lr:g}",
                                        train_overrides={"optimizer": {"lr": lr}})
            for label, terms in grid.items() for lr in lrs}
    runs = train_arms(cfg, arms)
    own = sorted({t for terms in grid.values() for t in terms} - {"psnr", "ssim", "niqe"})
    panel = ["psnr", "ssim", "niqe", *own]
    everything = {"baseline": base, **runs}
    scores = evaluate_runs(cfg, everything, model=model, panel=panel)
    means = scores.groupby(["run", "seed", "measure"])["score"].mean().unstack("measure")
    arts = artifact_values(cfg, everything)
    margins = profile_margins(cfg)
    rows = [_row(label, terms, lr, s, runs[f"{label}@{lr:g}"][s], means, arts, margins)
            for label, terms in grid.items() for lr in lrs for s in seeds]
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    """One row per (arm, learning rate), seeds averaged."""
    t = df.groupby(["arm", "lr"], sort=False).agg(
        own=("own", "mean"), psnr_db=("psnr_db", "mean"), ssim=("ssim", "mean"), niqe=("niqe", "mean"),
        artifacts=("artifacts", "mean"), worst=("worst_detector", lambda s: s.mode().iat[0] if len(s.dropna()) else ""),
        nonfinite=("nonfinite", "sum"), n=("seed", "count")).reset_index()
    lines = ["| arm | lr | own score | PSNR (dB) | SSIM | NIQE (+ = worse) | artifacts (margins, detector) "
             "| skipped steps | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        own = "" if pd.isna(r.own) else f"{r.own:+.1%}"
        lines.append(f"| {r.arm} | {r.lr:g} | {own} | {r.psnr_db:+.3f} | {r.ssim:+.4f} | {r.niqe:+.1%} "
                     f"| {r.artifacts:+.2f} ({r.worst}) | {r.nonfinite} | {r.n} |")
    return "\n".join(lines)


#: the rule that picks the profile's rate: a fine-tune must first do no harm by itself
FIDELITY_TOLERANCE_DB = 0.05


def chosen_rate(df: pd.DataFrame, arm: str = "fidelity-only", tol_db: float = FIDELITY_TOLERANCE_DB) -> float | None:
    """The largest rate at which the ``arm`` (Charbonnier alone: the fine-tune itself, no quality term) keeps
    its PSNR within ``tol_db`` of the baseline on every seed and no arm skipped a step; None when none does."""
    ok = []
    for lr, t in df.groupby("lr"):
        fid = t[t["arm"] == arm]
        if len(fid) and (fid["psnr_db"] >= -tol_db).all() and t["nonfinite"].sum() == 0:
            ok.append(float(lr))
    return max(ok) if ok else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--run-root", default=None)
    ap.add_argument("--out", default="benchmarks/results/lr_sweep.csv")
    a = ap.parse_args()
    df = sweep(a.profile, a.lrs, a.seeds, a.run_root)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(json.dumps({"profile": a.profile, "lrs": a.lrs, "seeds": a.seeds, "csv": str(out)}))
    print(markdown(df))
    print(f"rule: the largest rate at which the fidelity-only arm stays within {FIDELITY_TOLERANCE_DB} dB PSNR of the "
          f"baseline and no arm skips a step -> {chosen_rate(df)}")


if __name__ == "__main__":
    main()
