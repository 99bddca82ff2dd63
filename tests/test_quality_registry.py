"""nriqa.quality registry: cards, one clear error before any build when weight files are missing,
errors before compute, to_loss, and direction on real frames."""
from __future__ import annotations

import math

import pytest
import torch
from doubles import WHEEL_MEASURES, save_torch

from nriqa import quality as q
from nriqa.quality import base

# measures whose weights are not needed (they run offline) and that are cheap enough for tests
FR_OFFLINE = ["psnr", "ssim", "cw_ssim", "fsim", "vif", "gmsd", "nlpd", "vsi", "lpips-vgg-randtrunk"]
_CACHE: dict[str, q.Measure] = {}


def measure(name: str) -> q.Measure:
    if name not in _CACHE:
        _CACHE[name] = q.create(name)
    return _CACHE[name]


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """Two real clean frames (embedded test split), cropped to 96x128."""
    from nriqa.data import pristine_frames

    x = pristine_frames("test", max_frames=2)
    return x[..., :96, :128].contiguous()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from nriqa.data.degradations import gaussian_blur

    return gaussian_blur(x, sigma=sigma, size=2 * math.ceil(3 * sigma) + 1).clamp(0, 1)


def noise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def better(card: q.Card, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise: is raw score a better than b for this card?"""
    return a > b if card.higher_better else a < b


# ---------------------------------------------------------------- cards and registry
def test_names_and_cards_cover_the_contract():
    names = q.names()
    for n in ["psnr", "ssim", "ms_ssim", "fsim", "vif", "gmsd", "nlpd", "vsi", "niqe", "niqe-kit", "brisque", "piqe",
              "maniqa", "dbcnn", "nima", "hyperiqa", "paq2piq", "clipiqa", "musiq", "topiq_nr", "mdtvsfa",
              "lpips-vgg", "lpips-alex", "lpips-vgg-randtrunk", "st-lpips-alex", "st-lpips-vgg", "pieapp", "dists"]:
        assert n in names, n
    for c in q.cards():
        assert c.mode in ("FR", "NR") and c.min_size >= 1
        assert isinstance(c.weights, tuple)
    assert q.card("gmsd").higher_better is False and q.card("ssim").higher_better is True
    assert q.card("maniqa").mode == "NR" and q.card("lpips-vgg").mode == "FR"
    assert q.card("mdtvsfa").video is True


def test_offline_names_match_presence():
    off = q.offline_names()
    assert {"psnr", "ssim", "gmsd", "lpips-vgg-randtrunk", "niqe", "niqe-kit", "brisque", "st-lpips-alex",
            "st-lpips-vgg", "piqe"} <= set(off)
    assert all(q.card(n).present for n in off)
    assert set(q.offline_names(differentiable=True)) <= set(off)
    assert "piqe" not in q.offline_names(differentiable=True)   # zero input gradient: marked so


def test_register_replaces_and_validates():
    c = q.Card(name="test-mean-brightness", mode="NR", higher_better=True, score_range=(0, 1),
               differentiable=True, min_size=1, video=False, weights=(), backend="test", description="mean")

    class Mean(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2, 3))

    q.register(c, lambda device="cpu", **kw: Mean())
    m = q.create("test-mean-brightness")
    x = torch.full((2, 3, 4, 4), 0.25)
    assert torch.allclose(m(x), torch.full((2,), 0.25))
    with pytest.raises(ValueError, match="already registered"):
        q.register(c, lambda **kw: Mean(), replace=False)
    with pytest.raises(TypeError):
        q.register("not a card", lambda **kw: Mean())
    with pytest.raises(ValueError, match="mode"):
        q.Card(name="x", mode="XR", higher_better=True, score_range=None, differentiable=True,
               min_size=1, video=False)


# ---------------------------------------------------------------- errors before compute
def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="'ssim'"):
        q.create("ssmi")
    with pytest.raises(ValueError, match="niqe"):
        q.card("niqee")


@pytest.mark.parametrize("bad, match", [
    (torch.rand(3, 16, 16), r"\(N,3,H,W\)"),
    (torch.rand(1, 4, 16, 16), "3 RGB channels"),
    (torch.rand(1, 3, 16, 16) * 2, r"\[0, 1\]"),
    (torch.full((1, 3, 16, 16), float("nan")), "NaN"),
    (torch.randint(0, 255, (1, 3, 16, 16)), "float"),
])
def test_bad_inputs_rejected(bad, match):
    m = measure("gmsd")
    ref = torch.rand(*bad.shape) if bad.dim() == 4 and bad.shape[1] == 3 else torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=match):
        m(bad, ref)


def test_too_small_names_min_size_and_fr_needs_ref():
    m = measure("ssim")
    with pytest.raises(ValueError, match="at least 11x11"):
        m(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="full-reference"):
        m(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="must equal"):
        m(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 48))
    with pytest.raises(ValueError, match="at least 176x176"):
        q.create("ms_ssim")(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))


def test_measure_is_frozen_and_flattens_video(frames):
    m = measure("psnr")
    assert not any(p.requires_grad for p in m.parameters()) and not m.training
    m.train()
    assert not m.training
    video = torch.stack([frames, frames.flip(-1)], dim=0)            # (2, T=2, 3, H, W)
    s = m(noise(video, 0.05), video)
    assert s.shape == (4,) and s.dtype == torch.float32
    per_image = m(noise(video, 0.05).flatten(0, 1), video.flatten(0, 1))
    assert torch.allclose(s, per_image)


# ---------------------------------------------------------------- to_loss
def test_to_loss_mappings():
    s = torch.tensor([0.2, 0.9])
    assert torch.allclose(q.to_loss(s, q.card("ssim")), 1 - s)                 # 0..1 higher-better
    assert torch.allclose(q.to_loss(torch.tensor([3.0]), q.card("nima")), torch.tensor([0.7]))  # (10-s)/10
    assert torch.allclose(q.to_loss(torch.tensor([0.1]), q.card("gmsd")), torch.tensor([0.2]))  # s/0.5
    assert torch.allclose(q.to_loss(torch.tensor([30.0]), "psnr"), torch.tensor([0.4]))        # (50-s)/50
    assert torch.allclose(q.to_loss(torch.tensor([5.0]), "niqe"), torch.tensor([0.5]))          # s/10
    assert q.loss_mapping(q.card("psnr")) == "(50 - s) / 50" and q.loss_mapping(q.card("ssim")) == "1 - s"
    # monotone: a better raw score always gives a lower loss, for every card with a mapping
    for c in q.cards():
        lo, hi = c.loss_range or c.score_range
        a, b = torch.tensor([lo + 0.25 * (hi - lo)]), torch.tensor([lo + 0.75 * (hi - lo)])
        la, lb = q.to_loss(a, c), q.to_loss(b, c)
        assert (la > lb) if c.higher_better else (la < lb), c.name


# ---------------------------------------------------------------- direction and gradients on real frames
@pytest.mark.parametrize("name", FR_OFFLINE)
def test_fr_direction_and_gradient(frames, name):
    m = measure(name)
    x = frames[..., :64, :64] if name == "lpips-vgg-randtrunk" else frames
    mild, strong = blur(x, 0.7), blur(x, 2.5)
    assert better(m.card, m(mild, x), m(strong, x)).all(), name
    assert better(m.card, m(noise(x, 0.02), x), m(noise(x, 0.1), x)).all(), name
    loss = q.to_loss(m(strong, x), m.card)
    assert torch.isfinite(loss).all()
    if m.card.differentiable:
        xr = mild.clone().requires_grad_(True)
        q.to_loss(m(xr, x), m.card).sum().backward()
        assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0, name


def test_ms_ssim_and_mad_direction(frames):
    from nriqa.data import bicubic_resize

    big = bicubic_resize(frames[:1], scale=2.0).clamp(0, 1)[..., :176, :176]
    m = measure("ms_ssim")
    mild = blur(big, 0.7).requires_grad_(True)
    s_mild = m(mild, big)
    assert (s_mild > m(blur(big, 2.5), big)).all()
    q.to_loss(s_mild, m.card).sum().backward()
    assert torch.isfinite(mild.grad).all() and mild.grad.abs().sum() > 0
    mad = measure("mad")
    crop = big[..., :128, :128]
    assert (mad(blur(crop, 0.7), crop) < mad(blur(crop, 2.5), crop)).all()


def test_piqe_direction(frames):
    m = measure("piqe")
    assert (m(frames) < m(blur(frames, 2.5))).all()


# ---------------------------------------------------------------- CLI


# ------------------------------------------------------------ weight files: one error before any build

def test_missing_weights_one_error_before_build(offline_home, monkeypatch):
    import nriqa.quality.pyiqa_measures as pm

    def must_not_build(*a, **k):
        raise AssertionError("builder ran although weights are missing")

    monkeypatch.setattr(pm, "build_pyiqa", must_not_build)
    with pytest.raises(q.WeightsMissingError) as e:
        q.create("dbcnn")
    msg = str(e.value)
    for name in ("vgg16-397923af.pth", "DBCNN_scnn-7ea73d75.pth", "DBCNN_KonIQ10k-2de81c0a.pth"):
        assert name in msg
    assert str(offline_home / "torch/hub/pyiqa") in msg
    assert "python -m nriqa weights fetch dbcnn" in msg
    # partly present: only the missing file is named
    save_torch({}, q.card("dbcnn").weights[0].path)
    with pytest.raises(q.WeightsMissingError) as e:
        q.create("dbcnn")
    assert "vgg16-397923af.pth" not in str(e.value) and "DBCNN_scnn" in str(e.value)
    assert "dbcnn" not in q.offline_names()


@pytest.mark.parametrize("name", sorted(WHEEL_MEASURES))
def test_missing_wheel_file_one_error_before_build(name, no_wheels, monkeypatch):
    _, pip = WHEEL_MEASURES[name]
    c, _builder = base._REGISTRY[name]

    def must_not_build(*a, **k):
        raise AssertionError("builder ran although a file is missing")

    monkeypatch.setitem(base._REGISTRY, name, (c, must_not_build))
    assert not q.card(name).present and name not in q.offline_names()
    with pytest.raises(q.WeightsMissingError) as e:
        q.create(name)
    msg = str(e.value)
    for w in c.weights:
        assert w.filename in msg and str(no_wheels / w.subdir / w.filename) in msg
    assert pip in msg and f"python -m nriqa weights fetch {name}" in msg
