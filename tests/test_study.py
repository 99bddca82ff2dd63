"""The study's core: run names, run configs, cached-training call order, gains and prose, on
constructed inputs (no training: the trainer is replaced by a recorder)."""
from __future__ import annotations

import ast
import copy
from pathlib import Path

import pandas as pd
import pytest
import torch

from nriqa.errors import ConfigError
from nriqa.study import artifact_sources as artifacts
from nriqa.study import assess_vs_optimize as asymmetry
from nriqa.study import baseline, finetuning, runs, weighting
from nriqa.study import discriminator_choice as adversarial
from nriqa.study import judging as evaluation

NRIQA = Path(runs.__file__).resolve().parents[1]


def _cfg(**extra) -> dict:
    cfg = {"name": "toy", "run_root": "/tmp/toy-runs", "seed": 3,
           "train": {"steps": 100, "optimizer": {"lr": 1e-3}, "ema_decay": 0.999},
           "finetune": {"model": "basicvsrpp", "steps": 10, "optimizer": {"lr": 1e-4},
                        "extra_terms": {"niqe": 0.02, "gmsd": None, "lpips": 1.0},
                        "combos": [{"cnniqa@embedded": 0.2, "lpips": 1.0}]},
           "adversarial": {"fidelity": {"charbonnier": 1.0, "dists": 0.5}, "gan_loss": "hinge",
                           "steps": 7, "d_lr": 2e-4, "gan_weights": [0.05, 0.001, 0.01]}}
    cfg.update(extra)
    return cfg


# --------------------------------------------------------------------------- names

def test_slug_names_extra_terms_with_weights_and_only_safe_characters():
    assert runs.slug({"charbonnier": 1.0, "niqe": 0.02, "lpips": 1}) == "niqex0.02+lpipsx1"
    assert runs.slug({"pixel": 1.0}) == "charbonnier"
    assert runs.slug({}) == "charbonnier"
    assert runs.slug({"gan": {"weight": 0.05, "discriminator": "vit"}}) == "ganx0.05"
    assert runs.slug({"gan": {"discriminator": "vit"}}) == "gan"            # no numeric weight: name only
    assert runs.slug({"a b/c": 2.5}) == "a_b_cx2.5"
    assert runs.slug({"cnniqa@embedded": 1e-5}) == "cnniqa@embeddedx1e-05"


def test_term_label_and_finetune_name():
    assert runs.term_label({"pixel": 1, "weights": "gradnorm"}) == "charbonnier"
    assert runs.term_label({"cnniqa@embedded": 0.2, "lpips": 1.0}) == "cnniqa@embedded + lpips"
    assert runs.finetune_name("vrt", {"charbonnier": 1.0, "niqe": 0.02}) == "ft-vrt-niqex0.02"


def test_profile_root_and_run_dir(monkeypatch, tmp_path):
    cfg = runs.baseline_config(_cfg(run_root=str(tmp_path)), "vrt")
    assert runs.profile_root(cfg) == tmp_path / "toy"
    folder = runs.run_dir(cfg)
    assert folder.parent == tmp_path / "toy" and folder.name == f"baseline-vrt-s3-{runs.run_key(cfg)}"
    assert len(runs.run_key(cfg)) == 8


def _ft(**over) -> dict:
    cfg = runs.profile("smoke", device="cpu", run_root="/tmp/unused")
    for dotted, value in over.items():
        section, key = dotted.split("__") if "__" in dotted else (None, dotted)
        if section:
            cfg[section] = {**cfg[section], key: value}
        else:
            cfg[key] = value
    return runs.finetune_config(cfg, "basicvsrpp", {"gmsd": 0.5})


def test_run_folders_are_keyed_by_what_changes_the_result(tmp_path):
    base = tmp_path / "baseline-basicvsrpp-s0-00000000"
    same = runs.run_name(_ft(), base)
    assert same == runs.run_name(_ft(), base) and same.startswith("ft-basicvsrpp-gmsdx0.5-s0-")
    # settings that change the trained weights: a new folder each
    changed = {runs.run_name(_ft(seed=1), base), runs.run_name(_ft(finetune__steps=3), base),
               runs.run_name(runs.finetune_config(_ft(), "basicvsrpp", {"gmsd": 0.6}), base),
               runs.run_name(_ft(finetune__ema_decay=0.9), base), runs.run_name(_ft(data__lr_patch=12), base),
               runs.run_name(_ft(), tmp_path / "baseline-basicvsrpp-s1-11111111")}
    assert len(changed) == 6 and same not in changed
    # settings that do not: the same folder
    assert runs.run_name(_ft(finetune__log_every=1), base) == same
    assert runs.run_name(_ft(finetune__tensorboard=True, finetune__ckpt_every=1), base) == same
    assert runs.run_name(_ft(device="cuda", run_root=str(tmp_path)), base) == same
    assert runs.run_name(_ft(data__test_max_clips=1, panel=["psnr"]), base) == same
    # a default written out equals the default left out
    assert runs.run_name(_ft(finetune__ema_warmup=True), base) == same


def test_seeds_default_to_the_profile_seed_and_are_checked():
    assert runs.seeds({"seed": 4}) == [4] and runs.seeds({}) == [0]
    assert runs.seeds({"seed": 0, "seeds": [2, 5]}) == [2, 5]
    assert runs.noise_seeds({"seed": 4}) == [4, 5] and runs.noise_seeds({"seeds": [1, 7]}) == [1, 7]
    for bad in ([], 3, [1, 1], [0.5], [True]):
        with pytest.raises(ConfigError, match="seeds"):
            runs.seeds({"seeds": bad})
    assert runs.profile("smoke", device="cpu")["seeds"] == [0, 1]


def test_figure_dir_of_the_demo_profile_moves_to_runs_on_request(monkeypatch, tmp_path):
    cfg = _cfg(name="demo", run_root=str(tmp_path))
    monkeypatch.delenv("NRIQA_FIGURES_IN_RUNS", raising=False)
    assert runs.figure_dir(cfg) == runs.figures_dir()
    monkeypatch.setenv("NRIQA_FIGURES_IN_RUNS", "1")
    assert runs.figure_dir(cfg) == tmp_path / "demo" / "figures" and (tmp_path / "demo" / "figures").is_dir()


def test_profile_resolves_device_seed_and_run_root(tmp_path):
    cfg = runs.profile("smoke", ["train.steps=3"], device="cpu", seed=5, run_root=str(tmp_path))
    assert (cfg["device"], cfg["seed"], cfg["run_root"], cfg["train"]["steps"]) == ("cpu", 5, str(tmp_path), 3)


# --------------------------------------------------------------------------- configs

def test_baseline_config_is_charbonnier_only_and_leaves_the_profile_alone():
    cfg = _cfg()
    before = copy.deepcopy(cfg)
    base = runs.baseline_config(cfg, "vrt")
    assert base["experiment"] == "baseline-vrt" and base["model"] == "vrt"
    assert base["train"] == {**cfg["train"], "objective": {"charbonnier": 1.0}}
    assert cfg == before


def test_finetune_config_layers_finetune_knobs_then_overrides():
    cfg = _cfg()
    before = copy.deepcopy(cfg)
    ft = runs.finetune_config(cfg, "vrt", {"niqe": 0.02}, train_overrides={"steps": 4, "d_lr": 1e-3})
    assert ft["experiment"] == "ft-vrt-niqex0.02"
    assert ft["train"]["steps"] == 4 and ft["train"]["d_lr"] == 1e-3           # overrides win
    assert ft["train"]["optimizer"]["lr"] == 1e-4                              # finetune over train
    assert ft["train"]["ema_decay"] == 0.999                                   # inherited
    assert not {"extra_terms", "combos", "model"} & set(ft["train"])
    assert ft["train"]["objective"] == {"charbonnier": 1.0, "niqe": 0.02}
    assert runs.finetune_config(cfg, "vrt", {"niqe": 0.02}, name="mine")["experiment"] == "mine"
    assert cfg == before


def test_finetune_grid_drops_null_terms_and_labels_combos():
    grid = runs.finetune_grid(_cfg())
    assert list(grid) == ["niqe", "lpips", "cnniqa@embedded + lpips"]
    assert grid["niqe"] == {"niqe": 0.02} and grid["cnniqa@embedded + lpips"] == {"cnniqa@embedded": 0.2, "lpips": 1.0}
    assert runs.finetune_grid({}) == {}


def test_gan_terms_and_overrides():
    cfg = _cfg()
    assert runs.fidelity_terms(cfg) == {"dists": 0.5}
    assert runs.gan_terms(cfg, "vit", 0.01) == {
        "dists": 0.5, "gan": {"weight": 0.01, "discriminator": "vit", "loss": "hinge", "size": "tiny"}}
    own = runs.gan_terms(cfg, "unet", 1, {"niqe": 0.02})
    assert set(own) == {"niqe", "gan"} and own["gan"]["weight"] == 1.0
    assert runs.gan_overrides(cfg) == {"steps": 7, "schedule": {"periods": [7]}, "d_lr": 2e-4}
    assert runs.middle_gan_weight(cfg) == 0.01


# --------------------------------------------------------------------------- cached training: names and order

@pytest.fixture
def trained(monkeypatch, tmp_path):
    """Replace the trainer by a recorder of (experiment, seed, objective, steps, init_from)."""
    calls = []

    def fake_train(cfg, run, *, init_from=None, progress=True):
        calls.append({"experiment": cfg["experiment"], "seed": cfg.get("seed"), "run": run,
                      "objective": cfg["train"]["objective"], "steps": cfg["train"]["steps"],
                      "init_from": init_from})
        return run

    monkeypatch.setattr(runs, "train", fake_train)
    cfg = runs.profile("smoke", device="cpu", seed=0, run_root=str(tmp_path))
    return cfg, calls


def test_finetune_runs_train_the_baseline_once_then_every_arm_per_seed(trained):
    cfg, calls = trained
    cfg["seeds"] = [0, 5]
    out = runs.finetune_runs(cfg, "basicvsrpp", {"b": {"niqe": 0.5}, "a": {"gmsd": 1.0}})
    assert list(out) == ["baseline", "b", "a"]
    assert list(out["baseline"]) == [0] and list(out["b"]) == [0, 5] == list(out["a"])
    base = out["baseline"][0]
    assert base.parent == runs.profile_root(cfg) and base.name.startswith("baseline-basicvsrpp-s0-")
    fts = [c for c in calls if c["experiment"] != "baseline-basicvsrpp"]
    assert [(c["experiment"], c["seed"]) for c in fts] == [("ft-basicvsrpp-niqex0.5", 0), ("ft-basicvsrpp-niqex0.5", 5),
                                                           ("ft-basicvsrpp-gmsdx1", 0), ("ft-basicvsrpp-gmsdx1", 5)]
    assert all(c["init_from"] == base for c in fts)                       # every seed from the one baseline
    assert out["b"][5].name.startswith("ft-basicvsrpp-niqex0.5-s5-") and out["b"][0] != out["b"][5]
    assert calls[0]["experiment"] == "baseline-basicvsrpp" and calls[0]["init_from"] is None
    assert sum(c["experiment"] == "baseline-basicvsrpp" for c in calls) == 1


def test_gan_and_fidelity_runs_are_named_and_sized_from_the_adversarial_section(trained):
    cfg, calls = trained
    steps = int(cfg["adversarial"]["steps"])
    assert runs.ensure_gan_run(cfg, "vrt", "patchgan", 0.01).name.startswith("gan-vrt-patchgan-w0.01-s0-")
    assert calls[-1]["objective"]["gan"]["discriminator"] == "patchgan" and calls[-1]["steps"] == steps
    fid = runs.fidelity_runs(cfg, "vrt")
    assert list(fid) == ["fidelity"] and list(fid["fidelity"]) == runs.noise_seeds(cfg) == [0, 1]
    assert all(p.name.startswith(f"gan-vrt-fidelity-only-s{s}-") for s, p in fid["fidelity"].items())
    assert "gan" not in calls[-1]["objective"] and calls[-1]["steps"] == steps
    assert list(runs.gan_arm(cfg, "vrt", "patchgan", 0.01)) == runs.seeds(cfg)


# --------------------------------------------------------------------------- gains and tables

def _scores() -> pd.DataFrame:
    """psnr (FR, higher better) and niqe (NR, lower better) of runs baseline / a / b on two clips."""
    values = {  # run -> measure -> clip -> per-frame scores
        "baseline": {"psnr": {"c1": [20, 20], "c2": [30]}, "niqe": {"c1": [5, 5], "c2": [4]}},
        "a": {"psnr": {"c1": [21, 23], "c2": [33]}, "niqe": {"c1": [4, 4], "c2": [3]}},
        "b": {"psnr": {"c1": [18, 18], "c2": [27]}, "niqe": {"c1": [6, 6], "c2": [4]}},
    }
    rows = [{"run": run, "model": "m", "dataset": "d", "clip": clip, "frame": i, "measure": measure, "score": s}
            for run, ms in values.items() for measure, clips in ms.items()
            for clip, frames in clips.items() for i, s in enumerate(frames)]
    return pd.DataFrame(rows)


def test_mean_gain_averages_signed_relative_gains_over_measures():
    gains = evaluation.mean_gain(_scores())
    # a: psnr +0.1 on both clips; niqe (lower better) +0.2 and +0.25 -> (0.1 + 0.225) / 2
    assert set(gains) == {"a", "b"}
    assert gains["a"] == pytest.approx(0.1625)
    assert gains["b"] == pytest.approx(-0.1)
    assert evaluation.mean_gain(_scores(), exclude={"a": ["niqe"]})["a"] == pytest.approx(0.1)
    assert evaluation.mean_gain(_scores(), baseline="a")["baseline"] < 0


def test_fr_gain_judges_by_full_reference_measures_only():
    assert evaluation.fr_measures(["niqe", "psnr", "ssim"]) == ["psnr", "ssim"]
    fr = evaluation.fr_gain(_scores(), baseline="baseline")
    assert fr["a"] == pytest.approx(0.1) and fr["b"] == pytest.approx(-0.1)


def test_gain_table_and_its_sentence():
    table = finetuning.gain_table(_scores())
    assert list(table.columns) == ["psnr", "niqe", "mean"] and set(table.index) == {"a", "b"}
    assert table.loc["a", "mean"] == pytest.approx(0.1625) and table.loc["a", "niqe"] == pytest.approx(0.225)
    assert finetuning.describe_gains(table) == "largest mean panel gain: a (+16.25 %); smallest: b (-10.00 %)"


def test_save_table_writes_under_the_profile(tmp_path):
    cfg = _cfg(run_root=str(tmp_path))
    path = evaluation.save_table(pd.DataFrame({"x": [1, 2]}), cfg, "t")
    assert path == tmp_path / "toy" / "tables" / "t.csv"
    assert pd.read_csv(path, index_col=0)["x"].tolist() == [1, 2]
    assert evaluation.dataset_label({"data": {}}) == "embedded-test"
    assert evaluation.dataset_label({"data": {"source": "reds"}}) == "reds-test"


# --------------------------------------------------------------------------- artifacts and prose

def _artifacts() -> pd.DataFrame:
    return pd.DataFrame({"chroma_noise": [0.1, 0.5, 0.3], "edge_artifacts": [0.9, 0.0, 0.0],
                         "blur": [0.2, 0.1, 0.4]}, index=["baseline", "x", "y"])


def test_worst_run_skips_the_baseline_unless_alone():
    arts = _artifacts()
    assert artifacts.worst_run(arts, "chroma_noise") == "x"
    assert artifacts.worst_run(arts, "edge_artifacts") == "x"        # baseline is highest but excluded
    assert artifacts.worst_run(arts.loc[["baseline"]], "blur") == "baseline"
    text = artifacts.describe_artifacts(arts).splitlines()
    assert text[2] == "blur (added blur): highest in 'y' (0.4, 2.0x the baseline's 0.2)"
    arts["edge_artifacts"] = 0.0
    arts.loc["y", "chroma_noise"] = 0.00021
    text = artifacts.describe_artifacts(arts).splitlines()
    assert text[1] == "edge_artifacts: all runs 0.000: no dotted edges detected"
    assert text[0] == "chroma_noise (coloured dots): highest in 'x' (0.5, 5.0x the baseline's 0.1)"
    assert artifacts.own_measures({"x": {"niqe": 1, "lpips": 2}}) == {"x": ["niqe", "lpips"]}
    arts["edge_artifacts"] = [0.0002, 0.0009, 0.0]  # near zero: not "highest in x"
    arts["blur"] = [2.0, 2.01, 2.005]  # within 1 %: level
    text = artifacts.describe_artifacts(arts).splitlines()
    assert text[1] == "edge_artifacts: all runs below 0.001: no dotted edges detected"
    assert text[2] == "blur (added blur): all runs 2 (spread 0.01): no run stands out"


def test_sentences_say_ties_instead_of_naming_a_winner():
    table = pd.DataFrame({"psnr": [0.0, 0.0], "mean": [0.0, 0.0]}, index=["a", "b"])
    assert finetuning.describe_gains(table) == "all 2 runs have the same mean panel gain (0 %): no run stands out"
    comp = pd.DataFrame({"combo": ["a", "a"], "weighting": ["hand", "online"], "mean_gain": [0.01, 0.01]})
    assert weighting.describe_weighting(comp).endswith("-> no weighting stands out (tied)")
    table = pd.DataFrame({"measure": ["psnr", "niqe"], "srcc": [0.9, 0.3], "gain": [0.0, 0.0]})
    assert asymmetry.describe_asymmetry(table).startswith(
        "Best assessor: psnr (SRCC 0.900); all objectives level (held-out panel gain 0 %).")


def test_artifact_table_is_zero_for_ground_truth_and_worst_clip_finds_the_noisy_clip():
    g = torch.Generator().manual_seed(0)
    gt = {"c1": torch.rand(2, 3, 32, 32, generator=g), "c2": torch.rand(2, 3, 32, 32, generator=g)}
    noisy = {"c1": gt["c1"], "c2": (gt["c2"] + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)}
    outputs = {"ground truth": gt, "copy": dict(gt), "noisy": noisy}
    table = evaluation.artifact_table(outputs)
    assert list(table.columns) == list(evaluation.ARTIFACTS) and list(table.index) == ["copy", "noisy"]
    assert table.loc["copy"].abs().max() < 1e-6
    assert table.loc["noisy", "chroma_noise"] > table.loc["copy", "chroma_noise"]
    assert artifacts.worst_clip(outputs, "noisy", "chroma_noise") == "c2"


def test_describe_weighting_names_the_best_weighting_per_combo():
    comp = pd.DataFrame({"combo": ["a", "a", "a"], "weighting": ["hand", "static", "online"],
                         "mean_gain": [0.01, -0.02, 0.03]})
    assert weighting.describe_weighting(comp) == "a: mean panel gain hand +1.00 %, static -2.00 %, online +3.00 % -> best: online"


def test_describe_adversarial_and_transfer():
    grid = pd.DataFrame({"discriminator": ["vit", "vit", "patchgan"], "gain_vs_fidelity": [-0.02, 0.0, 0.01]})
    grid.attrs.update(fidelity_gain=0.5, noise=0.001, fr_noise=0.002)
    lines = adversarial.describe_adversarial(grid).splitlines()
    assert lines[3:] == ["  patchgan: +1.00 %", "  vit: -1.00 %",
                         "convolutional kinds mean +1.00 % vs Transformer (vit) -1.00 %"]
    transfer = pd.DataFrame({"discriminator": ["unet", "unet"], "init": ["random", "discriminator"],
                             "srcc": [0.1, 0.4]})
    assert adversarial.describe_transfer(transfer).splitlines() == [
        "unet: SRCC random 0.100 -> from discriminator 0.400 (+0.300)",
        "mean change from discriminator initialisation: +0.300 SRCC (1 seed x 1 kind)"]
    seeded = pd.DataFrame({"discriminator": ["vit"] * 4 + ["unet"] * 4, "seed": [0, 0, 1, 1] * 2,
                           "init": ["random", "discriminator"] * 4, "label": "level order",
                           "srcc": [0.1, 0.4, 0.3, 0.2, 0.5, 0.5, 0.5, 0.6]})
    assert adversarial.describe_transfer(seeded).splitlines() == [
        "vit: level-order SRCC random 0.200 -> from discriminator 0.300 (+0.100) per seed +0.300, -0.100",
        "unet: level-order SRCC random 0.500 -> from discriminator 0.550 (+0.050) per seed +0.000, +0.100",
        "mean change from discriminator initialisation: +0.075 level-order SRCC (2 seeds x 2 kinds)"]
    assert adversarial.transfer_pairs(seeded)[["discriminator", "seed"]].values.tolist() == [
        ["vit", 0], ["vit", 1], ["unet", 0], ["unet", 1]]


def test_describe_asymmetry_without_enough_measures_for_a_correlation():
    table = pd.DataFrame({"measure": ["psnr", "niqe"], "srcc": [0.9, 0.3], "gain": [-0.01, 0.02]})
    text = asymmetry.describe_asymmetry(table)
    assert text.startswith("Best assessor: psnr (SRCC 0.900); best objective: niqe (held-out panel gain +2.00 %).")
    assert "No rank correlation" in text


def test_baseline_bicubic_and_sentence():
    lr = torch.rand(2, 3, 3, 8, 10)
    out = baseline.Bicubic(4)(lr)
    assert out.shape == (2, 3, 3, 32, 40) and out.min() >= 0 and out.max() <= 1
    summary = pd.DataFrame({"psnr": [25.0, 26.5], "ssim": [0.8, 0.85]}, index=["bicubic", "vrt"])
    assert baseline.describe_baselines(summary, ["vrt"]) == "vrt: PSNR 26.50 dB (+1.50 dB vs bicubic), SSIM 0.8500 (+0.0500)"


# --------------------------------------------------------------------------- layering

def test_no_other_subpackage_imports_the_study():
    offenders = []
    for path in NRIQA.rglob("*.py"):
        rel = path.relative_to(NRIQA)
        if rel.parts[0] == "study" or len(rel.parts) == 1:  # the study itself, top-level entry points
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                if node.level:
                    names = [f"{'.' * node.level}{n}" for n in names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any("study" in n.split(".") for n in names):
                offenders.append(str(rel))
    assert not offenders


def test_gains_are_written_in_percent_without_rounding_small_ones_to_zero():
    from nriqa.study.text import pct

    assert (pct(0.0163), pct(-0.00056), pct(0.000012, sign=False), pct(0.0)) == (
        "+1.63 %", "-0.056 %", "0.0012 %", "0 %")


def test_evaluate_runs_takes_plain_and_seeded_runs(monkeypatch, tmp_path):
    def fake_evaluate(rdir, clips, panel, *, run, model, dataset, **_):
        return pd.DataFrame({"run": [run], "model": [model], "dataset": [dataset], "clip": ["c"], "frame": [0],
                             "measure": ["psnr"], "score": [float(len(str(rdir)))]})

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    monkeypatch.setattr(evaluation, "test_set", lambda cfg: [])
    base = tmp_path / "b"
    base.mkdir()
    (base / "config.yaml").write_text("seed: 7\n")
    cfg = _cfg(run_root=str(tmp_path), panel=["psnr"], device="cpu", data={})
    df = evaluation.evaluate_runs(cfg, {"baseline": base, "x": {0: tmp_path / "x0", 1: tmp_path / "x11"}}, model="m")
    assert list(df.columns) == ["run", "seed", "model", "dataset", "clip", "frame", "measure", "score"]
    assert list(zip(df["run"], df["seed"])) == [("baseline", 7), ("x", 0), ("x", 1)]
    means = evaluation.seed_mean(df)
    assert "seed" not in means and means.set_index("run").loc["x", "score"] == pytest.approx(df["score"][1:].mean())
    assert list(zip(*[evaluation.first_seed(df)[c] for c in ("run", "seed")])) == [("baseline", 7), ("x", 0)]


# --------------------------------------------------------------------------- notebook 04: weightings over seeds

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
        assert meta[weighting.arm_label(c, "static")]["measures"] == [k for k in grads[c]["param_norm"] if k != "charbonnier"]


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
    assert {m["weighting"] for m in meta.values()} == {"hand", "static"} and len(arms) == 2 * len(cfg["weights"]["combos"])
    for bad in (["gradnorm"], [], "hand", ["hand", "hand"]):
        cfg["weights"]["weightings"] = bad
        with pytest.raises(ConfigError, match="weights.weightings"):
            weighting.weightings(cfg)
