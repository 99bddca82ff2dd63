"""The study's experiments as cached runs: what the notebooks call so they hold no shared logic.

Every experiment is a run folder ``<RUN_ROOT>/<profile>/<experiment>/`` (see
:mod:`nriqa.train`). The ``ensure_*`` functions train only what is missing, so re-running a
notebook is cheap and an interrupted run resumes.

Experiment names:

- ``baseline-<model>``                        Charbonnier only (notebook 01)
- ``ft-<model>-<terms>``                      baseline + extra terms (notebooks 02, 04)
- ``gan-<model>-<disc>-w<weight>``            fidelity + adversarial term (notebook 05)
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Mapping

from .config import deep_merge, load_profile
from .paths import figures_dir, runs_dir


def profile(name: str = "demo", overrides: Mapping[str, Any] | None = None, *,
            device: str | None = None, seed: int | None = None, run_root: str | None = None) -> dict:
    """Load a profile as the notebooks do: parameters cell values override the YAML, and
    ``device`` is resolved (``"auto"`` -> ``"cuda"`` when present, else ``"cpu"``)."""
    from .config import resolve_device

    cfg = load_profile(name, overrides)
    cfg["device"] = resolve_device(device if device is not None else cfg.get("device", "auto"))
    if seed is not None:
        cfg["seed"] = int(seed)
    if run_root:
        cfg["run_root"] = str(run_root)
    return cfg


def profile_root(cfg: Mapping[str, Any]) -> Path:
    """``<RUN_ROOT>/<profile>``: all runs of one profile."""
    root = Path(cfg.get("run_root") or runs_dir())
    return root / str(cfg["name"])


def figure_dir(cfg: Mapping[str, Any]) -> Path:
    """Where a notebook saves figures: ``figures/`` for the demo profile (referenced by README),
    ``<RUN_ROOT>/<profile>/figures`` for every other profile (so smoke tests never overwrite them)."""
    if cfg["name"] == "demo" and not os.environ.get("NRIQA_FIGURES_IN_RUNS"):
        return figures_dir()
    p = profile_root(cfg) / "figures"
    p.mkdir(parents=True, exist_ok=True)
    return p


def slug(terms: Mapping[str, Any]) -> str:
    """Short, filesystem-safe name of a set of extra loss terms, e.g. ``cnniqa@embedded+lpips``."""
    parts = []
    for name, weight in terms.items():
        if name in {"charbonnier", "pixel"}:
            continue
        w = weight.get("weight") if isinstance(weight, Mapping) else weight
        parts.append(f"{name}x{w:g}" if isinstance(w, (int, float)) else str(name))
    text = "+".join(parts) or "charbonnier"
    return re.sub(r"[^A-Za-z0-9@+._-]", "_", text)


def term_label(terms: Mapping[str, Any]) -> str:
    """Human label of the extra terms (weights left out): ``cnniqa@embedded + lpips-vgg-randtrunk``."""
    names = [n for n in terms if n not in {"charbonnier", "pixel", "weights"}]
    return " + ".join(names) or "charbonnier"


def baseline_config(cfg: Mapping[str, Any], model: str) -> dict:
    """Resolved config of the Charbonnier baseline for ``model``."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    out["experiment"] = f"baseline-{model}"
    out["train"] = copy.deepcopy(cfg["train"])
    out["train"]["objective"] = {"charbonnier": 1.0}
    return out


def finetune_config(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *,
                    name: str | None = None, train_overrides: Mapping[str, Any] | None = None) -> dict:
    """Config of a fine-tune: the baseline's trainer knobs, the ``finetune`` section over them,
    and objective ``{charbonnier: 1.0, **extra_terms}``."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = model
    ft = {k: v for k, v in cfg.get("finetune", {}).items() if k not in {"extra_terms", "combos", "model"}}
    out["train"] = deep_merge(cfg["train"], ft)
    if train_overrides:
        out["train"] = deep_merge(out["train"], train_overrides)
    objective = {"charbonnier": 1.0}
    objective.update(copy.deepcopy(dict(extra_terms)))
    out["train"]["objective"] = objective
    out["experiment"] = name or finetune_name(model, extra_terms)
    return out


def finetune_name(model: str, extra_terms: Mapping[str, Any]) -> str:
    """Default experiment name of a fine-tune: ``ft-<model>-<slug of the extra terms>``."""
    return f"ft-{model}-{slug(extra_terms)}"


def run_dir(cfg: Mapping[str, Any]) -> Path:
    """Run folder of a resolved experiment config."""
    return profile_root(cfg) / str(cfg["experiment"])


def ensure_run(cfg: Mapping[str, Any], *, init_from: Path | None = None, progress: bool = True) -> Path:
    """Train ``cfg`` unless its run folder is already done; resume it when interrupted."""
    from .train import train

    return train(dict(cfg), run_dir(cfg), init_from=init_from, progress=progress)


def ensure_baseline(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> Path:
    """The Charbonnier baseline of ``model`` (trained on first use, cached afterwards)."""
    return ensure_run(baseline_config(cfg, model), progress=progress)


def ensure_finetune(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *,
                    name: str | None = None, train_overrides: Mapping[str, Any] | None = None,
                    baseline: Path | None = None, progress: bool = True) -> Path:
    """A fine-tune of ``model``'s baseline (or of the run ``baseline``) with ``extra_terms`` added
    to Charbonnier."""
    base = baseline or ensure_baseline(cfg, model, progress=progress)
    ft = finetune_config(cfg, model, extra_terms, name=name, train_overrides=train_overrides)
    return ensure_run(ft, init_from=base, progress=progress)


def finetune_grid(cfg: Mapping[str, Any]) -> dict[str, dict]:
    """The profile's fine-tuning grid: label -> extra terms (each term alone, then the combos)."""
    ft = cfg.get("finetune", {})
    grid: dict[str, dict] = {}
    for name, weight in (ft.get("extra_terms") or {}).items():
        if weight is not None:  # null = left out (lets a profile drop a term of its base)
            grid[name] = {name: weight}
    for combo in ft.get("combos") or []:
        grid[term_label(combo)] = dict(combo)
    return grid


# --------------------------------------------------------------------------- evaluation glue

_TEST_SETS: dict[str, list] = {}


def test_set(cfg: Mapping[str, Any]) -> list[dict]:
    """The profile's held-out clips (``nriqa.data.build_test_set``), built once per process."""
    import json

    from .data import build_test_set

    key = json.dumps(cfg["data"], sort_keys=True, default=str)
    if key not in _TEST_SETS:
        _TEST_SETS[key] = build_test_set(dict(cfg["data"]))
    return _TEST_SETS[key]


def dataset_label(cfg: Mapping[str, Any]) -> str:
    return f"{cfg['data'].get('source', 'embedded')}-test"


def evaluate_runs(cfg: Mapping[str, Any], runs: Mapping[str, Path], *, model: str,
                  panel: list[str] | None = None) -> "pd.DataFrame":
    """Tidy panel scores (run, model, dataset, clip, frame, measure, score) of every run; cached
    per (run, dataset, measure) under ``<profile>/eval-cache``."""
    import pandas as pd

    from .analysis import evaluate
    from .config import resolve_device

    frames = []
    for label, rdir in runs.items():
        frames.append(evaluate(rdir, test_set(cfg), panel or cfg["panel"], run=label, model=model,
                               dataset=dataset_label(cfg), cache_dir=profile_root(cfg) / "eval-cache",
                               device=resolve_device(cfg.get("device")), progress=False))
    return pd.concat(frames, ignore_index=True)


def mean_gain(scores: "pd.DataFrame", baseline: str = "baseline", exclude: Mapping[str, list] | None = None) -> dict:
    """Run -> mean relative gain over the panel measures (``exclude[run]``: measures left out, e.g.
    the run's own loss measure, so the value is judged by held-out measures only)."""
    from .analysis import relative_gain

    gains = relative_gain(scores, baseline=baseline, by=("measure",))
    out = {}
    for run, rows in gains.groupby("run"):
        drop = set((exclude or {}).get(run, []))
        kept = rows[~rows["measure"].isin(drop)]
        out[run] = float(kept["gain"].mean())
    return out


def save_table(df: "pd.DataFrame", cfg: Mapping[str, Any], name: str) -> Path:
    """Write ``df`` to ``<profile>/tables/<name>.csv`` atomically."""
    from .paths import atomic_path

    target = profile_root(cfg) / "tables" / f"{name}.csv"
    with atomic_path(target) as tmp:
        df.to_csv(tmp)
    return target


def run_outputs(cfg: Mapping[str, Any], runs: Mapping[str, Path]) -> dict[str, dict[str, "torch.Tensor"]]:
    """``{run: {clip: (T,3,H,W)}}`` output frames on the test clips, plus ``"ground truth"``."""
    import torch

    from .train import load_generator

    clips = test_set(cfg)
    out: dict[str, dict] = {"ground truth": {c["name"]: c["hr"][0] for c in clips}}
    for label, rdir in runs.items():
        gen = load_generator(rdir, device="cpu")
        with torch.no_grad():
            out[label] = {c["name"]: gen(c["lr"])[0].clamp(0, 1) for c in clips}
    return out


ARTIFACTS = ("chroma_noise", "edge_artifacts", "blur")


def artifact_table(outputs: Mapping[str, Mapping[str, "torch.Tensor"]]) -> "pd.DataFrame":
    """Rows = runs, columns = artifact measures (mean over clips and frames; higher = more artifact)."""
    import pandas as pd

    from .analysis.artifacts import measure_artifacts

    gt = outputs["ground truth"]
    rows = {}
    for label, clips in outputs.items():
        if label == "ground truth":
            continue
        per = {m: [] for m in ARTIFACTS}
        for name, frames in clips.items():
            for m, v in measure_artifacts(frames, gt[name], ARTIFACTS).items():
                per[m].append(v.float().mean().item())
        rows[label] = {m: sum(v) / len(v) for m, v in per.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(ARTIFACTS)]


def worst_run(artifacts: "pd.DataFrame", measure: str) -> str:
    """The run (baseline excluded when others exist) with the highest value of ``measure``."""
    col = artifacts[measure]
    others = col.drop(index="baseline", errors="ignore")
    return str((others if len(others) else col).idxmax())


def worst_clip(outputs: Mapping[str, Mapping[str, "torch.Tensor"]], run: str, measure: str) -> str:
    """The test clip on which ``run`` scores highest on artifact ``measure``."""
    from .analysis.artifacts import measure_artifacts

    gt = outputs["ground truth"]
    vals = {name: measure_artifacts(fr, gt[name], [measure])[measure].float().mean().item()
            for name, fr in outputs[run].items()}
    return max(vals, key=vals.get)


def describe_artifacts(artifacts: "pd.DataFrame") -> str:
    """One measured sentence per artifact measure: which run has most of it vs the baseline."""
    lines = []
    for m in ARTIFACTS:
        run = worst_run(artifacts, m)
        base = artifacts.loc["baseline", m] if "baseline" in artifacts.index else float("nan")
        lines.append(f"{m}: highest in {run!r} ({artifacts.loc[run, m]:.3f} vs baseline {base:.3f})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- kit NR-IQA models

def ensure_kit_iqa(cfg: Mapping[str, Any], *, progress: bool = True) -> "pd.DataFrame":
    """Train (or load) the profile's kit NR-IQA models on the embedded distortion set and register
    them as ``<arch>@embedded`` measures. Returns their held-out SRCC/PLCC/KRCC, size and time."""
    import pandas as pd

    from .iqa import register_kit_models, train_iqa

    rows = []
    for arch in cfg["iqa"]["models"]:
        m = train_iqa(arch, dict(cfg), profile_root(cfg) / "iqa" / arch, progress=progress)
        overall = m["held_out"]["overall"]
        rows.append({"measure": m["name"], "params": m["params"], "train_s": m["train_seconds"],
                     "steps": m["steps"], **{k: overall[k] for k in ("srcc", "plcc", "krcc")}})
    register_kit_models()
    return pd.DataFrame(rows).set_index("measure")


# --------------------------------------------------------------------------- gradient weights (nb 04)

def probe_batches(cfg: Mapping[str, Any], n: int) -> list[dict]:
    """``n`` training batches not used by any training step count (steps 10**6 + i)."""
    from .data import build_train_sampler

    sampler = build_train_sampler(dict(cfg["data"]), seed=int(cfg.get("seed", 0)))
    return [sampler.batch(10**6 + i) for i in range(n)]


def measure_term_gradients(cfg: Mapping[str, Any], run: Path, spec: Mapping[str, float]) -> dict:
    """Per-term gradient norms (w.r.t. parameters and output frames) and cosines at ``run``'s
    checkpoint, on the profile's probe batches (``weights.probe_batches``)."""
    from .losses import Objective
    from .train import load_generator
    from .train.balance import measure_gradients

    model = load_generator(run, ema=True, device="cpu").train()
    for p in model.parameters():
        p.requires_grad_(True)
    objective = Objective(dict(spec))
    return measure_gradients(model, objective, probe_batches(cfg, int(cfg["weights"]["probe_batches"])))


def weighting_specs(cfg: Mapping[str, Any], spec: Mapping[str, float], grads: Mapping[str, Any]) -> dict[str, dict]:
    """The three weightings of one combination: ``hand`` (the profile's fine-tuning weights),
    ``static`` (from measured gradient norms), ``online`` (balanced during training)."""
    from .train.balance import static_weights

    w = cfg["weights"]
    hand_table = cfg["finetune"].get("extra_terms", {})
    hand = {k: 1.0 if k == w["reference"] else float(hand_table.get(k) or v) for k, v in spec.items()}
    static = static_weights(grads["param_norm"], w["reference"], float(w["target_share"]),
                            weights={k: 1.0 for k in spec})
    online = {**{k: 1.0 for k in spec}, "weights": "gradnorm"}
    return {"hand": hand, "static": static, "online": online}


def final_weights(run: Path, spec: Mapping[str, Any]) -> dict[str, float]:
    """The term weights of ``run``'s last log row (an online-balanced run's weights at its end);
    ``spec``'s values where the log has none."""
    from .train.runs import read_log_rows

    last = next((r for r in reversed(read_log_rows(run)) if any(k.startswith("weight/") for k in r)), {})
    return {k: float(last.get(f"weight/{k}", v)) for k, v in spec.items() if k != "weights"}


def weighting_comparison(cfg: Mapping[str, Any], model: str, baseline: Path,
                         grads: Mapping[str, Mapping[str, Any]], *, progress: bool = True) -> "pd.DataFrame":
    """Fine-tune every combination of ``weights.combos`` with the three weightings; evaluate each
    with the panel (mean relative gain over the baseline) and the artifact measures."""
    import pandas as pd

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


def describe_weighting(comparison: "pd.DataFrame") -> str:
    lines = []
    for combo, rows in comparison.groupby("combo"):
        best = rows.loc[rows["mean_gain"].idxmax()]
        parts = ", ".join(f"{r.weighting} {r.mean_gain:+.3f}" for r in rows.itertuples())
        lines.append(f"{combo}: mean panel gain {parts} -> best: {best['weighting']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- adversarial (nb 05)

def _fidelity_terms(cfg: Mapping[str, Any]) -> dict:
    return {k: v for k, v in cfg["adversarial"]["fidelity"].items() if k not in {"charbonnier", "pixel"}}


def gan_terms(cfg: Mapping[str, Any], discriminator: str, weight: float,
              fidelity: Mapping[str, Any] | None = None) -> dict:
    """Extra terms of an adversarial fine-tune: ``fidelity`` (default: the profile's fidelity
    terms besides Charbonnier) plus a GAN term."""
    a = cfg["adversarial"]
    terms = dict(_fidelity_terms(cfg) if fidelity is None else fidelity)
    terms["gan"] = {"weight": float(weight), "discriminator": discriminator, "loss": a["gan_loss"],
                    "size": a.get("size", "tiny")}
    return terms


def _gan_overrides(cfg: Mapping[str, Any]) -> dict:
    a = cfg["adversarial"]
    return {"steps": int(a["steps"]), "schedule": {"periods": [int(a["steps"])]}, "d_lr": float(a["d_lr"])}


def ensure_gan_run(cfg: Mapping[str, Any], model: str, discriminator: str, weight: float, *,
                   progress: bool = True) -> Path:
    return ensure_finetune(cfg, model, gan_terms(cfg, discriminator, weight),
                           name=f"gan-{model}-{discriminator}-w{weight:g}",
                           train_overrides=_gan_overrides(cfg), progress=progress)


def fr_measures(names: list[str]) -> list[str]:
    """The full-reference measures among ``names`` (they judge faithfulness to the ground truth)."""
    from . import quality

    return [n for n in names if quality.card(n).mode.upper() == "FR"]


def fr_gain(scores: "pd.DataFrame", baseline: str) -> dict:
    """Run -> mean relative gain over ``baseline`` on the full-reference panel measures only."""
    fr = fr_measures(sorted(set(scores["measure"])))
    return mean_gain(scores[scores["measure"].isin(fr)], baseline=baseline)


def reseeded(cfg: Mapping[str, Any]) -> dict:
    """``cfg`` with the next seed: the same experiment with other sampled batches (seed noise)."""
    out = copy.deepcopy(dict(cfg))
    out["seed"] = int(cfg.get("seed", 0)) + 1
    return out


def ensure_reseeded_finetune(cfg: Mapping[str, Any], model: str, extra_terms: Mapping[str, Any], *, name: str,
                             train_overrides: Mapping[str, Any] | None = None, progress: bool = True) -> Path:
    """The fine-tune ``name`` repeated with the next seed (run ``<name>-seed<k>``), starting from
    the same baseline as the original (only the fine-tune's batches and initial noise differ)."""
    base = ensure_baseline(cfg, model, progress=progress)
    other = reseeded(cfg)
    return ensure_finetune(other, model, extra_terms, name=f"{name}-seed{other['seed']}",
                           train_overrides=train_overrides, baseline=base, progress=progress)


def fidelity_runs(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> dict[str, Path]:
    """The fidelity-only fine-tune (GAN-run steps, no GAN) and its reseeded repeat."""
    over = _gan_overrides(cfg)
    name = f"gan-{model}-fidelity-only"
    return {"fidelity": ensure_finetune(cfg, model, _fidelity_terms(cfg), name=name,
                                        train_overrides=over, progress=progress),
            "fidelity (reseeded)": ensure_reseeded_finetune(cfg, model, _fidelity_terms(cfg), name=name,
                                                            train_overrides=over, progress=progress)}


def adversarial_grid(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> "pd.DataFrame":
    """Fine-tune ``fidelity + w * GAN`` for every discriminator kind and GAN weight; one row per
    run with the mean panel relative gain over the baseline (``mean_gain``), over the
    fidelity-only fine-tune (``gain_vs_fidelity``: the adversarial term's effect), the same on the
    full-reference measures only (``fr_gain_vs_fidelity``: faithful detail), and the artifact
    measures. ``attrs``: ``fidelity_gain``, and the seed noise ``noise`` / ``fr_noise`` (|gain| of
    the reseeded fidelity-only run over the fidelity-only run)."""
    import pandas as pd

    a = cfg["adversarial"]
    runs = {"baseline": ensure_baseline(cfg, model, progress=progress), **fidelity_runs(cfg, model, progress=progress)}
    meta = {}
    for disc in a["discriminators"]:
        for w in a["gan_weights"]:
            label = f"{disc} w={w:g}"
            runs[label] = ensure_gan_run(cfg, model, disc, w, progress=progress)
            meta[label] = {"discriminator": disc, "gan_weight": float(w)}
    scores = evaluate_runs(cfg, runs, model=model)
    gains = mean_gain(scores)
    fid = mean_gain(scores, baseline="fidelity")
    fid_fr = fr_gain(scores, baseline="fidelity")
    arts = artifact_table(run_outputs(cfg, runs))
    rows = [{"run": r, **m, "mean_gain": gains[r], "gain_vs_fidelity": fid[r], "fr_gain_vs_fidelity": fid_fr[r],
             **arts.loc[r].to_dict()} for r, m in meta.items()]
    out = pd.DataFrame(rows)
    out.attrs.update(fidelity_gain=gains["fidelity"], noise=abs(fid["fidelity (reseeded)"]),
                     fr_noise=abs(fid_fr["fidelity (reseeded)"]))
    return out


def artifact_suppression(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> "pd.DataFrame":
    """The NR-IQA fine-tune ``adversarial.artifact_term`` (notebook 02's run), the same plus the GAN
    term ``adversarial.artifact_gan`` (same steps), and the first repeated with another seed.
    Rows = those three runs, columns = artifact measures and ``mean_gain`` over the baseline."""
    a = cfg["adversarial"]
    term = {k: v for k, v in a["artifact_term"].items() if v is not None}  # null drops a base term
    gan = dict(a["artifact_gan"])
    runs = {"baseline": ensure_baseline(cfg, model, progress=progress),
            "without GAN": ensure_finetune(cfg, model, term, progress=progress),
            "with GAN": ensure_finetune(cfg, model, gan_terms(cfg, gan["discriminator"], gan["weight"], term),
                                        name=f"gan-{model}-{gan['discriminator']}-w{float(gan['weight']):g}+{slug(term)}",
                                        train_overrides={"d_lr": float(a["d_lr"])}, progress=progress),
            "without GAN (reseeded)": ensure_reseeded_finetune(cfg, model, term, name=finetune_name(model, term),
                                                               progress=progress)}
    gains = mean_gain(evaluate_runs(cfg, runs, model=model))
    table = artifact_table(run_outputs(cfg, runs))
    table["mean_gain"] = [gains.get(r, 0.0) for r in table.index]
    table.attrs["term"] = term_label(term)
    return table


def describe_adversarial(grid: "pd.DataFrame") -> str:
    by_disc = grid.groupby("discriminator")["gain_vs_fidelity"].mean().sort_values(ascending=False)
    lines = [f"fidelity-only fine-tune: mean panel gain {grid.attrs.get('fidelity_gain', float('nan')):+.4f} over the baseline",
             f"seed noise (reseeded fidelity-only vs fidelity-only): {grid.attrs.get('noise', float('nan')):.4f} "
             f"(full-reference measures: {grid.attrs.get('fr_noise', float('nan')):.4f})",
             "mean gain of adding the GAN term (vs fidelity-only), averaged over GAN weights:"]
    lines += [f"  {d}: {v:+.4f}" for d, v in by_disc.items()]
    conv = by_disc.drop(index=[d for d in by_disc.index if d == "vit"], errors="ignore")
    if "vit" in by_disc.index and len(conv):
        lines.append(f"convolutional kinds mean {conv.mean():+.4f} vs Transformer (vit) {by_disc['vit']:+.4f}")
    return "\n".join(lines)


def middle_gan_weight(cfg: Mapping[str, Any]) -> float:
    """The middle of ``adversarial.gan_weights`` (the upper middle for an even count)."""
    w = sorted(float(v) for v in cfg["adversarial"]["gan_weights"])
    return w[len(w) // 2]


def discriminator_transfer(cfg: Mapping[str, Any], model: str, *, progress: bool = True) -> "pd.DataFrame":
    """NR-IQA from each trained discriminator's backbone vs the same architecture from random
    initialisation, on the embedded distortion set (held-out SRCC/PLCC/KRCC)."""
    import pandas as pd
    import torch

    from .iqa import train_iqa

    a = cfg["adversarial"]
    w = middle_gan_weight(cfg)
    rows = []
    for disc in a["discriminators"]:
        run = ensure_gan_run(cfg, model, disc, w, progress=progress)
        ckpt = torch.load(run / "checkpoints" / "latest.pt", map_location="cpu", weights_only=False)
        d_state = ckpt.get("discriminator") or ckpt.get("params_d")
        for init, source in [("random", None), ("discriminator", d_state)]:
            icfg = dict(cfg)
            icfg["iqa"] = {**cfg["iqa"], "steps": int(a.get("transfer_steps", cfg["iqa"]["steps"]))}
            m = train_iqa(f"disc-{disc}", icfg, profile_root(cfg) / "iqa-transfer" / f"{disc}-{init}",
                          init_from=source, progress=progress, install=False)
            o = m["held_out"]["overall"]
            rows.append({"discriminator": disc, "init": init, "srcc": o["srcc"], "plcc": o["plcc"],
                         "krcc": o["krcc"], "loaded_tensors": m["init_loaded_tensors"]})
    return pd.DataFrame(rows)


def describe_transfer(transfer: "pd.DataFrame") -> str:
    piv = transfer.pivot_table(index="discriminator", columns="init", values="srcc")
    lines = [f"{d}: SRCC random {r['random']:.3f} -> from discriminator {r['discriminator']:.3f} "
             f"({r['discriminator'] - r['random']:+.3f})" for d, r in piv.iterrows()]
    lines.append(f"mean change from discriminator initialisation: {(piv['discriminator'] - piv['random']).mean():+.3f} SRCC")
    return "\n".join(lines)


# --------------------------------------------------------------------------- asymmetry (nb 06)

def held_out_iqa_set(cfg: Mapping[str, Any]):
    """The held-out part of the embedded distortion set, cut to the first
    ``asymmetry.max_sources`` sources (every distortion of each, so SRCC stays within-content)."""
    import numpy as np

    from .iqa import distortion_set

    iqa = cfg.get("iqa", {})
    ds = distortion_set("test", crop=int(iqa.get("crop", 96)), max_sources=iqa.get("max_sources"),
                        progress=False)  # the same set the kit models were tested on
    k = cfg.get("asymmetry", {}).get("max_sources")
    if not k:
        return ds
    keep = set(sorted(set(ds.sources))[: int(k)])
    return ds.subset(np.flatnonzero([s in keep for s in ds.sources]))


def assessment_accuracies(cfg: Mapping[str, Any], measures: list[str] | None = None) -> dict[str, dict]:
    """Measure -> SRCC/PLCC/KRCC on the held-out embedded distortion set (labels: FR pseudo-score)."""
    from . import quality
    from .analysis import assessment_accuracy

    held_out = held_out_iqa_set(cfg)
    out = {}
    for name in measures or cfg["asymmetry"]["measures"]:
        if not quality.card(name).present:
            continue
        out[name] = assessment_accuracy(name, held_out)
    return out


def optimization_values(cfg: Mapping[str, Any]) -> dict[str, float]:
    """Measure -> mean relative gain of the *other* panel measures when it is added to Charbonnier
    (notebook 02's single-term fine-tunes of ``finetune.model``)."""
    model = cfg["finetune"]["model"]
    singles = {n: t for n, t in finetune_grid(cfg).items() if len(t) == 1 and n in cfg["asymmetry"]["measures"]}
    runs = {"baseline": ensure_baseline(cfg, model)}
    runs.update({n: ensure_finetune(cfg, model, t) for n, t in singles.items()})
    scores = evaluate_runs(cfg, runs, model=model)
    gains = mean_gain(scores, exclude={n: [n] for n in singles})
    return {n: gains[n] for n in singles}


def describe_asymmetry(table: "pd.DataFrame") -> str:
    from .analysis import asymmetry_correlation

    t = table.set_index("measure")
    best_a, best_o = t["srcc"].idxmax(), t["gain"].idxmax()
    text = (f"Best assessor: {best_a} (SRCC {t.loc[best_a, 'srcc']:.3f}); "
            f"best objective: {best_o} (held-out panel gain {t.loc[best_o, 'gain']:+.4f}).")
    try:
        rho, p = asymmetry_correlation(table)
    except ValueError as err:  # fewer than 3 measures (e.g. the smoke profile)
        return f"{text} No rank correlation: {err}."
    return (f"Spearman rank correlation between assessment SRCC and optimization gain: {rho:+.3f} "
            f"(p = {p:.3f}, n = {len(table)}). {text}")


def seed_noise(cfg: Mapping[str, Any], model: str) -> float:
    """|mean panel gain| of the reseeded fidelity-only fine-tune over the fidelity-only one."""
    runs = fidelity_runs(cfg, model)
    return abs(mean_gain(evaluate_runs(cfg, runs, model=model), baseline="fidelity")["fidelity (reseeded)"])


def adversarial_fidelity(cfg: Mapping[str, Any], model: str, assess: Mapping[str, Mapping[str, float]], *,
                         progress: bool = True) -> "pd.DataFrame":
    """Under adversarial training, is a good assessor a good fidelity term? For each measure of
    ``asymmetry.adversarial_fidelity`` (``{name: weight}``): fine-tune Charbonnier + measure + GAN
    (``asymmetry.discriminator`` at the middle GAN weight, GAN-run steps) and compare with
    Charbonnier + GAN on the panel without that measure.

    Returns rows ``measure, srcc`` (from ``assess``), ``gain_vs_charbonnier_gan``."""
    import pandas as pd

    disc, w = cfg["asymmetry"]["discriminator"], middle_gan_weight(cfg)
    runs = {"charbonnier + GAN": ensure_gan_run(cfg, model, disc, w, progress=progress)}
    measures = {k: v for k, v in cfg["asymmetry"]["adversarial_fidelity"].items() if v is not None}
    for name, weight in measures.items():
        terms = gan_terms(cfg, disc, w, {**_fidelity_terms(cfg), name: weight})
        runs[name] = ensure_finetune(cfg, model, terms, name=f"gan-{model}-{disc}-w{w:g}+{slug({name: weight})}",
                                     train_overrides=_gan_overrides(cfg), progress=progress)
    scores = evaluate_runs(cfg, runs, model=model)
    rows = [{"measure": name, "srcc": assess.get(name, {}).get("srcc", float("nan")),
             "gain_vs_charbonnier_gan": mean_gain(scores[scores["measure"] != name], baseline="charbonnier + GAN")[name]}
            for name in measures]
    return pd.DataFrame(rows)


def fidelity_family(cfg: Mapping[str, Any]) -> "pd.DataFrame":
    """DISTS-style measures over different backbones: assessment SRCC on the held-out distortion
    set where the backbone is on disk; missing weight files listed instead."""
    import pandas as pd

    from . import quality

    rows = []
    for name in [n for n in quality.names() if n.startswith("dists-")]:
        card = quality.card(name)
        if card.present:
            acc = assessment_accuracies(cfg, [name])[name]
            rows.append({"measure": name, "srcc": acc["srcc"], "plcc": acc["plcc"], "missing": ""})
        else:
            missing = ", ".join(w.filename for w in card.weights)
            rows.append({"measure": name, "srcc": float("nan"), "plcc": float("nan"), "missing": missing})
    return pd.DataFrame(rows).set_index("measure")
