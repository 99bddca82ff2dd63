"""Notebook 04: can loss weights be chosen from the terms' gradient magnitudes instead of by hand?

A *spec* is one combination of ``weights.combos``: ``{term: weight}`` including the reference term
(``weights.reference``, Charbonnier). Three weightings of each spec are compared:

- ``hand``    the profile's fine-tuning weights (``finetune.extra_terms``), reference at 1;
- ``static``  weights from gradient norms measured at the baseline, so that each quality term's
              weighted gradient is ``weights.target_share`` times the reference's;
- ``online``  all weights 1, re-balanced during training (``weights: gradnorm``).

Every weighting is an *arm* trained once per seed of the profile's ``seeds`` from the one
baseline (:func:`weighting_arms`); its held-out panel gain (the panel less the combination's own
terms) is a mean over seeds x clips with a 95 % interval (:mod:`nriqa.analysis.stats`), and the
claims of :func:`weighting_verdicts` follow from those (:mod:`nriqa.analysis.claims`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nriqa.analysis import claims
from nriqa.analysis.stats import contrast
from nriqa.data import build_train_sampler
from nriqa.errors import ConfigError
from nriqa.losses import Objective
from nriqa.train import load_generator
from nriqa.train.balance import measure_gradients, static_weights
from nriqa.train.run_files import read_log_rows

from . import verdicts as vt
from .judging import artifact_table, evaluate_runs, mean_gain, run_outputs
from .runs import Job, arm_jobs, slug, term_label, train_arms
from .text import pct, tied

WEIGHTINGS = ("hand", "static", "online")
"""The weightings this notebook can compare (the module docstring says what each is)."""


def weightings(cfg: Mapping[str, Any]) -> list[str]:
    """The weightings the profile compares: ``weights.weightings`` (default all of
    :data:`WEIGHTINGS`); a profile that leaves one out trains its arms on no seed (a CPU budget
    knob: each weighting costs one fine-tune per combination and seed)."""
    raw = (cfg.get("weights") or {}).get("weightings")
    if raw is None:
        return list(WEIGHTINGS)
    if isinstance(raw, str) or not raw or any(k not in WEIGHTINGS for k in raw) or len(set(raw)) != len(raw):
        raise ConfigError(f"weights.weightings must be a non-empty list of distinct names from {list(WEIGHTINGS)}, "
                          f"got {raw!r}")
    return [k for k in WEIGHTINGS if k in raw]


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


def arm_label(combo: str, kind: str) -> str:
    """The run label of one weighting of one combination, e.g. ``static: cnniqa@embedded-a``; the
    hand-set weighting's is the combination's label, as notebook 02 labels the same fine-tune."""
    return combo if kind == "hand" else f"{kind}: {combo}"


def weighting_arms(cfg: Mapping[str, Any], model: str, baseline: Path,
                   grads: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, dict[int, Job]], dict[str, dict]]:
    """``({arm label: {seed: job}}, {arm label: meta})``: every spec of ``weights.combos`` under
    each of :func:`weightings`, once per seed of :func:`nriqa.study.runs.seeds` (``grads``: term label ->
    :func:`measure_term_gradients`). The ``hand`` arm is the plain fine-tune
    ``ft-<model>-<slug of the hand weights>``: the folder notebook 02 trains when the hand weights
    are its grid's (then reused, not trained again); ``static`` and ``online`` are
    ``w-<model>-<weighting>-<slug>``. ``meta``: ``combo``, ``weighting``, ``terms`` (the objective)
    and ``measures`` (the combination's terms, left out of its held-out panel)."""
    w = cfg["weights"]
    balance = {"reference": w["reference"], "shares": float(w["target_share"]), "every": int(w["balance_every"])}
    arms, meta, chosen = {}, {}, weightings(cfg)
    for spec in w["combos"]:
        combo = term_label(spec)
        for kind, terms in weighting_specs(cfg, spec, grads[combo]).items():
            if kind not in chosen:
                continue
            ft_terms = {k: v for k, v in terms.items() if k != "charbonnier"}
            name = None if kind == "hand" else f"w-{model}-{kind}-{slug({k: 1.0 for k in spec})}"
            over = {"balance": balance} if kind == "online" else None
            label = arm_label(combo, kind)
            arms[label] = arm_jobs(cfg, model, ft_terms, baseline=baseline, name=name, train_overrides=over)
            meta[label] = {"combo": combo, "weighting": kind, "terms": terms,
                           "measures": [k for k in spec if k not in ("charbonnier", "weights")]}
    return arms, meta


def held_out_gains(scores: pd.DataFrame, meta: Mapping[str, Mapping[str, Any]]) -> dict[str, pd.DataFrame]:
    """``{combo: run, seed, model, dataset, clip, gain}``: the relative gain over ``baseline`` per
    arm, seed and clip on the panel less the combination's own terms and the judges sharing training
    data with them (:func:`nriqa.study.verdicts.held_out_judges`: a term judging the fine-tune it drove,
    or a sibling fitted on the same data, is not a fair judge), for the arms of each combination; a
    combination whose terms are the whole panel is left out."""
    out = {}
    panel = sorted(set(scores["measure"]))
    for combo in dict.fromkeys(m["combo"] for m in meta.values()):
        labels = [r for r, m in meta.items() if m["combo"] == combo]
        own = set(meta[labels[0]]["measures"])
        rows = scores[scores["run"].isin(["baseline", *labels])]
        g = vt.gains(rows, vt.held_out_judges(panel, sorted(own)), terms=sorted(own))
        if g is not None:
            out[combo] = g
    return out


def weighting_comparison(cfg: Mapping[str, Any], model: str, baseline: Path,
                         grads: Mapping[str, Mapping[str, Any]], *, progress: bool = True) -> pd.DataFrame:
    """Fine-tune every spec of ``weights.combos`` with each of :func:`weightings`, once per seed
    (:func:`weighting_arms`, trained through the profile's ``workers`` pool). One row per arm:
    ``combo, weighting, weights`` (an online arm's final ones, of its first seed), ``mean_gain``
    (whole panel, seeds averaged), ``held_out_gain`` with its 95 % interval ``lo, hi`` and ``n``
    (the panel less the combination's terms; hierarchical bootstrap over seeds x clips) and the
    artifact measures (of each arm's first seed). ``attrs["verdicts"]``: :func:`weighting_verdicts`."""
    s = claims.settings(cfg)
    arms, meta = weighting_arms(cfg, model, baseline, grads)
    runs = {"baseline": baseline, **train_arms(cfg, arms, progress=progress)}
    scores = evaluate_runs(cfg, runs, model=model)
    gains = mean_gain(scores)
    held = held_out_gains(scores, meta)
    arts = artifact_table(run_outputs(cfg, runs))
    rows = []
    for label, m in meta.items():
        first = next(iter(runs[label].values()))
        shown = final_weights(first, m["terms"]) if m["weighting"] == "online" else m["terms"]
        est = contrast(held[m["combo"]], [label], rng=s.rng(), n_boot=s.n_boot) if m["combo"] in held else None
        lo, hi = est.interval(0.95) if est else (float("nan"), float("nan"))
        rows.append({"combo": m["combo"], "weighting": m["weighting"],
                     "weights": ", ".join(f"{k}={v:.3g}" for k, v in shown.items() if k != "weights"),
                     "mean_gain": gains[label], "held_out_gain": est.effect if est else float("nan"),
                     "lo": lo, "hi": hi, "n": est.n if est else "",
                     **arts.loc[label].to_dict()})
    out = pd.DataFrame(rows)
    out.attrs["verdicts"] = weighting_verdicts(held, s)
    out.attrs["seed_gains"] = held_out_seed_gains(held, meta)
    return out


def held_out_seed_gains(held: Mapping[str, pd.DataFrame], meta: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """``combo, weighting, seed, gain``: each arm's held-out panel gain per seed (the mean over clips
    of :func:`held_out_gains`; fractions, positive = better than the baseline), the seeds' spread
    that notebook 04's figure shows beside the mean."""
    rows = []
    for combo, g in held.items():
        for (label, seed), gain in g.groupby(["run", "seed"], sort=False)["gain"].mean().items():
            if label in meta:
                rows.append({"combo": combo, "weighting": meta[label]["weighting"], "seed": seed, "gain": float(gain)})
    return pd.DataFrame(rows, columns=["combo", "weighting", "seed", "gain"])


def weighting_verdicts(held: Mapping[str, pd.DataFrame], s: claims.Settings) -> list[claims.Verdict]:
    """The weighting claims per combination, on :func:`held_out_gains` (every seed and clip):

    - the hand-set weights improve the held-out panel (directional, the arm's mean gain);
    - each gradient-chosen weighting (``static``, ``online``) improves it more than the hand-set
      weights (directional, the paired difference on seed index and clip);
    - each gradient-chosen weighting leaves the held-out panel unchanged (no effect beyond the
      profile's ``verdicts.equivalence_margin``: the NR-IQA term's share is too small to act).
    """
    out = []
    for combo, g in held.items():
        present = set(g["run"])
        hand = arm_label(combo, "hand")
        if hand in present:
            out.append(claims.directional(f"hand-set weights of {combo} improve the held-out panel",
                                          contrast(g, [hand], rng=s.rng(), n_boot=s.n_boot),
                                          note="mean gain over the baseline"))
        for kind, what in (("static", "static gradient-balanced"), ("online", "online gradient-balanced")):
            arm = arm_label(combo, kind)
            if arm not in present:
                continue
            if hand in present:
                out.append(claims.directional(
                    f"{what} weights of {combo} improve the held-out panel more than the hand-set weights",
                    contrast(g, [arm], [hand], rng=s.rng(), n_boot=s.n_boot),
                    note="difference of held-out panel gains"))
            out.append(claims.no_effect(f"{what} weights of {combo} leave the held-out panel unchanged",
                                        contrast(g, [arm], rng=s.rng(), n_boot=s.n_boot), s.equivalence_margin,
                                        note="mean gain over the baseline"))
    return out


def describe_weighting(comparison: pd.DataFrame) -> str:
    """One line per combination: each weighting's held-out panel gain with its 95 % interval (a
    table without ``held_out_gain``: the mean panel gain) and the highest one, or that they tie.
    Which differences the seeds and clips resolve is the verdict table's to say."""
    held = "held_out_gain" in comparison.columns
    col = "held_out_gain" if held else "mean_gain"
    lines = []
    for combo, rows in comparison.groupby("combo", sort=False):
        def one(r) -> str:
            text = f"{r.weighting} {pct(getattr(r, col))}"
            if held and np.isfinite(r.lo) and np.isfinite(r.hi):
                text += f" [{pct(r.lo)}, {pct(r.hi)}]"
            return text
        parts = ", ".join(one(r) for r in rows.itertuples())
        n = f" ({rows['n'].iloc[0]})" if held and rows["n"].iloc[0] else ""
        if tied(rows[col]):
            verdict = "no weighting stands out (tied)"
        else:
            best = rows.loc[rows[col].idxmax(), "weighting"]
            verdict = f"highest: {best}" if held else f"best: {best}"
        what = "held-out panel gain" if held else "mean panel gain"
        lines.append(f"{combo}: {what}{n} {parts} -> {verdict}")
    return "\n".join(lines)
