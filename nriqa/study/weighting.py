"""Notebook 04: can loss weights be chosen from the terms' gradient magnitudes instead of by hand?

A *spec* is one combination of ``weights.combos``: ``{term: weight}`` including the reference term
(``weights.reference``, Charbonnier). Three weightings of each spec are compared:

- ``hand``    the profile's fine-tuning weights (``finetune.extra_terms``), reference at 1;
- ``static``  weights from gradient norms measured at the baseline, so that each quality term's
              weighted gradient is ``weights.target_share`` times the reference's;
- ``online``  all weights 1, re-balanced during training (``weights: gradnorm``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from nriqa.data import build_train_sampler
from nriqa.losses import Objective
from nriqa.train import load_generator
from nriqa.train.balance import measure_gradients, static_weights
from nriqa.train.runs import read_log_rows

from .evaluation import artifact_table, evaluate_runs, mean_gain, run_outputs
from .runs import ensure_finetune, slug, term_label
from .text import pct, tied


def probe_batches(cfg: Mapping[str, Any], n: int) -> list[dict]:
    """``n`` training batches no training run reaches (sampler steps ``10**6 + i``)."""
    sampler = build_train_sampler(dict(cfg["data"]), seed=int(cfg.get("seed", 0)))
    return [sampler.batch(10**6 + i) for i in range(n)]


def measure_term_gradients(cfg: Mapping[str, Any], run: Path, spec: Mapping[str, float]) -> dict:
    """Per-term gradient norms (w.r.t. parameters ``param_norm`` and output frames) and cosines
    between terms at ``run``'s EMA checkpoint, on ``weights.probe_batches`` probe batches
    (see :func:`nriqa.train.balance.measure_gradients`)."""
    model = load_generator(run, ema=True, device="cpu").train()
    for p in model.parameters():
        p.requires_grad_(True)
    objective = Objective(dict(spec))
    return measure_gradients(model, objective, probe_batches(cfg, int(cfg["weights"]["probe_batches"])))


def weighting_specs(cfg: Mapping[str, Any], spec: Mapping[str, float], grads: Mapping[str, Any]) -> dict[str, dict]:
    """``{"hand": weights, "static": weights, "online": weights}`` of one spec (see the module
    docstring); ``grads`` is :func:`measure_term_gradients` of that spec."""
    w = cfg["weights"]
    hand_table = cfg["finetune"].get("extra_terms", {})
    hand = {k: 1.0 if k == w["reference"] else float(hand_table.get(k) or v) for k, v in spec.items()}
    static = static_weights(grads["param_norm"], w["reference"], float(w["target_share"]),
                            weights={k: 1.0 for k in spec})
    online = {**{k: 1.0 for k in spec}, "weights": "gradnorm"}
    return {"hand": hand, "static": static, "online": online}


def final_weights(run: Path, spec: Mapping[str, Any]) -> dict[str, float]:
    """The term weights of ``run``'s last log row that has any (an online-balanced run's weights
    at its end); ``spec``'s values where the log has none (or no log exists)."""
    last = next((r for r in reversed(read_log_rows(run)) if any(k.startswith("weight/") for k in r)), {})
    return {k: float(last.get(f"weight/{k}", v)) for k, v in spec.items() if k != "weights"}


def weighting_comparison(cfg: Mapping[str, Any], model: str, baseline: Path,
                         grads: Mapping[str, Mapping[str, Any]], *, progress: bool = True) -> pd.DataFrame:
    """Fine-tune every spec of ``weights.combos`` with the three weightings (runs
    ``w-<model>-<weighting>-<slug>``; ``grads``: term label -> :func:`measure_term_gradients`).
    One row per run: ``combo, weighting, weights`` (the online run's final ones), ``mean_gain``
    over the baseline and the artifact measures."""
    w = cfg["weights"]
    balance = {"reference": w["reference"], "shares": float(w["target_share"]), "every": int(w["balance_every"])}
    runs, meta = {"baseline": baseline}, {}
    for spec in w["combos"]:
        label = term_label(spec)
        for kind, terms in weighting_specs(cfg, spec, grads[label]).items():
            ft_terms = {k: v for k, v in terms.items() if k != "charbonnier"}
            name = f"w-{model}-{kind}-{slug({k: 1.0 for k in spec})}"
            over = {"balance": balance} if kind == "online" else None
            runs[name] = ensure_finetune(cfg, model, ft_terms, name=name, train_overrides=over, progress=progress)
            shown = final_weights(runs[name], spec) if kind == "online" else terms
            meta[name] = {"combo": label, "weighting": kind,
                          "weights": ", ".join(f"{k}={v:.3g}" for k, v in shown.items() if k != "weights")}
    scores = evaluate_runs(cfg, runs, model=model)
    gains = mean_gain(scores)
    arts = artifact_table(run_outputs(cfg, runs))
    rows = [{**meta[r], "mean_gain": gains[r], **arts.loc[r].to_dict()} for r in meta]
    return pd.DataFrame(rows)


def describe_weighting(comparison: pd.DataFrame) -> str:
    """One line per combination: each weighting's mean panel gain and the best weighting."""
    lines = []
    for combo, rows in comparison.groupby("combo"):
        best = rows.loc[rows["mean_gain"].idxmax()]
        parts = ", ".join(f"{r.weighting} {pct(r.mean_gain)}" for r in rows.itertuples())
        verdict = "no weighting stands out (tied)" if tied(rows["mean_gain"]) else f"best: {best['weighting']}"
        lines.append(f"{combo}: mean panel gain {parts} -> {verdict}")
    return "\n".join(lines)
