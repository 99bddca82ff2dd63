"""nriqa.study.runs: run names and folders, profiles and their overrides, workers, run configs, and the
cached training's call order, on constructed inputs (no training: the trainer is replaced by a recorder)."""
from __future__ import annotations

import copy

import pytest
from doubles import toy_profile

from nriqa import compute
from nriqa.config import load_profile
from nriqa.errors import ConfigError
from nriqa.study import finetuning, runs
from nriqa.study.runs import middle_gan_weight

# --------------------------------------------------------------------------- names and folders

def test_slug_names_extra_terms_with_weights_and_only_safe_characters():
    assert runs.slug({"charbonnier": 1.0, "niqe": 0.02, "lpips": 1}) == "niqex0.02+lpipsx1"
    assert runs.slug({"pixel": 1.0}) == "charbonnier"
    assert runs.slug({}) == "charbonnier"
    assert runs.slug({"gan": {"weight": 0.05, "discriminator": "vit"}}) == "ganx0.05"
    assert runs.slug({"gan": {"discriminator": "vit"}}) == "gan"            # no numeric weight: name only
    assert runs.slug({"a b/c": 2.5}) == "a_b_cx2.5"
    assert runs.slug({"cnniqa@embedded": 1e-5}) == "cnniqa@embeddedx1e-05"


def test_slug_and_label_name_runs_by_their_extra_terms():
    assert runs.slug({"charbonnier": 1.0, "niqe": 0.02}) == "niqex0.02"
    assert runs.slug({"gan": {"weight": 0.01, "discriminator": "unet"}}) == "ganx0.01"
    assert runs.term_label({"charbonnier": 1.0, "a": 1, "b": 2, "weights": "gradnorm"}) == "a + b"


def test_term_label_and_finetune_name():
    assert runs.term_label({"pixel": 1, "weights": "gradnorm"}) == "charbonnier"
    assert runs.term_label({"cnniqa@embedded": 0.2, "lpips": 1.0}) == "cnniqa@embedded + lpips"
    assert runs.finetune_name("vrt", {"charbonnier": 1.0, "niqe": 0.02}) == "ft-vrt-niqex0.02"


def test_profile_root_and_run_dir(monkeypatch, tmp_path):
    cfg = runs.baseline_config(toy_profile(run_root=str(tmp_path)), "vrt")
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
    cfg = toy_profile(name="demo", run_root=str(tmp_path))
    monkeypatch.delenv("NRIQA_FIGURES_IN_RUNS", raising=False)
    assert runs.figure_dir(cfg) == runs.figures_dir()
    monkeypatch.setenv("NRIQA_FIGURES_IN_RUNS", "1")
    assert runs.figure_dir(cfg) == tmp_path / "demo" / "figures" and (tmp_path / "demo" / "figures").is_dir()


def test_figure_dir_keeps_non_demo_profiles_out_of_figures(tmp_path):
    cfg = runs.profile("smoke", run_root=str(tmp_path))
    assert runs.figure_dir(cfg) == tmp_path / "smoke" / "figures"


# --------------------------------------------------------------------------- profiles

def test_profile_resolves_device_seed_and_run_root(tmp_path):
    cfg = runs.profile("smoke", ["train.steps=3"], device="cpu", seed=5, run_root=str(tmp_path))
    assert (cfg["device"], cfg["seed"], cfg["run_root"], cfg["train"]["steps"]) == ("cpu", 5, str(tmp_path), 3)


def test_mapping_overrides_are_checked_too():
    assert runs.profile("smoke", {"train.steps": 2})["train"]["steps"] == 2
    with pytest.raises(ConfigError, match="override trian.steps=2: unknown key 'trian'"):
        runs.profile("smoke", {"trian.steps": 2})


def test_workers_setting(monkeypatch):
    monkeypatch.setenv("NRIQA_THREADS", "3")
    assert runs.workers({}) == 1 and runs.workers({"workers": 3}) == 3
    assert runs.workers({"workers": 5}) == 3 and runs.workers({"workers": 3, "threads": 2}) == 1  # the budget caps it
    monkeypatch.setenv("NRIQA_THREADS", "64")
    assert runs.workers({"workers": "auto", "device": "cuda"}) == 1
    assert runs.workers({"workers": 0, "device": "cpu"}) == runs.workers({"workers": "auto", "device": "cpu"}) >= 1
    assert runs.workers({"workers": "auto", "device": "cpu"}) == compute.usable_cores()   # the affinity, as threads
    assert runs.profile("demo", device="cpu", overrides=["workers=auto"])["workers"] == "auto"
    with pytest.raises(ConfigError, match="workers"):
        runs.workers({"workers": -1})


# --------------------------------------------------------------------------- configs

def test_baseline_config_is_charbonnier_only_and_leaves_the_profile_alone():
    cfg = toy_profile()
    before = copy.deepcopy(cfg)
    base = runs.baseline_config(cfg, "vrt")
    assert base["experiment"] == "baseline-vrt" and base["model"] == "vrt"
    assert base["train"] == {**cfg["train"], "objective": {"charbonnier": 1.0}}
    assert cfg == before


def test_finetune_config_layers_finetune_knobs_then_overrides():
    cfg = toy_profile()
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


def test_finetune_config_adds_terms_to_charbonnier_and_uses_finetune_knobs():
    cfg = load_profile("demo")
    ft = runs.finetune_config(cfg, "basicvsrpp", {"niqe": 0.02})
    assert ft["train"]["objective"] == {"charbonnier": 1.0, "niqe": 0.02}
    assert ft["train"]["steps"] == cfg["finetune"]["steps"]
    assert ft["train"]["optimizer"]["lr"] == cfg["finetune"]["optimizer"]["lr"]
    assert ft["train"]["ema_decay"] == cfg["train"]["ema_decay"]  # inherited from the baseline knobs
    assert ft["experiment"] == "ft-basicvsrpp-niqex0.02"
    base = runs.baseline_config(cfg, "vrt")
    assert base["train"]["objective"] == {"charbonnier": 1.0} and base["experiment"] == "baseline-vrt"


def test_finetune_grid_drops_null_terms_and_labels_combos():
    grid = runs.finetune_grid(toy_profile())
    assert list(grid) == ["niqe", "lpips", "cnniqa@embedded + lpips"]
    assert grid["niqe"] == {"niqe": 0.02} and grid["cnniqa@embedded + lpips"] == {"cnniqa@embedded": 0.2, "lpips": 1.0}
    assert runs.finetune_grid({}) == {}


def test_finetune_grid_has_every_term_and_combo():
    cfg = load_profile("demo")
    grid = runs.finetune_grid(cfg)
    for name in cfg["finetune"]["extra_terms"]:
        assert grid[name] == {name: cfg["finetune"]["extra_terms"][name]}
    assert len(grid) == 1 + len(cfg["finetune"]["extra_terms"]) + len(cfg["finetune"]["combos"])
    assert next(iter(grid)) == "fidelity-only" and grid["fidelity-only"] == {}   # the spread's arm, first
    smoke = runs.finetune_grid(load_profile("smoke"))  # null weights drop the demo's other terms
    assert set(smoke) == {"fidelity-only", "niqe", "cnniqa@embedded-a", "cnniqa@embedded-a + st-lpips-alex"}
    assert "fidelity-only" not in runs.finetune_grid({**cfg, "finetune": {**cfg["finetune"], "fidelity_only": False}})


def test_finetune_models_default_to_finetune_model_and_the_paper_names_all_three():
    assert runs.finetune_models(load_profile("paper")) == ["basicvsrpp", "iseebetter", "vrt"]
    for name in ("demo", "smoke"):
        cfg = load_profile(name)
        assert runs.finetune_models(cfg) == [cfg["finetune"]["model"]]
        assert not finetuning.several_cells(cfg)  # notebook 02 trains nothing extra there
    assert finetuning.several_cells(load_profile("paper"))
    with pytest.raises(ConfigError, match="not among the profile's models"):
        runs.finetune_models(load_profile("smoke", {"finetune.models": ["vrt"]}))
    with pytest.raises(ConfigError, match="twice"):
        runs.finetune_models(load_profile("smoke", {"finetune.models": ["basicvsrpp", "basicvsrpp"]}))
    # finetune.models is the study's, not a trainer knob: it stays out of the fine-tune's train section
    cfg = load_profile("paper")
    assert "models" not in runs.finetune_config(cfg, "vrt", {"dists": 1.0})["train"]


def test_gan_terms_and_overrides():
    cfg = toy_profile()
    assert runs.fidelity_terms(cfg) == {"dists": 0.5}
    assert runs.gan_terms(cfg, "vit", 0.01) == {
        "dists": 0.5, "gan": {"weight": 0.01, "discriminator": "vit", "loss": "hinge", "size": "tiny"}}
    own = runs.gan_terms(cfg, "unet", 1, {"niqe": 0.02})
    assert set(own) == {"niqe", "gan"} and own["gan"]["weight"] == 1.0
    assert runs.gan_overrides(cfg) == {"steps": 7, "schedule": {"periods": [7]}, "d_lr": 2e-4}
    assert runs.middle_gan_weight(cfg) == 0.01


@pytest.mark.parametrize("weights,middle", [([0.001, 0.005, 0.01, 0.05], 0.01), ([0.2], 0.2), ([3, 1, 2], 2)])
def test_middle_gan_weight(weights, middle):
    assert middle_gan_weight({"adversarial": {"gan_weights": weights}}) == middle


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
    # baselines trained here (the smoke profile otherwise imports the kit's release: nothing to train)
    cfg = runs.profile("smoke", {"baselines": "train"}, device="cpu", seed=0, run_root=str(tmp_path))
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
    base = runs.ensure_baseline(cfg, "vrt")
    gan = runs.train_arms(cfg, {"arm": runs.gan_arm_jobs(cfg, "vrt", "patchgan", 0.01, baseline=base)})["arm"]
    assert list(gan) == runs.seeds(cfg) and gan[0].name.startswith("gan-vrt-patchgan-w0.01-s0-")
    assert calls[-1]["objective"]["gan"]["discriminator"] == "patchgan" and calls[-1]["steps"] == steps
    fid = runs.train_arms(cfg, {"fidelity": runs.fidelity_jobs(cfg, "vrt", baseline=base)})
    assert list(fid) == ["fidelity"] and list(fid["fidelity"]) == runs.noise_seeds(cfg) == [0, 1]
    assert all(p.name.startswith(f"gan-vrt-fidelity-only-s{s}-") for s, p in fid["fidelity"].items())
    assert "gan" not in calls[-1]["objective"] and calls[-1]["steps"] == steps
