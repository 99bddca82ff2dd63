"""Gradients, determinism and a short overfit of the tiny generators."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nriqa.models import build, flow_parameters
from nriqa.models.ops import FlowGuidedDeformConv

NAMES = ["basicvsrpp", "iseebetter", "vrt"]


def _wake_offsets(model: torch.nn.Module) -> None:
    """The offset heads start at zero (pure flow-guided warping), which zeroes the gradient of
    the layers before them at step 0; give them a small value so every layer can be checked."""
    for m in model.modules():
        if isinstance(m, FlowGuidedDeformConv):
            torch.nn.init.normal_(m.conv_offset[-1].weight, std=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = build(name, "tiny")
    _wake_offsets(model)
    lr = torch.rand(1, 4, 3, 16, 16)
    hr = torch.rand(1, 4, 3, 64, 64)
    F.l1_loss(model(lr), hr).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead
    flow = {id(p) for p in flow_parameters(model)}
    assert all(p.grad is not None for p in model.parameters() if id(p) in flow)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model_and_output(name):
    lr = torch.rand(1, 3, 3, 12, 12)
    outs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        with torch.no_grad():
            outs.append(build(name, "tiny").eval()(lr))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


def _clip() -> tuple[torch.Tensor, torch.Tensor]:
    """One short real clip: an embedded nriqa clip, or a panning crop of skimage's astronaut."""
    try:
        from nriqa.data import embedded_clips

        hr = embedded_clips("train")[0].hr[:3, :, :48, :48].float()
    except Exception:  # nriqa.data not ready: fall back to a real photograph
        from skimage import data

        img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
        hr = torch.stack([img[:, 100 + 2 * t: 148 + 2 * t, 180 + 3 * t: 228 + 3 * t] for t in range(3)])
    lr = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True).clamp(0, 1)
    return lr.unsqueeze(0), hr.unsqueeze(0)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / F.mse_loss(a.clamp(0, 1), b)))


def test_tiny_basicvsrpp_overfits_one_clip():
    """From its bicubic-residual start, tiny BasicVSR++ fits one real clip by a clear margin."""
    torch.manual_seed(0)
    lr, hr = _clip()
    model = build("basicvsrpp", "tiny")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = _psnr(model(lr), hr)
    for _ in range(150):  # ~15 s of CPU time
        loss = torch.sqrt((model(lr) - hr) ** 2 + 1e-6).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = _psnr(model(lr), hr)
    assert after > before + 1.5, (before, after)
