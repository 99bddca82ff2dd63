"""The CPU grid_sample deformable convolution against ``torchvision.ops.deform_conv2d``.

Values and gradients with respect to the input, offsets, mask, weight and bias, on small random
inputs whose offsets reach past the border (zeros outside). Measured over 20 seeds, as
``max|ours - tv| / max(1, max|tv|)``: float32 <= 5.7e-7, float64 <= 1.2e-15 (bias gradients
are equal). The tolerances leave about 10x headroom.
"""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import deform_conv2d

from nriqa.models.ops import deform_conv3x3_grid, modulated_deform_conv3x3

TOL = {torch.float32: 5e-6, torch.float64: 1e-14}
NAMES = ("output", "d input", "d offset", "d weight", "d bias", "d mask")


def _inputs(seed: int, dtype: torch.dtype, n=2, cin=4, cout=3, groups=2, h=7, w=6, reach=2.5):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, cin, h, w, generator=gen, dtype=dtype)
    offset = (torch.rand(n, 2 * groups * 9, h, w, generator=gen, dtype=dtype) * 2 - 1) * reach
    weight = torch.randn(cout, cin, 3, 3, generator=gen, dtype=dtype)
    bias = torch.randn(cout, generator=gen, dtype=dtype)
    mask = torch.rand(n, groups * 9, h, w, generator=gen, dtype=dtype)
    return x, offset, weight, bias, mask


def _torchvision(x, offset, weight, bias, mask):
    return deform_conv2d(x, offset, weight, bias, padding=(1, 1), mask=mask)


def _value_and_grads(fn, inputs, seed):
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 100), dtype=out.dtype))
    return [out.detach()] + [t.grad for t in leaves]


def _scaled_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item() / max(1.0, b.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_version_matches_torchvision_values_and_gradients(seed, dtype):
    inputs = _inputs(seed, dtype)
    ours = _value_and_grads(deform_conv3x3_grid, inputs, seed)
    ref = _value_and_grads(_torchvision, inputs, seed)
    for name, a, b in zip(NAMES, ours, ref):
        assert a.shape == b.shape, name
        assert _scaled_gap(a, b) <= TOL[dtype], f"{name}: {_scaled_gap(a, b):.3g}"


@pytest.mark.parametrize("weight_groups", [2, 3])
def test_weight_groups_match_torchvision(weight_groups):
    """VRT's multi-frame parallel warping convolves each neighbour's channels with its own weights."""
    gen = torch.Generator().manual_seed(weight_groups)
    x, offset, _, bias, mask = _inputs(weight_groups, torch.float64, cin=6, cout=6, groups=6)
    weight = torch.randn(6, 6 // weight_groups, 3, 3, generator=gen, dtype=torch.float64)
    ours = _value_and_grads(deform_conv3x3_grid, (x, offset, weight, bias, mask), 7)
    ref = _value_and_grads(_torchvision, (x, offset, weight, bias, mask), 7)
    for name, a, b in zip(NAMES, ours, ref):
        assert a.shape == b.shape and _scaled_gap(a, b) <= TOL[torch.float64], name


def test_one_group_no_bias_and_integer_offsets():
    """Integer offsets land on pixels (bilinear weights 0/1): the values agree exactly here."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 2, 5, 5, generator=gen, dtype=torch.float64)
    offset = torch.randint(-2, 3, (1, 18, 5, 5), generator=gen).to(torch.float64)
    mask = torch.rand(1, 9, 5, 5, generator=gen, dtype=torch.float64)
    weight = torch.randn(4, 2, 3, 3, generator=gen, dtype=torch.float64)
    ours = deform_conv3x3_grid(x, offset, weight, None, mask)
    ref = _torchvision(x, offset, weight, None, mask)
    assert _scaled_gap(ours, ref) <= TOL[torch.float64]


def test_zero_offsets_and_unit_mask_are_a_plain_convolution():
    x, _, weight, bias, _ = _inputs(4, torch.float64, groups=1)
    offset = torch.zeros(x.shape[0], 18, *x.shape[-2:], dtype=x.dtype)
    mask = torch.ones(x.shape[0], 9, *x.shape[-2:], dtype=x.dtype)
    ours = deform_conv3x3_grid(x, offset, weight, bias, mask)
    assert _scaled_gap(ours, torch.nn.functional.conv2d(x, weight, bias, padding=1)) <= TOL[torch.float64]


def test_dispatch_backends_agree_and_reject_unknown():
    x, offset, weight, bias, mask = _inputs(5, torch.float32)
    grid = modulated_deform_conv3x3(x, offset, weight, bias, mask, backend="grid")
    tv = modulated_deform_conv3x3(x, offset, weight, bias, mask, backend="torchvision")
    assert torch.equal(modulated_deform_conv3x3(x, offset, weight, bias, mask, backend="auto"), grid)  # CPU
    assert _scaled_gap(grid, tv) <= TOL[torch.float32]
    with pytest.raises(ValueError, match="deform backend"):
        modulated_deform_conv3x3(x, offset, weight, bias, mask, backend="cuda")


def test_flow_warp_compiles_once():
    """The grid cache must not make torch.compile trace flow_warp a second time (it did: dynamo
    guarded on the module-level dict, which the first call filled)."""
    from torch._dynamo.testing import CompileCounter

    from nriqa.models import ops

    torch._dynamo.reset()
    ops._GRIDS.clear()
    cnt = CompileCounter()
    warp = torch.compile(ops.flow_warp, backend=cnt)
    x, flow = torch.rand(1, 2, 6, 7), torch.rand(1, 2, 6, 7)
    for _ in range(3):
        out = warp(x, flow)
    torch.testing.assert_close(out, ops.flow_warp(x, flow))
    assert cnt.frame_count == 1
