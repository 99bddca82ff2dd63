"""Profiles and overrides."""
from __future__ import annotations

import warnings

import pytest

from nriqa.config import available_profiles, load_profile, parse_overrides
from nriqa.errors import ConfigError
from nriqa.study import runs, weighting


def test_bundled_profiles_load_and_smoke_inherits_demo():
    assert {"demo", "smoke", "paper"} <= set(available_profiles())
    demo, smoke = load_profile("demo"), load_profile("smoke")
    assert smoke["name"] == "smoke" and demo["name"] == "demo"
    assert smoke["train"]["steps"] < demo["train"]["steps"]
    # keys smoke does not set come from demo
    assert smoke["train"]["optimizer"] == demo["train"]["optimizer"]
    assert smoke["data"]["scale"] == demo["data"]["scale"] == 4


def test_overrides_are_parsed_as_yaml():
    cfg = load_profile("demo", ["train.steps=7", "data.degradation=BD", "models=[vrt]"])
    assert cfg["train"]["steps"] == 7 and cfg["data"]["degradation"] == "BD" and cfg["models"] == ["vrt"]
    assert parse_overrides({"a.b": 1}) == {"a.b": 1}
    with pytest.raises(ValueError, match="key.path=value"):
        parse_overrides(["train.steps"])


def test_unknown_profile_suggests_closest():
    with pytest.raises(ValueError, match="demo"):
        load_profile("dmeo")


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


def test_finetune_grid_has_every_term_and_combo():
    cfg = load_profile("demo")
    grid = runs.finetune_grid(cfg)
    for name in cfg["finetune"]["extra_terms"]:
        assert grid[name] == {name: cfg["finetune"]["extra_terms"][name]}
    assert len(grid) == len(cfg["finetune"]["extra_terms"]) + len(cfg["finetune"]["combos"])
    smoke = runs.finetune_grid(load_profile("smoke"))  # null weights drop the demo's other terms
    assert set(smoke) == {"niqe", "cnniqa@embedded", "cnniqa@embedded + st-lpips-alex"}


def test_figure_dir_keeps_non_demo_profiles_out_of_figures(tmp_path):
    cfg = runs.profile("smoke", run_root=str(tmp_path))
    assert runs.figure_dir(cfg) == tmp_path / "smoke" / "figures"


def test_weighting_specs_hand_static_and_online():
    cfg = load_profile("demo")
    spec = {"charbonnier": 1.0, "cnniqa@embedded": 1.0}
    grads = {"param_norm": {"charbonnier": 2.0, "cnniqa@embedded": 0.5}}
    specs = weighting.weighting_specs(cfg, spec, grads)
    assert specs["hand"] == {"charbonnier": 1.0, "cnniqa@embedded": cfg["finetune"]["extra_terms"]["cnniqa@embedded"]}
    share = cfg["weights"]["target_share"]
    # weighted quality-term gradient = share x reference's weighted gradient
    assert specs["static"]["cnniqa@embedded"] * 0.5 == pytest.approx(share * 1.0 * 2.0)
    assert specs["static"]["charbonnier"] == 1.0
    assert specs["online"]["weights"] == "gradnorm"


def test_slug_and_label_name_runs_by_their_extra_terms():
    assert runs.slug({"charbonnier": 1.0, "niqe": 0.02}) == "niqex0.02"
    assert runs.slug({"gan": {"weight": 0.01, "discriminator": "unet"}}) == "ganx0.01"
    assert runs.term_label({"charbonnier": 1.0, "a": 1, "b": 2, "weights": "gradnorm"}) == "a + b"


def test_finished_run_with_other_training_settings_is_refused(tmp_path):
    import yaml

    from nriqa.train import train

    cfg = runs.baseline_config(load_profile("smoke"), "basicvsrpp")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "done.json").write_text("{}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train(cfg, run, progress=False) == run  # same settings: silent, nothing trained
    changed = runs.baseline_config(load_profile("smoke", ["train.steps=9"]), "basicvsrpp")
    with pytest.raises(ConfigError, match="different train"):  # never reused silently, nor with a warning
        train(changed, run, progress=False)
    assert not (run / "checkpoints").exists()


def test_paper_profile_drops_the_demo_stand_ins():
    paper = runs.profile("paper", device="cpu")
    grid = runs.finetune_grid(paper)
    assert not [t for t in grid if "@embedded" in t or t in {"niqe", "brisque", "gmsd", "st-lpips-alex"}]
    assert {"maniqa", "lpips-vgg", "pieapp", "maniqa + lpips-vgg"} <= set(grid)
    assert runs.gan_terms(paper, "patchgan", 0.01) == {
        "dists": 1.0, "gan": {"weight": 0.01, "discriminator": "patchgan", "loss": "hinge", "size": "paper"}}
    assert all("@embedded" not in k for combo in paper["weights"]["combos"] for k in combo)
