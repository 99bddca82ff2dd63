"""nriqa.study.checkpoint_import: released checkpoints become finished baseline runs.

The state_dicts here are synthetic: our tiny models' weights under the reference key layouts (the
inverse of the converter), plus MMEditing's wrapper, prefix and iteration counter written by hand.
Nothing is downloaded."""
from __future__ import annotations

import json

import pytest
import torch

from nriqa.__main__ import main as cli
from nriqa.errors import CheckpointError, ConfigError, UserError
from nriqa.models import build
from nriqa.models.convert import to_reference_state_dict
from nriqa.models.spynet import SpyNet
from nriqa.study import runs
from nriqa.study.checkpoint_import import import_checkpoint
from nriqa.train import load_generator, run_is_done


def _reference_file(tmp_path, name, *, wrap="params", prefix="", extra=None, seed=0):
    torch.manual_seed(seed)
    model = build(name, "tiny")
    ref = {f"{prefix}{k}": v for k, v in to_reference_state_dict(name, model).items()}
    ref.update(extra or {})
    path = tmp_path / f"{name}-{wrap}.pth"
    torch.save({wrap: ref, "meta": {"iter": 600000}} if wrap else ref, path)
    return model, path


@pytest.fixture
def smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))
    # the authors' checkpoints replace trained baselines (a profile with baselines: release imports the kit's own)
    return runs.profile("smoke", {"baselines": "train"}, device="cpu", run_root=str(tmp_path / "runs"))


@pytest.mark.parametrize("name, wrap, prefix, extra", [
    ("basicvsrpp", "state_dict", "generator.", {"step_counter": torch.zeros(1)}),   # MMEditing layout
    ("vrt", "params", "", {}),                                                         # VRT release layout
    ("vrt16", None, "", {}),
])
def test_released_weights_become_the_finished_baseline(tmp_path, smoke, name, wrap, prefix, extra):
    model, path = _reference_file(tmp_path, name, wrap=wrap, prefix=prefix, extra=extra)
    folder = import_checkpoint(smoke, name, path)
    assert folder == runs.run_dir(runs.baseline_config(smoke, name)) and run_is_done(folder)
    loaded = load_generator(folder)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    done = json.loads((folder / "done.json").read_text())
    assert done["imported_from"]["file"] == str(path.resolve()) and len(done["imported_from"]["sha256"]) == 64
    # the study reuses it as its baseline: nothing is trained
    assert runs.ensure_baseline(smoke, name, progress=False) == folder
    assert not (folder / "log.jsonl").exists()
    with pytest.raises(UserError, match="already holds a baseline run"):
        import_checkpoint(smoke, name, path)


def test_rbpn_gets_spynet_from_the_profile(tmp_path, smoke):
    model, path = _reference_file(tmp_path, "iseebetter")          # RBPN's layout has no flow network
    with pytest.raises(ConfigError, match="no flow network weights .* set the profile's spynet_weights"):
        import_checkpoint(smoke, "iseebetter", path)
    flow = SpyNet(levels=4, widths=(16, 16, 8, 8), kernel=3)
    torch.save({"params": {f"basic_module.{k.split('.', 2)[1]}.basic_module.{k.split('.', 3)[3]}": v
                           for k, v in flow.state_dict().items() if k.startswith("basic_module.")}},
               tmp_path / "spynet.pth")
    cfg = runs.profile("smoke", {"spynet_weights": str(tmp_path / "spynet.pth")}, device="cpu",
                       run_root=str(tmp_path / "runs"))
    folder = import_checkpoint(cfg, "iseebetter", path)
    loaded = load_generator(folder).state_dict()
    for k, v in flow.state_dict().items():
        assert torch.equal(loaded[f"spynet.{k}"], v), k
    assert torch.equal(loaded["DBPN.output.conv.weight"], model.state_dict()["DBPN.output.conv.weight"])


def test_bad_files_are_refused_before_anything_is_written(tmp_path, smoke):
    _, path = _reference_file(tmp_path, "basicvsrpp")
    with pytest.raises(CheckpointError, match=r"does not fit vrt at model_size='tiny' \(unexpected keys: .*"
                                              r"released checkpoints are paper-size: use --profile paper"):
        import_checkpoint(smoke, "vrt", path)
    wider = {k: torch.zeros(2, *v.shape[1:]) if k == "conv_last.weight" else v
             for k, v in to_reference_state_dict("basicvsrpp", build("basicvsrpp", "tiny")).items()}
    torch.save(wider, tmp_path / "wider.pth")
    with pytest.raises(CheckpointError, match=r"other shapes: conv_last.weight \(2, "):
        import_checkpoint(smoke, "basicvsrpp", tmp_path / "wider.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be loaded as a state_dict"):
        import_checkpoint(smoke, "basicvsrpp", tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="weights fetch NAME"):
        import_checkpoint(smoke, "basicvsrpp", tmp_path / "nope.pth")
    with pytest.raises(ConfigError, match="unknown generator 'edvr'"):
        import_checkpoint(smoke, "edvr", path)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("done.json"))


def test_cli_imports_into_the_profiles_run_root(tmp_path, smoke, capsys):
    _, path = _reference_file(tmp_path, "vrt")
    root = tmp_path / "cli-runs"
    assert cli(["import-checkpoint", "vrt", str(path), "--profile", "smoke", "--run-root", str(root)]) == 0
    folder = capsys.readouterr().out.strip()
    cfg = runs.profile("smoke", run_root=str(root))
    assert folder == str(runs.run_dir(runs.baseline_config(cfg, "vrt"))) and run_is_done(folder)
    assert cli(["import-checkpoint", "vrt", str(tmp_path / "missing.pth"), "--profile", "smoke",
                "--run-root", str(root)]) == 2
