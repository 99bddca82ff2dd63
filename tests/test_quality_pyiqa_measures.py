"""nriqa.quality.pyiqa_measures: the pyiqa-backed cards agree with pyiqa's own metric table, and the
pyiqa internals that the offline build patches still exist (only pyiqa's configuration table,
``pyiqa.default_model_configs.DEFAULT_CONFIGS``, and module attributes are read); pyiqa measures build
offline from created weight files with the network blocked, and a download pyiqa reaches for is refused.
"""
from __future__ import annotations

import inspect

import pytest
import torch
from doubles import save_torch

from nriqa import quality as q
from nriqa.quality.pyiqa_measures import CARDS

pyiqa_configs = pytest.importorskip("pyiqa.default_model_configs").DEFAULT_CONFIGS


def _pyiqa_bound(text: str) -> tuple[float | None, bool]:
    """One bound of pyiqa's ``score_range`` string: ``"0"`` -> (0, exact), ``"~40"`` -> (40, rough),
    ``"~"`` or ``""`` -> (None, rough): open."""
    text = text.strip()
    rough = text.startswith("~")
    value = text.lstrip("~").strip()
    return (float(value) if value else None), rough


def _range_disagreement(ours: tuple | None, stated: str) -> str | None:
    """Why ``ours`` contradicts pyiqa's ``stated`` range, or None when they agree.

    ``ours is None`` means nriqa treats the score as unbounded; that contradicts nothing (pyiqa's
    ranges are "only rough estimation", its own words). An exact pyiqa bound must equal ours; a
    rough one (``~v``) must be within a factor of 2 of ours (``~0`` means 0); an open one means
    nriqa must not state that bound either.
    """
    if ours is None:
        return None
    for side, mine, text in zip(("lower", "upper"), ours, stated.split(",")):
        value, rough = _pyiqa_bound(text)
        if value is None:
            return f"{side} bound is open in pyiqa ({stated!r}) but nriqa states {mine}"
        if not rough or value == 0:
            if mine != value:
                return f"{side} bound {mine} != pyiqa's {value} ({stated!r})"
        elif not value / 2 <= mine <= value * 2:
            return f"{side} bound {mine} is not within a factor of 2 of pyiqa's ~{value} ({stated!r})"
    return None


def test_every_pyiqa_card_is_registered_as_is():
    assert len(CARDS) == len({c.name for c in CARDS})
    for c in CARDS:
        assert q.card(c.name) == c
        assert c.backend == f"pyiqa:{c.name}"


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
def test_card_agrees_with_pyiqa_table(card):
    cfg = pyiqa_configs.get(card.name)
    assert cfg is not None, f"{card.name!r} is not a pyiqa metric name"
    assert card.mode == cfg["metric_mode"]
    assert card.higher_better == (not cfg.get("lower_better", False)), (
        f"{card.name}: nriqa higher_better={card.higher_better}, pyiqa lower_better={cfg.get('lower_better', False)}")
    if "score_range" in cfg:
        why = _range_disagreement(card.score_range, cfg["score_range"])
        assert why is None, f"{card.name}: {why}"


def test_range_rule_itself():
    assert _range_disagreement((0, 1), "0, 1") is None
    assert _range_disagreement((0, 0.5), "0, ~1") is None
    assert _range_disagreement((0, 100), "~0, ~100") is None
    assert _range_disagreement(None, "~0, ~40") is None
    assert _range_disagreement((0, 2), "0, 1") is not None          # exact bound differs
    assert _range_disagreement((0, 10), "~0, ~1") is not None       # rough bound, 10x off
    assert _range_disagreement((0, 200), "0, ~") is not None        # pyiqa says unbounded
    assert _range_disagreement((1, 10), "0, 10") is not None


def test_offline_build_targets_exist_in_installed_pyiqa():
    """``_offline_build`` replaces these pyiqa attributes; a pyiqa release without them would let
    downloads through silently, so their presence and call shapes are checked here."""
    import pyiqa
    import pyiqa.utils.download_util as dl
    from pyiqa.archs import clip_model
    from pyiqa.models.inference_model import InferenceModel

    assert isinstance(dl.DEFAULT_CACHE_DIR, str)
    assert callable(dl.download_url_to_file)
    # load_file_from_url must read both names from the module at call time
    names = dl.load_file_from_url.__code__.co_names
    assert "DEFAULT_CACHE_DIR" in names and "download_url_to_file" in names
    assert list(inspect.signature(clip_model._download).parameters)[:2] == ["url", "root"]
    assert "_download" in clip_model.load.__code__.co_names
    assert callable(pyiqa.create_metric)
    init_src = inspect.getsource(InferenceModel.__init__)
    assert "self.net =" in init_src and "self.metric_mode =" in init_src


# ------------------------------------------------------------ offline builds from created weight files

def test_pyiqa_pieapp_loads_created_file_offline(offline_home):
    from pyiqa.archs.pieapp_arch import PieAPP

    torch.manual_seed(0)
    net = PieAPP(pretrained=False)
    sd = {k: torch.randn_like(v) * 0.05 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    assert q.card("pieapp").missing
    save_torch(sd, q.card("pieapp").weights[0].path)
    assert q.card("pieapp").present and "pieapp" in q.offline_names()
    m = q.create("pieapp")
    got = m.net.net.state_dict()
    assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    assert not any(p.requires_grad for p in m.parameters()) and not m.training
    x = torch.rand(1, 3, 64, 64)
    s = m(x, x.flip(-1))
    assert s.shape == (1,) and torch.isfinite(s).all()


def test_pyiqa_timm_backbone_is_not_downloaded(offline_home):
    """HyperIQA: the timm ResNet-50 is built bare and fully overwritten by the created checkpoint."""
    from pyiqa.archs.hypernet_arch import HyperNet

    from nriqa.quality.pyiqa_measures import _offline_build

    torch.manual_seed(0)
    with _offline_build():
        net = HyperNet(pretrained=False)
    sd = {k: v + 0.01 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    save_torch({"params": sd}, q.card("hyperiqa").weights[0].path)
    m = q.create("hyperiqa")
    got = m.net.net.state_dict()
    assert all(torch.equal(got[k], sd[k]) for k in sd)


def test_unlisted_download_is_refused(offline_home):
    """If pyiqa reaches for a file the card does not list, the build fails loudly, offline."""
    from nriqa.quality.pyiqa_measures import build_pyiqa

    with pytest.raises(q.WeightsMissingError, match="nothing is downloaded"):
        build_pyiqa("brisque")
