"""nriqa.data.degradations: MATLAB bicubic against pyiqa and hand-computed values; BD convention.

How close :func:`nriqa.data.bicubic_resize` is to ``pyiqa.matlab_utils.imresize``: the same MATLAB
imresize maths, different arithmetic: pyiqa computes weights in float32 (and casts every input to
float32), nriqa in float64. Measured worst case over random and real frames, scales 1/4 .. 4 and
non-integer ones, with and without antialias: 5.3e-6 (float32 input); with pyiqa run in float64 the
two agree to 2.4e-14. The tolerances below leave about 2x headroom.
"""
import numpy as np
import pytest
import torch

from nriqa.data import bicubic_resize, degrade, gaussian_blur

SCALES = [0.25, 1 / 3, 0.5, 0.37, 1.5, 2.0, 4.0]
FLOAT32_TOL = 1e-5      # measured worst: 5.3e-6 (scale 0.37, no antialias)
FLOAT64_TOL = 1e-13     # measured worst: 2.4e-14 (scale 1.5)
GRAD_TOL = 3e-5         # d/dx of sum(y**2), float32; measured worst: 1.3e-5 (over SCALES, both antialias)


def _pyiqa_imresize():
    return pytest.importorskip("pyiqa.matlab_utils").imresize


def _pyiqa_resize():
    """The module ``pyiqa.matlab_utils.resize`` (its ``imresize`` and ``cast_input``)."""
    return pytest.importorskip("pyiqa.matlab_utils.resize")


def test_bicubic_matches_pyiqa_on_a_real_photo_and_by_size():
    imresize = _pyiqa_imresize()
    import skimage.data

    img = torch.from_numpy(skimage.data.astronaut()[:256, :200].copy()).permute(2, 0, 1)[None].float() / 255
    for kw_ours, kw_ref in [({"scale": 0.25}, {"scale": 0.25}), ({"size": (64, 50)}, {"sizes": (64, 50)}),
                            ({"size": (100, 70)}, {"sizes": (100, 70)})]:
        ours, ref = bicubic_resize(img, **kw_ours), imresize(img, **kw_ref)
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max().item() < 1e-5


def test_bicubic_hand_computed_upsampling():
    # MATLAB: imresize([0 1], [1 4]) -> centres 0.75, 1.25, 1.75, 2.25 with a=-0.5 cubic weights and
    # symmetric padding; worked by hand: [-3/32, 13/64, 51/64, 35/32].
    x = torch.tensor([0.0, 1.0], dtype=torch.float64).view(1, 1, 1, 2)
    out = bicubic_resize(x, size=(1, 4)).flatten()
    assert torch.allclose(out, torch.tensor([-3 / 32, 13 / 64, 51 / 64, 35 / 32], dtype=torch.float64), atol=1e-12)


def test_bicubic_keeps_constants_and_interior_ramps():
    const = torch.full((3, 32, 40), 0.37)
    assert torch.allclose(bicubic_resize(const, 0.25), torch.full((3, 8, 10), 0.37), atol=1e-6)
    # cubic convolution reproduces linear functions: LR pixel j sits at HR coordinate 4j + 1.5
    ramp = torch.arange(64, dtype=torch.float64).view(1, 1, 64).expand(1, 4, 64)
    out = bicubic_resize(ramp, size=(1, 16))[0, 0]
    j = torch.arange(16, dtype=torch.float64)
    interior = slice(2, 14)   # away from the symmetric boundary
    assert torch.allclose(out[interior], (4 * j + 1.5)[interior], atol=1e-9)


def test_bicubic_is_differentiable_and_accepts_video_shapes():
    x = torch.rand(2, 3, 3, 16, 12, dtype=torch.float64, requires_grad=True)
    assert bicubic_resize(x, 0.25).shape == (2, 3, 3, 4, 3)
    assert torch.autograd.gradcheck(lambda t: bicubic_resize(t, 0.5), (x[:1, :1, :1].detach().requires_grad_(),))
    bicubic_resize(x, 0.25).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bicubic_rejects_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        bicubic_resize(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="shaped"):
        bicubic_resize(torch.rand(8, 8), 0.5)
    with pytest.raises(TypeError, match="floating-point"):
        bicubic_resize(torch.zeros(3, 8, 8, dtype=torch.uint8), 0.5)


def test_bd_equals_scipy_mirror_blur_then_offset_zero_decimation():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    hr = torch.rand(2, 3, 40, 52, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ours = degrade(hr, "BD")
    # independent reference: scipy Gaussian sigma=1.6 truncated at radius 6 (13 taps), "mirror" boundary
    blurred = scipy_ndimage.gaussian_filter(hr.numpy(), sigma=(0, 0, 1.6, 1.6), truncate=6 / 1.6, mode="mirror")
    ref = torch.from_numpy(blurred[..., ::4, ::4]).clamp(0, 1)
    assert ours.shape == (2, 3, 10, 13)
    assert (ours - ref).abs().max().item() < 1e-10


def test_degrade_shapes_ranges_quantization_and_errors():
    hr = torch.rand(2, 4, 3, 32, 48)
    for kind in ("BI", "BD", "bi"):
        lr = degrade(hr, kind)
        assert lr.shape == (2, 4, 3, 8, 12)
        assert lr.min() >= 0 and lr.max() <= 1
    q = degrade(hr, "BI", quantize=True)
    assert torch.allclose(q * 255, (q * 255).round(), atol=1e-4)
    assert (q - degrade(hr, "BI")).abs().max() <= 0.5 / 255 + 1e-6
    with pytest.raises(ValueError, match="multiple of scale"):
        degrade(torch.rand(3, 30, 32))
    with pytest.raises(ValueError, match="BI"):
        degrade(hr, "gaussian")
    blur = gaussian_blur(torch.full((1, 3, 20, 20), 0.5))
    assert torch.allclose(blur, torch.full_like(blur, 0.5), atol=1e-6)


def test_bi_degrade_is_bicubic_quarter():
    hr = torch.rand(3, 3, 24, 36, generator=torch.Generator().manual_seed(5))
    expect = bicubic_resize(hr, 0.25).clamp(0, 1)
    assert torch.allclose(degrade(hr, "BI"), expect, atol=1e-6)
    assert not np.allclose(degrade(hr, "BI").numpy(), degrade(hr, "BD").numpy(), atol=1e-3)


# ------------------------- against pyiqa's MATLAB imresize: float32 rounding, float64 maths, gradients


def _image(dtype: torch.dtype) -> torch.Tensor:
    return torch.rand(2, 3, 45, 38, generator=torch.Generator().manual_seed(7), dtype=dtype)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("scale", SCALES)
def test_float32_agrees_with_pyiqa_to_float32_rounding(scale, antialias):
    x = _image(torch.float32)
    ours = bicubic_resize(x, scale, antialias=antialias)
    ref = _pyiqa_resize().imresize(x, scale=scale, antialiasing=antialias)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < FLOAT32_TOL


@pytest.mark.parametrize("antialias", [True, False])
def test_same_maths_when_pyiqa_runs_in_float64(monkeypatch, antialias):
    """pyiqa's ``cast_input`` turns every input into float32; with it bypassed, pyiqa works in
    float64 and the difference falls to float64 rounding: the two implement the same resize."""
    monkeypatch.setattr(_pyiqa_resize(), "cast_input", lambda t: (t, None))
    x = _image(torch.float64)
    for scale in SCALES:
        ours = bicubic_resize(x, scale, antialias=antialias)
        ref = _pyiqa_resize().imresize(x, scale=scale, antialiasing=antialias)
        assert ref.dtype == torch.float64
        assert (ours - ref).abs().max().item() < FLOAT64_TOL, scale
    ours = bicubic_resize(x, size=(11, 9), antialias=antialias)
    ref = _pyiqa_resize().imresize(x, sizes=(11, 9), antialiasing=antialias)
    assert (ours - ref).abs().max().item() < FLOAT64_TOL


def test_not_bit_identical_so_nriqa_keeps_its_own():
    """If this starts failing, pyiqa's resize became bit-identical and could replace nriqa's."""
    x = _image(torch.float32)
    assert not torch.equal(bicubic_resize(x, 0.25), _pyiqa_resize().imresize(x, scale=0.25))


@pytest.mark.parametrize("scale", SCALES)
def test_gradients_agree_too(scale):
    x = _image(torch.float32)
    grads = []
    for fn in (lambda t: bicubic_resize(t, scale), lambda t: _pyiqa_resize().imresize(t, scale=scale)):
        t = x.clone().requires_grad_(True)
        fn(t).pow(2).sum().backward()
        grads.append(t.grad)
    assert (grads[0] - grads[1]).abs().max().item() < GRAD_TOL
