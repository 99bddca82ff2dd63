"""Discriminators: output and backbone shapes on odd sizes, parameter counts, errors."""
import pytest
import torch

from nriqa.models.discriminators import KINDS, build_discriminator


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hw", [(37, 53), (64, 64)])
def test_tiny_output_and_backbone_shapes(kind, hw):
    torch.manual_seed(0)
    disc = build_discriminator(kind, size="tiny")
    h, w = hw
    x = torch.rand(2, 3, h, w)
    logits = disc(x)
    feats = disc.backbone(x)
    assert torch.isfinite(logits).all()
    if kind in ("vanilla", "vit", "iseebetter"):
        assert logits.shape == (2, 1)
    elif kind == "unet":
        assert logits.shape == (2, 1, h, w)
    else:  # patchgan: three halvings then two 4x4 stride-1 convs with padding 1
        assert logits.shape == (2, 1, h // 8 - 2, w // 8 - 2)
    if kind == "vit":
        grid = -(-h // 8) * -(-w // 8)  # padded to whole 8x8 patches
        assert feats.shape == (2, 1 + grid, disc.feature_dim)
    else:
        assert feats.dim() == 4 and feats.shape[:2] == (2, disc.feature_dim)
    assert disc.kind == kind and disc.size == "tiny"


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_is_small_and_trains(kind):
    disc = build_discriminator(kind)
    assert 10_000 < _count(disc) < 150_000
    x = torch.rand(2, 3, 40, 40)
    disc(x).mean().backward()
    grads = [p.grad for p in disc.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_paper_parameter_counts():
    # published architectures: 70x70 PatchGAN (pix2pix/CycleGAN, 2.765 M), Real-ESRGAN's
    # U-Net discriminator with spectral norm (4.38 M), SRGAN discriminator (5.22 M)
    assert _count(build_discriminator("patchgan", size="paper")) == 2_765_633
    assert _count(build_discriminator("unet", size="paper")) == 4_376_897
    assert _count(build_discriminator("iseebetter", size="paper")) == 5_215_425
    vanilla = _count(build_discriminator("vanilla", size="paper"))
    vit = _count(build_discriminator("vit", size="paper"))
    assert 10_000_000 < vanilla < 20_000_000 and 5_000_000 < vit < 20_000_000


def test_unet_spectral_norm_is_applied():
    disc = build_discriminator("unet")
    assert torch.nn.utils.parametrize.is_parametrized(disc.down1)
    assert not torch.nn.utils.parametrize.is_parametrized(build_discriminator("unet", use_spectral_norm=False).down1)


def test_errors():
    with pytest.raises(ValueError, match="did you mean 'patchgan'"):
        build_discriminator("patchgen")
    with pytest.raises(ValueError, match="size"):
        build_discriminator("vit", size="huge")
    disc = build_discriminator("patchgan")
    with pytest.raises(ValueError, match="H,W >= 24"):
        disc(torch.rand(1, 3, 16, 40))
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        disc(torch.rand(3, 32, 32))
