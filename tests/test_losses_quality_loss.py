"""QualityLoss: lower for clean than distorted frames, frozen measure kept out of state_dict,
finite gradients, deterministic crop/tile, clear errors."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nriqa import quality
from nriqa.losses import LossInputError, QualityLoss
from nriqa.losses.quality_loss import split_tiles, tile_starts
from nriqa.quality import base

STANDIN = "test-standin-sharpness"


class NoiseSensitiveScore(nn.Module):
    """NR stand-in with parameters: exp(-20 * mean |Laplacian|), higher is better, in (0, 1]."""

    def __init__(self, device="cpu"):
        super().__init__()
        lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        self.conv = nn.Conv2d(3, 3, 3, bias=False, groups=3)
        self.conv.weight.data.copy_(lap.expand(3, 1, 3, 3))
        self.to(device)

    def forward(self, x):
        return torch.exp(-20 * self.conv(x).abs().mean(dim=(1, 2, 3)))


def _register(monkeypatch, name, differentiable=True, min_size=16):
    card = quality.Card(name=name, mode="NR", higher_better=True, score_range=(0, 1),
                        differentiable=differentiable, min_size=min_size, video=False)
    monkeypatch.setitem(base._REGISTRY, name, (card, NoiseSensitiveScore))
    return card


@pytest.fixture
def standin(monkeypatch):
    _register(monkeypatch, STANDIN)
    return STANDIN


@pytest.fixture(scope="module")
def frames():
    """Clean astronaut frames (2, 3, 64, 64) and a blurred + noisy copy, deterministic."""
    from skimage import data
    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255)[None]
    clean = torch.cat([F.interpolate(img, size=(64, 64), mode="area"),
                       F.interpolate(img[..., 100:400, 100:400], size=(64, 64), mode="area")])
    g = torch.Generator().manual_seed(0)
    blurred = F.avg_pool2d(F.pad(clean, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    distorted = (blurred + 0.08 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    return clean, distorted


@pytest.mark.parametrize("name", ["psnr", "ssim", "gmsd", "lpips-vgg-randtrunk", STANDIN])
def test_clean_scores_lower_than_distorted_and_gradients_finite(name, frames, monkeypatch):
    if name == STANDIN:
        _register(monkeypatch, STANDIN)
    elif name not in quality.offline_names(differentiable=True):
        pytest.skip(f"{name} not runnable offline here")
    clean, distorted = frames
    loss = QualityLoss(name)
    pred = distorted.clone().requires_grad_(True)
    bad = loss(pred, clean)
    good = loss(clean, clean)
    assert good.dim() == 0 and bad.dim() == 0
    assert good.item() < bad.item()
    bad.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_measure_is_frozen_and_outside_containing_state_dict(standin):
    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 3, 3, padding=1)
            self.criterion = QualityLoss(standin)

    gen = Generator()
    measure_params = list(gen.criterion.measure.parameters())
    assert measure_params and all(not p.requires_grad for p in measure_params)
    assert set(gen.state_dict()) == {"body.weight", "body.bias"}
    assert sum(p.numel() for p in gen.parameters()) == 3 * 3 * 9 + 3
    assert list(gen.criterion.parameters()) == [] and gen.criterion.state_dict() == {}
    gen.train()
    assert not gen.criterion.measure.training
    gen.to(torch.float64)  # conversions reach the unregistered measure
    assert all(p.dtype == torch.float64 for p in gen.criterion.measure.parameters())


def test_video_is_mean_over_frames(standin):
    loss = QualityLoss(standin)
    video = torch.rand(2, 3, 3, 20, 24)
    per_frame = torch.stack([loss(f[None]) for f in video.flatten(0, 1)])
    assert loss(video).item() == pytest.approx(per_frame.mean().item(), rel=1e-5)


def test_split_tiles_covers_frame_deterministically(standin):
    assert tile_starts(40, 16) == [0, 12, 24]
    assert tile_starts(32, 16) == [0, 16]
    assert tile_starts(16, 16) == [0]
    x = torch.rand(2, 3, 40, 33)
    tiles, k = split_tiles(x, 16)
    assert k == 3 * 3 and tiles.shape == (2 * 9, 3, 16, 16)
    assert torch.equal(tiles[9 + 4], x[1, :, 12:28, 8:24])  # frame 1, middle tile
    loss = QualityLoss(standin, tile=16)
    frame_losses = [1 - loss.measure(tiles[i * 9:(i + 1) * 9]).mean() for i in range(2)]
    assert loss(x).item() == pytest.approx(torch.stack(frame_losses).mean().item(), rel=1e-5)
    assert loss(x).item() == loss(x).item()


def test_centre_crop_scores_only_the_centre(standin):
    x = 0.5 + 0.02 * torch.rand(1, 3, 40, 40)  # smooth: the stand-in score is not saturated
    y = x.clone()
    y[..., :8, :] = torch.rand(1, 3, 8, 40)  # change only outside the central 24x24 window
    loss = QualityLoss(standin, crop=24)
    assert loss(x).item() == loss(y).item()
    assert QualityLoss(standin)(x).item() != QualityLoss(standin)(y).item()


def test_small_frames_error_or_upsample(standin):
    small = torch.rand(1, 3, 10, 12)
    with pytest.raises(LossInputError, match="at least 16x16"):
        QualityLoss(standin)(small)
    assert torch.isfinite(QualityLoss(standin, upsample_small=True)(small))


def test_pred_out_of_range_is_clamped_target_range_is_checked(frames):
    clean, _ = frames
    loss = QualityLoss("ssim")
    assert loss(clean * 1.5 - 0.2, clean).item() == pytest.approx(
        loss((clean * 1.5 - 0.2).clamp(0, 1), clean).item())
    with pytest.raises(LossInputError, match="target must lie"):
        loss(clean, clean * 2)


def test_construction_and_input_errors(monkeypatch, frames):
    _register(monkeypatch, "test-standin-nondiff", differentiable=False)
    with pytest.raises(ValueError, match="not differentiable"):
        QualityLoss("test-standin-nondiff")
    with pytest.raises(KeyError, match="did you mean 'ssim'"):
        QualityLoss("ssmi")
    clean, _ = frames
    loss = QualityLoss("ssim")
    with pytest.raises(LossInputError, match="target is required"):
        loss(clean)
    with pytest.raises(LossInputError, match="same shape"):
        loss(clean, clean[:1])
    with pytest.raises(LossInputError, match="3 channels"):
        loss(clean[:, :1], clean[:, :1])
    with pytest.raises(LossInputError, match="NaN"):
        loss(clean * float("nan"), clean)
    with pytest.raises(LossInputError, match=r"images \(N,C,H,W\)"):
        loss(clean[0], clean[0])


class ClipBrightness(nn.Module):
    """Video stand-in: (B,T,3,H,W) -> one score per clip (B,), higher is better."""

    def __init__(self, device="cpu"):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, clip):
        assert clip.dim() == 5, "video measures see whole clips"
        return (self.gain * clip).mean(dim=(1, 2, 3, 4))


def test_video_measure_sees_clips_and_supports_crop_only(monkeypatch):
    name = "test-standin-video"
    card = quality.Card(name=name, mode="NR", higher_better=True, score_range=(0, 1),
                        differentiable=True, min_size=8, video=True)
    monkeypatch.setitem(base._REGISTRY, name, (card, ClipBrightness))
    clip = torch.rand(2, 3, 3, 20, 20)
    assert QualityLoss(name)(clip).item() == pytest.approx(1 - clip.mean().item(), rel=1e-5)
    cropped = QualityLoss(name, crop=10)(clip).item()
    assert cropped == pytest.approx(1 - clip[..., 5:15, 5:15].mean().item(), rel=1e-5)
    with pytest.raises(LossInputError, match="video measure"):
        QualityLoss(name)(clip[0])
    with pytest.raises(ValueError, match="tile"):
        QualityLoss(name, tile=8)


def test_unvalidated_loss_lets_nan_reach_the_trainer_guard():
    """The trainer's hot path calls losses with validate=False: no host sync, and a NaN output
    becomes a NaN loss (which the non-finite guard skips) instead of an exception."""
    target = torch.rand(1, 2, 3, 32, 32)
    pred = target.clone()
    pred[0, 0, 0, 0, 0] = float("nan")
    loss = QualityLoss("gmsd", validate=False)(pred, target)
    assert not torch.isfinite(loss)
    with pytest.raises(ValueError):
        QualityLoss("gmsd")(pred, target)


def test_pad_small_mirror_pads_to_the_measure_size_and_keeps_the_pixel_scale():
    """``pad_small`` scores a 64 px frame inside a 96 px mirror image of itself (niqe needs 96):
    the centre is the frame unchanged; too small a frame, or both small-frame options, is an error."""
    from nriqa.losses.quality_loss import _mirror_pad

    x = torch.rand(2, 3, 3, 64, 64)                      # (B, T, 3, H, W)
    y = _mirror_pad(x, 96)
    assert y.shape == (2, 3, 3, 96, 96)
    assert torch.equal(y[..., 16:80, 16:80], x)
    assert torch.equal(y[..., 16:80, 15], x[..., :, 1])    # mirrored without repeating the edge
    loss = QualityLoss("niqe", pad_small=True)
    xr = x[:, 0].clone().requires_grad_(True)
    loss(xr).backward()
    assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0
    with pytest.raises(LossInputError, match="too small to mirror-pad"):
        _mirror_pad(torch.rand(1, 3, 40, 40), 96)
    with pytest.raises(ValueError, match="exclusive"):
        QualityLoss("niqe", pad_small=True, upsample_small=True)
