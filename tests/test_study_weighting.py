"""nriqa.study.weighting (notebook 04): hand-set, static and online gradient-balanced weights over
seeds, their held-out verdicts and sentences."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from nriqa.config import load_profile
from nriqa.errors import ConfigError
from nriqa.study import runs, weighting
from nriqa.study.weighting import final_weights


def test_describe_weighting_names_the_best_weighting_per_combo():
    comp = pd.DataFrame({"combo": ["a", "a", "a"], "weighting": ["hand", "static", "online"],
                         "mean_gain": [0.01, -0.02, 0.03]})
    assert weighting.describe_weighting(comp) == (
        "a: mean panel gain hand +1.00 %, static -2.00 %, online +3.00 % -> best: online")


def test_weighting_arms_run_every_seed_and_the_hand_arm_is_notebook_02s_fine_tune(tmp_path):
    cfg = runs.profile("demo", run_root=str(tmp_path))
    cfg["weights"].pop("weightings", None)                             # all three (the default)
    base = tmp_path / "demo" / "baseline-basicvsrpp-s0-00000000"
    grads = {runs.term_label(c): {"param_norm": {k: 1.0 for k in c}} for c in cfg["weights"]["combos"]}
    arms, meta = weighting.weighting_arms(cfg, "basicvsrpp", base, grads)
    combos = [runs.term_label(c) for c in cfg["weights"]["combos"]]
    assert set(arms) == {weighting.arm_label(c, k) for c in combos for k in ("hand", "static", "online")}
    assert all(sorted(jobs) == runs.seeds(cfg) for jobs in arms.values()) and len(runs.seeds(cfg)) == 3
    grid = runs.finetune_grid(cfg)
    for c in combos:
        hand = arms[weighting.arm_label(c, "hand")]
        assert weighting.arm_label(c, "hand") == c                       # notebook 02's label (eval cache)
        if c in grid:                                                  # the same folders as notebook 02's arm
            nb02 = runs.arm_jobs(cfg, "basicvsrpp", grid[c], baseline=base)
            assert {s: runs.run_name(*j) for s, j in hand.items()} == {s: runs.run_name(*j) for s, j in nb02.items()}
        online = arms[weighting.arm_label(c, "online")]
        assert {j[0]["seed"] for j in online.values()} == set(runs.seeds(cfg))
        assert all(runs.run_name(*j).startswith("w-basicvsrpp-online-") for j in online.values())
        static = meta[weighting.arm_label(c, "static")]
        assert static["measures"] == [k for k in grads[c]["param_norm"] if k != "charbonnier"]


def _weighting_scores(effects: dict, seeds=(0, 1, 2), clips=("a", "b", "c", "d")) -> pd.DataFrame:
    """Tidy scores of a baseline and arms: psnr 30 dB x (1 + effect + noise), cnniqa (the arms'
    own term) +50 % for every arm."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [{"run": "baseline", "seed": 0, "clip": c, "measure": m, "score": 30.0 if m == "psnr" else 1.0}
            for c in clips for m in ("psnr", "cnniqa@embedded")]
    for run, eff in effects.items():
        for s in seeds:
            for c in clips:
                rows.append({"run": run, "seed": s, "clip": c, "measure": "psnr",
                             "score": 30.0 * (1 + eff + 1e-4 * rng.standard_normal())})
                rows.append({"run": run, "seed": s, "clip": c, "measure": "cnniqa@embedded", "score": 1.5})
    return pd.DataFrame(rows).assign(model="m", dataset="d", frame=0)


def test_weighting_verdicts_judge_the_held_out_panel_over_seeds_and_clips():
    from nriqa.analysis import claims

    combo = "cnniqa@embedded"
    labels = {k: weighting.arm_label(combo, k) for k in ("hand", "static", "online")}
    scores = _weighting_scores({labels["hand"]: 0.05, labels["static"]: 0.0, labels["online"]: 0.08})
    meta = {lab: {"combo": combo, "weighting": k, "measures": [combo]} for k, lab in labels.items()}
    held = weighting.held_out_gains(scores, meta)
    # the arms' own term (+50 % for all) is left out: only psnr judges them
    g = held[combo].groupby("run")["gain"].mean()
    assert g[labels["hand"]] == pytest.approx(0.05, abs=1e-3) and g[labels["static"]] == pytest.approx(0, abs=1e-3)
    out = {v.claim: v for v in weighting.weighting_verdicts(held, claims.Settings(n_boot=300, seed=0))}
    assert len(out) == 5 and all(v.n == "3 seeds x 4 clips" for v in out.values())
    assert out[f"hand-set weights of {combo} improve the held-out panel"].verdict == claims.AGREES
    more = "weights of {} improve the held-out panel more than the hand-set weights"
    assert out["static gradient-balanced " + more.format(combo)].verdict == claims.DISAGREES
    assert out["online gradient-balanced " + more.format(combo)].verdict == claims.AGREES
    unchanged = "gradient-balanced weights of {} leave the held-out panel unchanged"
    assert out["static " + unchanged.format(combo)].verdict == claims.EQUIVALENT
    assert out["online " + unchanged.format(combo)].verdict == claims.DISAGREES


def test_describe_weighting_gives_held_out_gains_with_intervals():
    comp = pd.DataFrame({"combo": ["a", "a"], "weighting": ["hand", "static"], "mean_gain": [0.0, 0.0],
                         "held_out_gain": [0.02, -0.01], "lo": [0.01, float("nan")], "hi": [0.03, float("nan")],
                         "n": ["3 seeds x 3 clips"] * 2})
    assert weighting.describe_weighting(comp) == ("a: held-out panel gain (3 seeds x 3 clips) hand +2.00 % "
                                                  "[+1.00 %, +3.00 %], static -1.00 % -> highest: hand")


def test_weights_weightings_leaves_a_weighting_out_and_refuses_unknown_names(tmp_path):
    cfg = runs.profile("demo", run_root=str(tmp_path))
    assert weighting.weightings({"weights": {}}) == ["hand", "static", "online"]
    cfg["weights"]["weightings"] = ["static", "hand"]
    grads = {runs.term_label(c): {"param_norm": {k: 1.0 for k in c}} for c in cfg["weights"]["combos"]}
    arms, meta = weighting.weighting_arms(cfg, "basicvsrpp", tmp_path / "b", grads)
    assert {m["weighting"] for m in meta.values()} == {"hand", "static"}
    assert len(arms) == 2 * len(cfg["weights"]["combos"])
    for bad in (["gradnorm"], [], "hand", ["hand", "hand"]):
        cfg["weights"]["weightings"] = bad
        with pytest.raises(ConfigError, match="weights.weightings"):
            weighting.weightings(cfg)


def test_final_weights_reads_the_last_logged_weights(tmp_path):
    rows = [{"step": 10, "weight/charbonnier": 1.0, "weight/niqe": 1.0},
            {"step": 20, "weight/charbonnier": 1.0, "weight/niqe": 0.031},
            {"step": 20, "d_loss": 0.5}]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = {"charbonnier": 1.0, "niqe": 1.0, "weights": "gradnorm"}
    assert final_weights(tmp_path, spec) == {"charbonnier": 1.0, "niqe": 0.031}
    assert final_weights(tmp_path / "missing", spec) == {"charbonnier": 1.0, "niqe": 1.0}


def test_weighting_specs_hand_static_and_online():
    cfg = load_profile("demo")
    spec = {"charbonnier": 1.0, "cnniqa@embedded-a": 1.0}
    grads = {"param_norm": {"charbonnier": 2.0, "cnniqa@embedded-a": 0.5}}
    specs = weighting.weighting_specs(cfg, spec, grads)
    assert specs["hand"] == {"charbonnier": 1.0,
                             "cnniqa@embedded-a": cfg["finetune"]["extra_terms"]["cnniqa@embedded-a"]}
    share = cfg["weights"]["target_share"]
    # weighted quality-term gradient = share x reference's weighted gradient
    assert specs["static"]["cnniqa@embedded-a"] * 0.5 == pytest.approx(share * 1.0 * 2.0)
    assert specs["static"]["charbonnier"] == 1.0
    assert specs["online"]["weights"] == "gradnorm"


def test_held_out_seed_gains_are_the_seeds_behind_the_figure():
    """Notebook 04's figure draws each seed's held-out gain (mean over clips) beside the mean."""
    combo = "cnniqa@embedded"
    labels = {k: weighting.arm_label(combo, k) for k in ("hand", "static")}
    scores = _weighting_scores({labels["hand"]: 0.05, labels["static"]: 0.0})
    meta = {lab: {"combo": combo, "weighting": k, "measures": [combo]} for k, lab in labels.items()}
    seeds = weighting.held_out_seed_gains(weighting.held_out_gains(scores, meta), meta)
    assert list(seeds.columns) == ["combo", "weighting", "seed", "gain"] and len(seeds) == 6
    hand = seeds[seeds["weighting"] == "hand"]
    assert sorted(hand["seed"]) == [0, 1, 2] and hand["gain"].to_numpy() == pytest.approx([0.05] * 3, abs=1e-3)
