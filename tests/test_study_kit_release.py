"""nriqa.study.kit_release: the kit's released baselines are trained on the training clips, written with
their provenance, and imported through import-checkpoint as the profile's baselines.

The releases here are trained for two steps into a temporary folder (the shipped files are not
touched); the shipped files themselves are checked against their provenance."""
from __future__ import annotations

import json

import pytest
import torch

import nriqa.models.released as released
from nriqa.errors import ConfigError
from nriqa.models import build
from nriqa.paths import file_sha256
from nriqa.study import runs
from nriqa.study.kit_release import make_releases, release_config
from nriqa.train import load_generator, run_is_done
from nriqa.train.run_files import read_config


@pytest.fixture
def smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))
    cfg = runs.profile("smoke", {"release": {"steps": 2, "warmup_steps": 0, "flow_freeze_steps": 1}},
                       device="cpu", run_root=str(tmp_path / "runs"))
    return cfg


def test_release_config_trains_the_release_length_on_the_training_clips(smoke):
    rc = release_config(smoke, "basicvsrpp")
    assert rc["train"]["steps"] == 2 and rc["train"]["schedule"]["periods"] == [2]
    assert rc["train"]["schedule"]["warmup_steps"] == 0 and rc["train"]["flow_freeze_steps"] == 1
    assert rc["train"]["objective"] == {"charbonnier": 1.0} and rc["experiment"] == "release-basicvsrpp"
    assert "released" not in rc
    with pytest.raises(ConfigError, match="release.steps"):
        release_config({**smoke, "release": {}}, "basicvsrpp")


def test_a_release_is_written_with_provenance_and_imported_as_the_baseline(tmp_path, smoke, monkeypatch):
    out = tmp_path / "rel"
    [weights] = make_releases(smoke, ["basicvsrpp"], out_dir=out, progress=False)
    info = json.loads(weights.with_suffix(".json").read_text())
    assert info["sha256"] == file_sha256(weights) and info["steps"] == 2
    assert [s for s, _ in info["curve"]] == [2] and info["curve"][0][1] > 0   # log_every 2 in smoke
    gain = info["gain_over_bicubic"]
    assert gain["n_clips"] == len(gain["test_clips"]) >= 1
    assert gain["psnr_gain"] == pytest.approx(gain["psnr"] - gain["bicubic_psnr"])
    assert info["manifest"]["commit"] is None or len(info["manifest"]["commit"]) == 40
    # the profile's baseline is the release, imported (nothing trained), keyed by the file's sha256
    monkeypatch.setattr(released, "KIT_RELEASE_DIR", out)
    cfg = {**smoke, "baselines": "release"}
    folder = runs.ensure_baselines(cfg, ["basicvsrpp"], progress=False)["basicvsrpp"]
    assert run_is_done(folder) and not (folder / "log.jsonl").exists()
    assert read_config(folder)["released"] == {"file": weights.name, "sha256": info["sha256"]}
    shipped = torch.load(weights, weights_only=True)
    for k, v in load_generator(folder).state_dict().items():
        assert torch.equal(shipped[k], v), k
    assert runs.ensure_baseline(cfg, "basicvsrpp", progress=False) == folder
    # another release file is another baseline run
    shipped = {k: v + 1e-3 if v.is_floating_point() else v for k, v in shipped.items()}
    torch.save(shipped, weights)
    assert runs.run_dir(runs.baseline_config(cfg, "basicvsrpp")) != folder


def test_a_missing_release_names_the_command_that_makes_it(tmp_path, smoke, monkeypatch):
    monkeypatch.setattr(released, "KIT_RELEASE_DIR", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="python -m nriqa release basicvsrpp"):
        runs.baseline_config({**smoke, "baselines": "release"}, "basicvsrpp")
    with pytest.raises(ConfigError, match="'train' or 'release'"):
        runs.baseline_config({**smoke, "baselines": "bought"}, "basicvsrpp")


@pytest.mark.parametrize("model", ["basicvsrpp", "iseebetter", "vrt"])
def test_the_shipped_releases_match_their_provenance(model):
    info = released.kit_release_info(model, "tiny")
    path = released.kit_release_file(model, "tiny")
    assert file_sha256(path) == info["sha256"]
    assert info["manifest"]["commit"] and not info["manifest"]["code_changed"]
    assert info["gain_over_bicubic"]["n_clips"] >= 8 and info["curve"][-1][0] == info["steps"]
    sd = torch.load(path, weights_only=True)
    params = dict(build(model, "tiny").named_parameters())
    assert set(params) <= set(sd) and sum(sd[k].numel() for k in params) == info["parameters"]


def test_the_dose_line_names_rate_steps_and_start(smoke):
    from nriqa.study.runs import finetune_dose

    line = finetune_dose({**smoke, "baselines": "train"})
    ft = smoke["finetune"]
    assert f"{ft['steps']} steps at learning rate {ft['optimizer']['lr']:g}" in line
    assert "the profile's (trained or imported) basicvsrpp baseline" in line
    assert f"GAN arms {smoke['adversarial']['steps']} steps" in line
    released_line = finetune_dose({**smoke, "baselines": "release", "finetune": {**ft, "optimizer": {"lr": 3e-4}}})
    assert "learning rate 0.0003" in released_line and "the kit's released basicvsrpp" in released_line


def test_writing_a_release_twice_gives_the_same_bytes(tmp_path, smoke):
    from nriqa.study.kit_release import write_release

    [first] = make_releases(smoke, ["basicvsrpp"], out_dir=tmp_path / "one", progress=False)
    run = runs.run_dir(release_config(smoke, "basicvsrpp"))
    again = write_release(smoke, "basicvsrpp", run, out_dir=tmp_path / "two")
    assert file_sha256(first) == file_sha256(again)
