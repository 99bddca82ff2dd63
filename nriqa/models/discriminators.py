"""Discriminators for adversarial VSR fine-tuning (frames, not clips).

``build_discriminator(kind, size="tiny"|"paper", **overrides)``; kinds:

========== =========================================================== =================== ==============
kind       architecture                                                forward -> logits   backbone(x)
========== =========================================================== =================== ==============
vanilla    VGG-style: (3x3 s1, 4x4 s2) conv pairs + BN, global average  (N, 1)              (N, C, H/2^k, W/2^k)
           pool, MLP head (any input size >= min_size)
patchgan   70x70 PatchGAN (pix2pix): 3 stride-2 + 1 stride-1 4x4 convs  (N, 1, h, w)        (N, C, h+1, w+1)
           with BN, a 1-channel 4x4 conv; h ~ H/8 - 2
unet       U-Net with spectral norm (Real-ESRGAN style): 3 stride-2     (N, 1, H, W)        (N, C, ~H/8, ~W/8)
           encoder convs, bilinear-upsampling decoder with skips                            encoder bottleneck
vit        small ViT: patch embedding (input padded to a multiple of    (N, 1)              (N, 1 + L, D) tokens,
           the patch), learned position embedding (interpolated to the                      CLS first, after the
           grid), pre-norm Transformer encoder, CLS -> linear head                          final LayerNorm
iseebetter SRGAN discriminator as used by iSeeBetter: 8 3x3 convs       (N, 1)              (N, C, ~H/16, ~W/16)
           (4 stride-2) + BN, adaptive average pool, 1x1-conv head
========== =========================================================== =================== ==============

Every discriminator takes images ``(N, 3, H, W)`` in ``[0, 1]`` (mapped to ``[-1, 1]`` inside),
returns raw logits (no sigmoid), and exposes ``kind``, ``size``, ``min_size`` (smallest
accepted side), ``feature_dim`` (channels ``C`` / token width ``D`` of ``backbone``) and
``backbone(x)``, and ``backbone_modules`` (the names of the submodules / parameters that
``backbone(x)`` uses; :func:`backbone_keys` lists their state-dict keys).  ``paper`` widths follow
the published networks (base 64 channels; ViT: patch 16, width 384, depth 6, 6 heads); ``tiny``
ones (base 8; ViT width 32, depth 2) run in milliseconds on a CPU.
"""
from __future__ import annotations

import difflib

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

KINDS = ("vanilla", "patchgan", "unet", "vit", "iseebetter")
SIZES = ("tiny", "paper")


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class Discriminator(nn.Module):
    """Base class: input checks and the ``[0, 1] -> [-1, 1]`` mapping shared by every kind."""

    kind = "base"
    min_size = 1
    feature_dim = 0
    backbone_modules: tuple[str, ...] = ("features",)

    def __init__(self, size: str) -> None:
        super().__init__()
        self.size = size

    def _prepare(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self.kind} discriminator expects images (N,3,H,W) in [0,1], got {shape}")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            raise ValueError(f"{self.kind} discriminator ({self.size}) needs H,W >= {self.min_size}, "
                             f"got {h}x{w}")
        return x * 2 - 1

    def backbone(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, size={self.size!r}"


class VanillaDiscriminator(Discriminator):
    """VGG-style global discriminator; one (3x3 s1, 4x4 s2) conv pair per width in ``widths``."""

    kind = "vanilla"

    def __init__(self, size: str = "tiny", widths: tuple[int, ...] = (8, 16, 32, 32), hidden: int = 32) -> None:
        super().__init__(size)
        layers: list[nn.Module] = []
        cin = 3
        for i, c in enumerate(widths):
            layers += [nn.Conv2d(cin, c, 3, 1, 1, bias=i == 0)]
            if i > 0:
                layers += [nn.BatchNorm2d(c)]
            layers += [_lrelu(), nn.Conv2d(c, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), _lrelu()]
            cin = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(cin, hidden), _lrelu(), nn.Linear(hidden, 1))
        self.feature_dim = cin
        self.min_size = 2 ** len(widths)

    def backbone(self, x: Tensor) -> Tensor:
        """(N, feature_dim, H / 2^k, W / 2^k) with k = number of stages."""
        return self.features(self._prepare(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x).mean(dim=(2, 3)))


class PatchGANDiscriminator(Discriminator):
    """70x70 PatchGAN: logits per overlapping 70x70 receptive field, (N, 1, h, w)."""

    kind = "patchgan"
    min_size = 24  # three halvings then two 4x4 valid-ish convs leave >= 1 logit

    def __init__(self, size: str = "tiny", base: int = 8) -> None:
        super().__init__(size)
        c1, c2, c3, c4 = base, 2 * base, 4 * base, 8 * base
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 4, 2, 1), _lrelu(),
            nn.Conv2d(c1, c2, 4, 2, 1, bias=False), nn.BatchNorm2d(c2), _lrelu(),
            nn.Conv2d(c2, c3, 4, 2, 1, bias=False), nn.BatchNorm2d(c3), _lrelu(),
            nn.Conv2d(c3, c4, 4, 1, 1, bias=False), nn.BatchNorm2d(c4), _lrelu(),
        )
        self.head = nn.Conv2d(c4, 1, 4, 1, 1)
        self.feature_dim = c4

    def backbone(self, x: Tensor) -> Tensor:
        """(N, 8*base, H/8 - 1, W/8 - 1) (floors), the map before the 1-channel conv."""
        return self.features(self._prepare(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


class UNetDiscriminator(Discriminator):
    """U-Net discriminator with spectral norm: one logit per input pixel, (N, 1, H, W).

    Decoder upsamples bilinearly to the matching encoder size (so odd sizes work).
    """

    kind = "unet"
    min_size = 8
    backbone_modules = ("conv0", "down1", "down2", "down3")

    def __init__(self, size: str = "tiny", base: int = 8, use_spectral_norm: bool = True) -> None:
        super().__init__(size)
        sn = spectral_norm if use_spectral_norm else (lambda m: m)
        b = base
        self.conv0 = nn.Conv2d(3, b, 3, 1, 1)
        self.down1 = sn(nn.Conv2d(b, 2 * b, 4, 2, 1, bias=False))
        self.down2 = sn(nn.Conv2d(2 * b, 4 * b, 4, 2, 1, bias=False))
        self.down3 = sn(nn.Conv2d(4 * b, 8 * b, 4, 2, 1, bias=False))
        self.up2 = sn(nn.Conv2d(8 * b, 4 * b, 3, 1, 1, bias=False))
        self.up1 = sn(nn.Conv2d(4 * b, 2 * b, 3, 1, 1, bias=False))
        self.up0 = sn(nn.Conv2d(2 * b, b, 3, 1, 1, bias=False))
        self.refine = nn.Sequential(sn(nn.Conv2d(b, b, 3, 1, 1, bias=False)), _lrelu(),
                                    sn(nn.Conv2d(b, b, 3, 1, 1, bias=False)), _lrelu())
        self.head = nn.Conv2d(b, 1, 3, 1, 1)
        self.feature_dim = 8 * b

    def _encode(self, x: Tensor) -> list[Tensor]:
        x0 = F.leaky_relu(self.conv0(self._prepare(x)), 0.2)
        x1 = F.leaky_relu(self.down1(x0), 0.2)
        x2 = F.leaky_relu(self.down2(x1), 0.2)
        x3 = F.leaky_relu(self.down3(x2), 0.2)
        return [x0, x1, x2, x3]

    def backbone(self, x: Tensor) -> Tensor:
        """Encoder bottleneck (N, 8*base, ~H/8, ~W/8)."""
        return self._encode(x)[-1]

    def forward(self, x: Tensor) -> Tensor:
        x0, x1, x2, y = self._encode(x)
        for conv, skip in ((self.up2, x2), (self.up1, x1), (self.up0, x0)):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = F.leaky_relu(conv(y), 0.2) + skip
        return self.head(self.refine(y))


class ViTDiscriminator(Discriminator):
    """Small Vision Transformer: CLS token -> one logit per image."""

    kind = "vit"
    backbone_modules = ("embed", "cls", "pos", "cls_pos", "encoder", "norm")

    def __init__(self, size: str = "tiny", patch: int = 8, dim: int = 32, depth: int = 2, heads: int = 2,
                 mlp_ratio: float = 4.0, grid: int = 8) -> None:
        super().__init__(size)
        if dim % heads:
            raise ValueError(f"vit: dim ({dim}) must be divisible by heads ({heads})")
        self.patch = patch
        self.min_size = patch
        self.feature_dim = dim
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, dim, grid, grid) * 0.02)  # for a grid x grid patch layout
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)
        nn.init.trunc_normal_(self.cls, std=0.02)

    def backbone(self, x: Tensor) -> Tensor:
        """Tokens (N, 1 + L, dim) after the final LayerNorm; index 0 is CLS, L = patches (row-major)."""
        x = self._prepare(x)
        h, w = x.shape[-2:]
        p = self.patch
        x = F.pad(x, (0, -w % p, 0, -h % p), mode="replicate")  # bottom/right pad to whole patches
        tokens = self.embed(x)  # (N, D, gh, gw)
        gh, gw = tokens.shape[-2:]
        pos = self.pos
        if pos.shape[-2:] != (gh, gw):
            pos = F.interpolate(pos, size=(gh, gw), mode="bicubic", align_corners=False)
        tokens = (tokens + pos).flatten(2).transpose(1, 2)
        cls = (self.cls + self.cls_pos).expand(tokens.shape[0], -1, -1)
        return self.norm(self.encoder(torch.cat([cls, tokens], dim=1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x)[:, 0])


class ISeeBetterDiscriminator(Discriminator):
    """SRGAN-style discriminator (as in iSeeBetter), adaptive pooling so any size works."""

    kind = "iseebetter"
    min_size = 4

    def __init__(self, size: str = "tiny", base: int = 8) -> None:
        super().__init__(size)
        b = base
        plan = [(b, b, 2), (b, 2 * b, 1), (2 * b, 2 * b, 2), (2 * b, 4 * b, 1), (4 * b, 4 * b, 2),
                (4 * b, 8 * b, 1), (8 * b, 8 * b, 2)]
        layers: list[nn.Module] = [nn.Conv2d(3, b, 3, 1, 1), _lrelu()]
        for cin, cout, stride in plan:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), _lrelu()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8 * b, 16 * b, 1), _lrelu(),
                                  nn.Conv2d(16 * b, 1, 1))
        self.feature_dim = 8 * b

    def backbone(self, x: Tensor) -> Tensor:
        """(N, 8*base, ceil(H/16), ceil(W/16))."""
        return self.features(self._prepare(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x)).flatten(1)


_CLASSES = {"vanilla": VanillaDiscriminator, "patchgan": PatchGANDiscriminator, "unet": UNetDiscriminator,
            "vit": ViTDiscriminator, "iseebetter": ISeeBetterDiscriminator}

_PRESETS: dict[str, dict[str, dict]] = {
    "vanilla": {"tiny": dict(widths=(8, 16, 32, 32), hidden=32),
                "paper": dict(widths=(64, 128, 256, 512, 512), hidden=100)},
    "patchgan": {"tiny": dict(base=8), "paper": dict(base=64)},
    "unet": {"tiny": dict(base=8), "paper": dict(base=64)},
    "vit": {"tiny": dict(patch=8, dim=32, depth=2, heads=2, grid=8),
            "paper": dict(patch=16, dim=384, depth=6, heads=6, grid=14)},
    "iseebetter": {"tiny": dict(base=8), "paper": dict(base=64)},
}


def backbone_keys(disc: nn.Module) -> list[str]:
    """State-dict keys of ``disc`` that its ``backbone(x)`` uses (``disc.backbone_modules``), in order."""
    names = tuple(getattr(disc, "backbone_modules", ()))
    if not names:
        raise ValueError(f"{type(disc).__name__} names no backbone_modules")
    return [k for k in disc.state_dict() if k.split(".")[0] in names]


def build_discriminator(kind: str, size: str = "tiny", **overrides) -> Discriminator:
    """Build a discriminator ``kind`` at ``size`` ("tiny" | "paper"); ``overrides`` replace preset
    constructor arguments (e.g. ``base=32``, ``depth=4``, ``use_spectral_norm=False``)."""
    key = str(kind).lower()
    if key not in _CLASSES:
        close = difflib.get_close_matches(key, KINDS, n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown discriminator kind {kind!r}{hint} (known: {', '.join(KINDS)})")
    if size not in SIZES:
        raise ValueError(f"discriminator size must be one of {SIZES}, got {size!r}")
    return _CLASSES[key](size=size, **{**_PRESETS[key][size], **overrides})
