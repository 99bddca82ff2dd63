"""ST-LPIPS: every tensor of the wheel's files loads strictly, the distances equal the package's own
network's, shift tolerance, direction, gradients, shapes."""
from __future__ import annotations

import math

import pytest
import torch

from nriqa import quality as q
from nriqa.quality import stlpips_measure as S

# tensors in each file: scaling (2) + trunk convs (weight, bias) + blur-pool filters + 5 linear heads
EXPECTED = {"alex": 2 + 2 * 5 + 3 + 5, "vgg": 2 + 2 * 13 + 4 + 5}


@pytest.fixture(scope="module")
def measures() -> dict:
    return {net: q.create(f"st-lpips-{net}") for net in ("alex", "vgg")}


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A real 128x128 crop of a scikit-image photo and a noisy copy."""
    from skimage import data as skd

    x = torch.from_numpy(skd.astronaut()[80:208, 160:288].copy()).permute(2, 0, 1)[None].float() / 255
    g = torch.Generator().manual_seed(0)
    return x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_every_tensor_of_the_file_is_loaded(net):
    w = S.ALEX_FILE if net == "alex" else S.VGG_FILE
    state = torch.load(w.path, map_location="cpu", weights_only=True)
    model = S.STLPIPS(net)
    assert len(state) == EXPECTED[net] == len(model.state_dict())
    assert S.load_strict(model, state, str(w.path)) == EXPECTED[net]
    got = model.state_dict()
    assert all(torch.equal(got[k], state[k]) for k in state)
    trunk = sum(1 for k in state if k.startswith("net."))
    heads = sum(1 for k in state if k.startswith("lin"))
    assert heads == 5 and trunk == EXPECTED[net] - 7
    # the blur-pool filters in the file are the binomial [1, 2, 1]^2 / 16 this module builds
    assert all(torch.allclose(v, S.BlurPool(v.shape[0]).filt) for k, v in state.items() if k.endswith(".filt"))


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_loading_fails_on_a_missing_or_extra_tensor(net):
    w = S.ALEX_FILE if net == "alex" else S.VGG_FILE
    state = torch.load(w.path, map_location="cpu", weights_only=True)
    first = next(k for k in state if k.startswith("net."))
    less = {k: v for k, v in state.items() if k != first}
    with pytest.raises(ValueError, match="missing"):
        S.load_strict(S.STLPIPS(net), less, "file")
    with pytest.raises(ValueError, match="unused"):
        S.load_strict(S.STLPIPS(net), {**state, "net.slice9.0.weight": torch.zeros(1)}, "file")
    bad = dict(state)
    bad["lin0.model.1.weight"] = torch.zeros(1, 3, 1, 1)
    with pytest.raises(ValueError, match="shape"):
        S.load_strict(S.STLPIPS(net), bad, "file")


def test_equals_the_packages_own_network(measures, pair, monkeypatch):
    """The stlpips-pytorch package's LPIPS(variant='shift_tolerant') gives the same distances.

    Its module imports ``torchsummary`` (for a printing helper); a stand-in module is enough to
    import it here."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "torchsummary", types.SimpleNamespace(summary=None))
    stlpips = pytest.importorskip("stlpips_pytorch.stlpips")
    x, noisy = pair
    shifted = torch.roll(x, 1, dims=-1)
    for net, m in measures.items():
        ref = stlpips.LPIPS(net=net, variant="shift_tolerant", verbose=False).eval()
        with torch.no_grad():
            for y in (noisy, shifted):
                want = float(ref(y, x, normalize=True))
                assert float(m(y, x)) == pytest.approx(want, rel=1e-5, abs=1e-7), net


def test_shift_tolerance_direction_and_gradients(measures, pair):
    from nriqa.data.degradations import gaussian_blur

    x, noisy = pair
    shifted = torch.roll(x, 1, dims=-1)
    for net, m in measures.items():
        assert float(m(x, x)) < 1e-6
        d_noise, d_shift = float(m(noisy, x)), float(m(shifted, x))
        assert d_shift < 0.25 * d_noise, (net, d_shift, d_noise)        # a 1 px shift costs little
        mild, strong = (gaussian_blur(x, sigma=s, size=2 * math.ceil(3 * s) + 1).clamp(0, 1) for s in (0.7, 2.5))
        assert m(mild, x) < m(strong, x), net
        xr = strong.clone().requires_grad_(True)
        q.to_loss(m(xr, x), m.card).sum().backward()
        assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0, net
        zero = torch.zeros_like(x, requires_grad=True)                   # all-zero features somewhere
        m(zero, x).sum().backward()
        assert torch.isfinite(zero.grad).all(), net


def test_shapes_and_cards(measures):
    m = measures["alex"]
    x = torch.rand(2, 3, 3, 48, 40, generator=torch.Generator().manual_seed(1))   # (B, T, C, H, W)
    assert m(x, x.flip(-1)).shape == (6,)
    with pytest.raises(ValueError, match="at least 32x32"):
        m(torch.rand(1, 3, 24, 64), torch.rand(1, 3, 24, 64))
    with pytest.raises(ValueError, match="full-reference"):
        m(torch.rand(1, 3, 64, 64))
    for net, w in (("alex", S.ALEX_FILE), ("vgg", S.VGG_FILE)):
        c = q.card(f"st-lpips-{net}")
        assert c.mode == "FR" and not c.higher_better and c.differentiable and c.present
        assert c.weights == (w,) and "2AFC" in c.description and w.filename in c.description
        m = measures[net]
        assert not m.training and not any(p.requires_grad for p in m.parameters())
