"""nriqa.quality.lpips_measure: the random-trunk LPIPS is reproducible whatever the global RNG."""
from __future__ import annotations

import torch

from nriqa import quality as q
from nriqa.data import pristine_frames
from nriqa.quality.lpips_measure import build_lpips


def test_lpips_randtrunk_is_reproducible():
    x = pristine_frames("test", max_frames=2)[:1, :, :32, :32].contiguous()     # a real clean frame
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    a = q.create("lpips-vgg-randtrunk")(y, x)
    torch.manual_seed(12345)                       # the global RNG must not matter
    b = build_lpips("vgg", random_trunk=True)(y, x)
    assert torch.equal(a, b) and a.item() > 0
