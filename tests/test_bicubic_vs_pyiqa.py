"""How close :func:`nriqa.data.bicubic_resize` is to ``pyiqa.matlab_utils.imresize``.

Same MATLAB imresize maths, different arithmetic: pyiqa computes weights in float32 (and casts
every input to float32), nriqa in float64. Measured worst case over random and real frames,
scales 1/4 .. 4 and non-integer ones, with and without antialias: 5.3e-6 (float32 input); with
pyiqa run in float64 the two agree to 2.4e-14. The tolerances below leave about 2x headroom.
"""
from __future__ import annotations

import pytest
import torch

from nriqa.data import bicubic_resize

resize = pytest.importorskip("pyiqa.matlab_utils.resize")

SCALES = [0.25, 1 / 3, 0.5, 0.37, 1.5, 2.0, 4.0]
FLOAT32_TOL = 1e-5      # measured worst: 5.3e-6 (scale 0.37, no antialias)
FLOAT64_TOL = 1e-13     # measured worst: 2.4e-14 (scale 1.5)
GRAD_TOL = 3e-5         # d/dx of sum(y**2), float32; measured worst: 1.3e-5 (over SCALES, both antialias)


def _image(dtype: torch.dtype) -> torch.Tensor:
    return torch.rand(2, 3, 45, 38, generator=torch.Generator().manual_seed(7), dtype=dtype)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("scale", SCALES)
def test_float32_agrees_with_pyiqa_to_float32_rounding(scale, antialias):
    x = _image(torch.float32)
    ours = bicubic_resize(x, scale, antialias=antialias)
    ref = resize.imresize(x, scale=scale, antialiasing=antialias)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() < FLOAT32_TOL


@pytest.mark.parametrize("antialias", [True, False])
def test_same_maths_when_pyiqa_runs_in_float64(monkeypatch, antialias):
    """pyiqa's ``cast_input`` turns every input into float32; with it bypassed, pyiqa works in
    float64 and the difference falls to float64 rounding: the two implement the same resize."""
    monkeypatch.setattr(resize, "cast_input", lambda t: (t, None))
    x = _image(torch.float64)
    for scale in SCALES:
        ours = bicubic_resize(x, scale, antialias=antialias)
        ref = resize.imresize(x, scale=scale, antialiasing=antialias)
        assert ref.dtype == torch.float64
        assert (ours - ref).abs().max().item() < FLOAT64_TOL, scale
    ours = bicubic_resize(x, size=(11, 9), antialias=antialias)
    ref = resize.imresize(x, sizes=(11, 9), antialiasing=antialias)
    assert (ours - ref).abs().max().item() < FLOAT64_TOL


def test_not_bit_identical_so_nriqa_keeps_its_own():
    """If this starts failing, pyiqa's resize became bit-identical and could replace nriqa's."""
    x = _image(torch.float32)
    assert not torch.equal(bicubic_resize(x, 0.25), resize.imresize(x, scale=0.25))


@pytest.mark.parametrize("scale", SCALES)
def test_gradients_agree_too(scale):
    x = _image(torch.float32)
    grads = []
    for fn in (lambda t: bicubic_resize(t, scale), lambda t: resize.imresize(t, scale=scale)):
        t = x.clone().requires_grad_(True)
        fn(t).pow(2).sum().backward()
        grads.append(t.grad)
    assert (grads[0] - grads[1]).abs().max().item() < GRAD_TOL
