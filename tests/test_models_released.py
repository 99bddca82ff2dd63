"""nriqa.models.released: where each released checkpoint is published (``weights fetch``), and the
paper profile's flow network from the published SpyNet. Nothing is downloaded."""
from __future__ import annotations

import pytest
import torch

from nriqa.__main__ import main as cli
from nriqa.models.released import RELEASED, released_path
from nriqa.models.spynet import SpyNet
from nriqa.study import runs
from nriqa.train.generators import build_generator
from nriqa.train.run_files import TRAINING_KEYS


def test_weights_fetch_knows_where_each_checkpoint_is_published(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))
    fetched = []
    monkeypatch.setattr("nriqa.quality.cli.fetch_file", lambda w, **kw: fetched.append((w.url, w.path)))
    assert {"basicvsrpp", "vrt", "vrt16", "iseebetter", "spynet"} <= set(RELEASED)
    assert all(r.url.startswith("https://") for r in RELEASED.values())
    assert cli(["weights", "fetch", "vrt16", "spynet"]) == 0
    assert fetched == [(RELEASED["vrt16"].url, released_path("vrt16")),
                       (RELEASED["spynet"].url, released_path("spynet"))]
    released_path("vrt").parent.mkdir(parents=True, exist_ok=True)
    released_path("vrt").write_bytes(b"x")
    assert cli(["weights", "fetch", "vrt"]) == 0 and len(fetched) == 2
    assert "present" in capsys.readouterr().out


def test_paper_profile_starts_flow_from_published_spynet(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))
    paper = runs.profile("paper", device="cpu", run_root=str(tmp_path))
    assert paper["spynet_weights"] in RELEASED and RELEASED[paper["spynet_weights"]].model == "spynet"
    base = runs.baseline_config(paper, "basicvsrpp")
    with pytest.raises(FileNotFoundError, match=str(released_path("spynet"))):
        build_generator(base)
    flow = SpyNet()                                            # the published shape: 6 levels, 7x7
    released_path("spynet").parent.mkdir(parents=True)
    torch.save({"state_dict": {f"generator.spynet.{k}": v for k, v in flow.state_dict().items()}},
               released_path("spynet"))
    net = build_generator(base)
    for k, v in flow.state_dict().items():
        assert torch.equal(net.spynet.state_dict()[k], v), k
    assert "spynet_weights" in TRAINING_KEYS   # a run with other flow weights is another run
