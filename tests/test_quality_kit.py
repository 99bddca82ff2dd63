"""Kit-trained checkpoints as a quality backend: a checkpoint put in ``weights_dir()/kit/`` is
found by name without any explicit registration, scores in (0, 1) and fails clearly when broken."""
from __future__ import annotations

import json

import pytest
import torch

from nriqa import quality as q
from nriqa.models.iqa_nets import MIN_SIZE, build_arch
from nriqa.quality import base, cli, kit


@pytest.fixture
def kit_folder(tmp_path, monkeypatch):
    """An empty weights folder; the registry is restored afterwards (kit names point into tmp_path)."""
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path))
    saved = dict(base._REGISTRY)
    yield tmp_path / "kit"
    base._REGISTRY.clear()
    base._REGISTRY.update(saved)


def _save_checkpoint(folder, name, arch="cnniqa", **drop):
    torch.manual_seed(0)
    ckpt = {"arch": arch, "state_dict": build_arch(arch).state_dict(),
            "calibration": {"p5": -1.0, "p50": 0.0, "p95": 1.0},
            "metrics": {"label": "pseudo", "held_out": {"overall": {"srcc": 0.625}}}}
    for key in drop:
        ckpt.pop(key)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, folder / f"{name}.pt")
    return folder / f"{name}.pt"


def test_lookup_of_an_arch_at_dataset_name_finds_the_checkpoint_on_disk(kit_folder):
    _save_checkpoint(kit_folder, "cnniqa@handmade")
    assert "cnniqa@handmade" not in q.names()          # nothing registered it yet
    card = q.card("cnniqa@handmade")                     # the lookup rescans the kit folder
    assert card.backend == "nriqa.quality.kit" and card.present and card.min_size == MIN_SIZE
    assert card.mode == "NR" and card.higher_better and card.differentiable
    assert "Held-out SRCC 0.625" in card.description
    assert "cnniqa@handmade" in q.names()
    m = q.create("cnniqa@handmade")
    s = m(torch.rand(2, 3, 48, 48))
    assert s.shape == (2,) and bool(((s > 0) & (s < 1)).all())


def test_unknown_kit_name_points_at_the_kit_folder(kit_folder):
    with pytest.raises(ValueError, match="train it first") as err:
        q.card("vitiqa@nowhere")
    assert str(kit_folder) in str(err.value)


def test_card_table_lists_the_checkpoints_on_disk(kit_folder, capsys):
    _save_checkpoint(kit_folder, "cnniqa@listed")
    assert cli.quality_main(["--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cnniqa@listed"]["present"] and rows["cnniqa@listed"]["backend"] == "nriqa.quality.kit"


def test_unreadable_checkpoint_is_skipped_with_a_warning(kit_folder):
    _save_checkpoint(kit_folder, "cnniqa@good")
    (kit_folder / "cnniqa@broken.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="cnniqa@broken"):
        assert kit.register_kit_models() == ["cnniqa@good"]


def test_load_kit_model_names_what_is_wrong(kit_folder):
    with pytest.raises(FileNotFoundError, match="train-iqa cnniqa"):
        kit.load_kit_model(kit_folder / "cnniqa@missing.pt")
    path = _save_checkpoint(kit_folder, "cnniqa@nocal", calibration=None)
    with pytest.raises(ValueError, match="'calibration' is missing"):
        kit.load_kit_model(path)
