"""NR-IQA architectures the kit trains itself (no pretrained weights, nothing downloaded).

Every model maps ``x`` (N, 3, H, W) float RGB in [0, 1] to a raw score (N,), higher = better
(after training). H, W >= 32.

- ``cnniqa``  : pyiqa's CNNIQA (Kang et al. 2014 design), built with ``pretrained=None``.
- ``wadiqam`` : pyiqa's WaDIQaM-NR (Bosse et al. 2018) features / fc_q / fc_w heads, built with
  ``pretrained=False``; our wrapper tiles the image into non-overlapping 32 px patches itself
  (covering the whole image, borders included) and takes the weighted average of patch scores.
- ``dbcnn``   : a compact DBCNN-*style* net written here: pyiqa's DBCNN always loads ImageNet VGG-16
  and the pretrained SCNN in its constructor (downloads), so it cannot be built offline. Two small
  randomly initialised conv branches (VGG-like and SCNN-like), bilinear pooling of their outer
  product, signed sqrt + L2 normalisation, linear head — DBCNN's structure at CPU size.
- ``vitiqa``  : a small ViT (8 px patches, 4 blocks, width 96, CLS token, learned position
  embeddings interpolated to the input grid) with a linear head, for conv-vs-Transformer.
- ``disc-<kind>``: the backbone of :func:`nriqa.models.discriminators.build_discriminator`
  (global average pooled) with a linear head — for "discriminator as IQA initialiser"; built at
  the discriminator's own size and overrides (``build_arch("disc-unet", size="paper")``).
- :class:`TrunkIQA`: a linear head on any feature trunk (pooled taps), e.g. ST-LPIPS's trunk.

:mod:`nriqa.iqa` trains these; :mod:`nriqa.quality.kit` scores with trained checkpoints.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .discriminators import backbone_keys, build_discriminator

ARCHS = ("cnniqa", "wadiqam", "dbcnn", "vitiqa")
MIN_SIZE = 32
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"IQA model input must be (N, 3, H, W), got {tuple(x.shape)}")
    if min(x.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"IQA model input must be at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(x.shape[-2:])}")


class _Normalise(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class CNNIQA(nn.Module):
    """pyiqa.archs.cnniqa_arch.CNNIQA with ``pretrained=None``; (N,3,H,W) -> (N,)."""

    def __init__(self):
        super().__init__()
        # pyiqa is imported on use: it is slow to import and reads $TORCH_HOME when imported
        from pyiqa.archs.cnniqa_arch import CNNIQA as _CNNIQA

        self.norm = _Normalise()
        self.net = _CNNIQA(pretrained=None, pretrained_model_path=None)

    def forward(self, x):
        _check_input(x)
        return self.net(self.norm(x)).view(-1)


class WaDIQaMNR(nn.Module):
    """WaDIQaM-NR from pyiqa's modules; deterministic full-coverage 32 px tiling; (N,3,H,W) -> (N,)."""

    patch = 32

    def __init__(self):
        super().__init__()
        from pyiqa.archs.wadiqam_arch import WaDIQaM  # imported on use, as in CNNIQA

        net = WaDIQaM(metric_type="NR", pretrained=False, pretrained_model_path=None)
        self.norm = _Normalise()
        self.features, self.fc_q, self.fc_w = net.features, net.fc_q, net.fc_w

    def _tiles(self, x):
        n, c, h, w = x.shape
        p = self.patch
        tops = sorted({*range(0, h - p + 1, p), h - p})
        lefts = sorted({*range(0, w - p + 1, p), w - p})
        tiles = [x[:, :, t:t + p, l:l + p] for t in tops for l in lefts]
        return torch.stack(tiles, 1).reshape(-1, c, p, p), len(tiles)

    def forward(self, x):
        _check_input(x)
        tiles, k = self._tiles(self.norm(x))
        feat = self.features(tiles).reshape(x.shape[0], k, -1)
        q = self.fc_q(feat)
        w = self.fc_w(feat) + 1e-8
        return ((q * w).sum(1) / w.sum(1)).view(-1)


def _conv(cin, cout, stride=1):
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CompactDBCNN(nn.Module):
    """DBCNN-style bilinear pooling of two conv branches, written here (random init); (N,3,H,W) -> (N,)."""

    def __init__(self, c1: int = 96, c2: int = 48):
        super().__init__()
        self.norm = _Normalise()
        # "VGG-like" branch: 3x3 conv pairs and max pooling (1/8 resolution)
        self.branch1 = nn.Sequential(*_conv(3, 32), *_conv(32, 32), nn.MaxPool2d(2), *_conv(32, 64),
                                     nn.MaxPool2d(2), *_conv(64, c1), nn.MaxPool2d(2), *_conv(c1, c1))
        # "SCNN-like" branch: strided convs (1/8 resolution)
        self.branch2 = nn.Sequential(*_conv(3, 24, 2), *_conv(24, 32, 2), *_conv(32, c2, 2), *_conv(c2, c2))
        self.fc = nn.Linear(c1 * c2, 1)
        nn.init.kaiming_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        _check_input(x)
        x = self.norm(x)
        a, b = self.branch1(x), self.branch2(x)
        if a.shape[-2:] != b.shape[-2:]:
            b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)
        n, c1, h, w = a.shape
        z = torch.bmm(a.flatten(2), b.flatten(2).transpose(1, 2)) / (h * w)  # (N, c1, c2)
        z = z.flatten(1)
        z = torch.sign(z) * torch.sqrt(z.abs() + 1e-8)
        return self.fc(F.normalize(z, dim=1)).view(-1)


class SmallViTIQA(nn.Module):
    """Small ViT regressor: 8 px patches, CLS token, pre-norm blocks; (N,3,H,W) -> (N,)."""

    def __init__(self, patch: int = 8, dim: int = 96, depth: int = 4, heads: int = 3, grid: int = 8):
        super().__init__()
        self.norm_in = _Normalise()
        self.patch, self.grid = patch, grid
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, grid * grid, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def _pos(self, gh, gw):
        if (gh, gw) == (self.grid, self.grid):
            return self.pos
        p = self.pos.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        p = F.interpolate(p, size=(gh, gw), mode="bicubic", align_corners=False)
        return p.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)

    def forward(self, x):
        _check_input(x)
        t = self.embed(self.norm_in(x))
        gh, gw = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2) + self._pos(gh, gw)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1)
        t = self.norm(self.blocks(t))
        return self.head(t[:, 0]).view(-1)


class DiscriminatorIQA(nn.Module):
    """IQA head on a discriminator's ``backbone(x)`` features (global average pool + linear).

    The discriminator is built as :func:`build_discriminator` ``(kind, size, **overrides)`` -- pass
    the GAN run's own ``size`` and overrides so that a trained discriminator's backbone loads whole
    (:meth:`backbone_keys`). Its own logit head stays unused.
    """

    def __init__(self, kind: str, size: str = "tiny", **overrides):
        super().__init__()
        self.discriminator = build_discriminator(kind, size, **overrides)
        self.options = {"size": size, **overrides}
        self.head = nn.Linear(int(self.discriminator.feature_dim), 1)

    def backbone_keys(self) -> list[str]:
        """State-dict keys of :attr:`discriminator` used by its backbone (what an init must fill)."""
        return backbone_keys(self.discriminator)

    def _features(self, x):
        f = self.discriminator.backbone(x)
        if f.ndim == 4:
            f = f.mean((2, 3))
        elif f.ndim == 3:
            f = f.mean(1)
        return f.flatten(1)

    def forward(self, x):
        _check_input(x)
        return self.head(self._features(x)).view(-1)


class TrunkIQA(nn.Module):
    """IQA head on a feature trunk: ``trunk(prepare(x))`` -> list of maps (N, C_i, h_i, w_i),
    each global-average pooled, concatenated (sum C_i = ``sum(channels)``), linear head.

    Used with a perceptually trained trunk (ST-LPIPS's, built in :mod:`nriqa.iqa.nets`); the
    ``trunk`` attribute's state-dict keys are what an init must fill (:meth:`backbone_keys`).
    """

    def __init__(self, trunk: nn.Module, channels, prepare: nn.Module | None = None):
        super().__init__()
        self.prepare = prepare if prepare is not None else nn.Identity()
        self.trunk = trunk
        self.head = nn.Linear(int(sum(channels)), 1)

    def backbone_keys(self) -> list[str]:
        return ["trunk." + k for k in self.trunk.state_dict()]

    def forward(self, x):
        _check_input(x)
        taps = self.trunk(self.prepare(x))
        taps = taps if isinstance(taps, (list, tuple)) else [taps]
        return self.head(torch.cat([t.mean((2, 3)) for t in taps], 1)).view(-1)


def build_arch(arch: str, **options) -> nn.Module:
    """Build an untrained IQA network by name (see module docstring). No download.

    ``options`` go to ``disc-<kind>`` only (``size`` and discriminator overrides)."""
    if options and not arch.startswith("disc-"):
        raise ValueError(f"IQA arch {arch!r} takes no options, got {sorted(options)}")
    if arch == "cnniqa":
        return CNNIQA()
    if arch == "wadiqam":
        return WaDIQaMNR()
    if arch == "dbcnn":
        return CompactDBCNN()
    if arch == "vitiqa":
        return SmallViTIQA()
    if arch.startswith("disc-"):
        return DiscriminatorIQA(arch[5:], **options)
    raise ValueError(f"unknown IQA arch {arch!r}; choose one of {list(ARCHS)} or 'disc-<discriminator kind>'")
