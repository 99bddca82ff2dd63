"""DISTS-style full-reference distance with a swappable backbone.

For each stage k of a feature extractor (stage 0 = the RGB image itself) and each channel j,
with global spatial statistics of reference features y and test features x:

    texture   t_kj = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)
    structure s_kj = (2 cov_xy + c2) / (var_x + var_y + c2)

    D(x, y) = 1 - mean_k [ sum_j (alpha_kj t_kj + beta_kj s_kj) ]

The weights are *uniform* (alpha_kj = beta_kj = 1 / (2 C_k): every stage counts equally,
channels equally within a stage): DISTS' learned alpha/beta need a downloaded weight file,
and they are fitted for the VGG trunk only. D is 0 for identical images, grows with
distortion, lies in [0, 1] for non-negative (ReLU) features and is **lower = better**.

Backbones (ImageNet-normalised input; weights never downloaded here):

- ``dists-vgg``           VGG-16 conv1_2 .. conv5_3, max pooling replaced by L2 pooling (as DISTS);
                          torchvision file ``vgg16-397923af.pth``
- ``dists-vgg-randtrunk`` the same VGG-16 with random weights (``torch.manual_seed(0)``), offline
- ``dists-resnet50``      ResNet-50 stem + layer1..layer4; ``resnet50-0676ba61.pth``
- ``dists-vit``           ViT-B/16 tokens after blocks 3, 6, 9, 12 as 14x14 maps (input resized
                          to 224x224); ``vit_b_16-c867db91.pth``
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet50, vit_b_16
from torchvision.models.vgg import cfgs, make_layers

from nriqa.quality.base import Card, WeightFile, register

_TV = "https://download.pytorch.org/models/"
VGG16_FILE = WeightFile("vgg16-397923af.pth", 553433881, _TV + "vgg16-397923af.pth", None, subdir="checkpoints")
RESNET50_FILE = WeightFile("resnet50-0676ba61.pth", 102530333, _TV + "resnet50-0676ba61.pth", None,
                           subdir="checkpoints")
VITB16_FILE = WeightFile("vit_b_16-c867db91.pth", None, _TV + "vit_b_16-c867db91.pth", None, subdir="checkpoints")
RANDTRUNK_SEED = 0
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _load_torchvision(model: nn.Module, wf: WeightFile, prefix: str = "") -> nn.Module:
    """Load a torchvision state dict from disk (never downloads); clear error when absent.
    With ``prefix`` only the keys starting with it are loaded (all of ``model``'s must be there)."""
    if not wf.present:
        raise FileNotFoundError(f"{wf.filename} is missing: put it at {wf.path} (source: {wf.url}), "
                                "or use dists-vgg-randtrunk, which needs no weights")
    state = torch.load(wf.path, map_location="cpu", weights_only=True)
    if prefix:
        state = {k: v for k, v in state.items() if k.startswith(prefix)}
    model.load_state_dict(state)
    return model


class L2Pool(nn.Module):
    """sqrt(Hann-weighted 3x3 average of x^2), stride 2 — the pooling DISTS uses instead of max pooling."""

    def __init__(self, channels: int):
        super().__init__()
        h = torch.tensor([0.5, 1.0, 0.5])
        k = (h[:, None] * h[None, :]) / 4.0
        self.register_buffer("kernel", k.expand(channels, 1, 3, 3).clone(), persistent=False)
        self.channels = channels

    def forward(self, x):
        y = F.conv2d(x * x, self.kernel, stride=2, padding=1, groups=self.channels)
        return torch.sqrt(y + 1e-12)


class VGGStages(nn.Module):
    """VGG-16 features split before each pooling, pools replaced by :class:`L2Pool`."""

    def __init__(self, pretrained: bool):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDTRUNK_SEED)
            features = make_layers(cfgs["D"])            # VGG-16 conv trunk only (no 100 M-param classifier)
            for m in features.modules():                 # torchvision's VGG initialisation
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
        if pretrained:
            holder = nn.Module()
            holder.features = features
            _load_torchvision(holder, VGG16_FILE, prefix="features.")
        layers = list(features.children())[:-1]   # drop the last max pool
        stages, cur = [], []
        for layer in layers:
            if isinstance(layer, nn.MaxPool2d):
                stages.append(nn.Sequential(*cur))
                channels = [m.out_channels for m in cur if isinstance(m, nn.Conv2d)][-1]
                cur = [L2Pool(channels)]
            else:
                cur.append(layer)
        stages.append(nn.Sequential(*cur))
        self.stages = nn.ModuleList(stages)
        self.channels = [64, 128, 256, 512, 512]

    def forward(self, x):
        out = []
        for s in self.stages:
            x = s(x)
            out.append(x)
        return out


class ResNetStages(nn.Module):
    def __init__(self):
        super().__init__()
        net = _load_torchvision(resnet50(weights=None), RESNET50_FILE)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.channels = [64, 256, 512, 1024, 2048]

    def forward(self, x):
        x = self.stem(x)
        out = [x]
        x = self.pool(x)
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class ViTStages(nn.Module):
    """ViT-B/16 token maps after blocks 3, 6, 9 and 12 (input resized to 224x224)."""

    def __init__(self, blocks=(3, 6, 9, 12)):
        super().__init__()
        self.net = _load_torchvision(vit_b_16(weights=None), VITB16_FILE)
        self.blocks = tuple(blocks)
        self.channels = [768] * len(blocks)

    def forward(self, x):
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        n = x.shape[0]
        t = self.net._process_input(x)
        t = torch.cat([self.net.class_token.expand(n, -1, -1), t], 1)
        enc = self.net.encoder
        t = enc.dropout(t + enc.pos_embedding)
        out = []
        for i, layer in enumerate(enc.layers, start=1):
            t = layer(t)
            if i in self.blocks:
                g = int(round((t.shape[1] - 1) ** 0.5))
                out.append(t[:, 1:].transpose(1, 2).reshape(n, -1, g, g))
        return out


BACKBONES = {
    "vgg": lambda: VGGStages(pretrained=True),
    "vgg-randtrunk": lambda: VGGStages(pretrained=False),
    "resnet50": ResNetStages,
    "vit": ViTStages,
}


class DISTSFamily(nn.Module):
    """DISTS-style distance ``forward(x, ref) -> (N,)`` (0 = identical, lower better); x, ref (N,3,H,W) in [0,1]."""

    def __init__(self, backbone: str = "vgg-randtrunk", c1: float = 1e-6, c2: float = 1e-6):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown DISTS backbone {backbone!r}; choose one of {list(BACKBONES)}")
        self.backbone = BACKBONES[backbone]()
        self.c1, self.c2 = c1, c2
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x):
        return [x] + self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if x.shape != ref.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x and ref must both be (N, 3, H, W) of equal shape, got {tuple(x.shape)} "
                             f"and {tuple(ref.shape)}")
        feats = self.features(torch.cat([x, ref]))
        n = x.shape[0]
        sims = []
        for f in feats:
            a, b = f[:n].flatten(2), f[n:].flatten(2)
            mx, my = a.mean(-1), b.mean(-1)
            vx = ((a - mx[..., None]) ** 2).mean(-1)
            vy = ((b - my[..., None]) ** 2).mean(-1)
            cxy = ((a - mx[..., None]) * (b - my[..., None])).mean(-1)
            texture = (2 * mx * my + self.c1) / (mx ** 2 + my ** 2 + self.c1)
            structure = (2 * cxy + self.c2) / (vx + vy + self.c2)
            sims.append(0.5 * texture.mean(1) + 0.5 * structure.mean(1))
        return 1.0 - torch.stack(sims, 1).mean(1)


_DESC = ("DISTS-style distance (texture: channel means, structure: channel covariances; uniform "
         "alpha/beta, stages weighted equally) on {what}. 0 = identical, lower is better.")
VARIANTS = {
    "dists-vgg": ("vgg", (VGG16_FILE,), "an ImageNet VGG-16 with L2 pooling"),
    "dists-vgg-randtrunk": ("vgg-randtrunk", (), f"a randomly initialised VGG-16 (seed {RANDTRUNK_SEED}), no weights"),
    "dists-resnet50": ("resnet50", (RESNET50_FILE,), "an ImageNet ResNet-50 (stem, layer1..4)"),
    "dists-vit": ("vit", (VITB16_FILE,), "an ImageNet ViT-B/16 (blocks 3/6/9/12, input resized to 224)"),
}


def register_dists_family() -> list[str]:
    """Register the four DISTS-family measures; returns their names."""
    for name, (backbone, weights, what) in VARIANTS.items():
        card = Card(name=name, mode="FR", higher_better=False, score_range=(0.0, 1.0), differentiable=True,
                    min_size=32, video=False, weights=weights, backend="nriqa.quality.dists_family",
                    description=_DESC.format(what=what))

        def builder(device="cpu", _backbone=backbone, **_):
            return DISTSFamily(_backbone).to(device).eval()

        register(card, builder)
    return list(VARIANTS)


register_dists_family()
