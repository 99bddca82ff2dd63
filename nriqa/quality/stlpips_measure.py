"""ST-LPIPS: shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022), lower is better.

LPIPS (Zhang et al. 2018) compares unit-normalised deep features of two images through learned
per-channel weights. ST-LPIPS makes the trunk tolerate small shifts: stride-1 convolutions and
max-pools each followed by an anti-aliasing blur-pool (binomial 3x3 ``[1, 2, 1]^2 / 16``,
reflection padding 2, stride 2; Zhang 2019). The released network (trunk and linear heads, one
file) was trained by the authors on the BAPPS human two-alternative-forced-choice (2AFC) judgments.

- ``st-lpips-alex``: AlexNet-shaped trunk, 5 taps (64, 192, 384, 256, 256 channels);
- ``st-lpips-vgg``: VGG-16-shaped trunk, 5 taps (64, 128, 256, 512, 512 channels).

Weights (trunk included, no ImageNet download): ``stlpips_pytorch/weights/vST0.0/
{alex,vgg}_shift_tolerant.pth`` in the ``stlpips-pytorch`` 0.0.2 wheel, located with
``importlib.metadata``. The network is nriqa's own (the wheel's module imports ``torchsummary``,
which nriqa does not need); its parameter and buffer names follow the file so that it loads with
``strict=True``: every tensor of the file is used and every tensor of the network is filled.

Distance for ``x, ref`` in [0, 1]: map to [-1, 1], scale per channel (``(v - shift) / scale``, the
file's ``scaling_layer``), then per tap ``mean_hw(w . (f(x)/|f(x)| - f(ref)/|f(ref)|)^2)``, summed
over the taps. A 1e-20 floor under the channel norm's square root keeps gradients finite where a
position's features are all zero (the published code divides by ``norm + 1e-10`` there too).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from nriqa.quality.base import Card, WeightFile, register, verified_path

_PIP = "pip install stlpips-pytorch==0.0.2"
ALEX_FILE = WeightFile("alex_shift_tolerant.pth", 9899296, _PIP,
                       "b356b382f96010f77d085ee8343ecd9fd322d0a56e8de2b2d0549fafcad8b9ee",
                       subdir="stlpips_pytorch/weights/vST0.0", root="package:stlpips-pytorch")
VGG_FILE = WeightFile("vgg_shift_tolerant.pth", 58907298, _PIP,
                      "44597da68f49c1837c100ff52299050f274d102eb102e5837178c79be6f0e250",
                      subdir="stlpips_pytorch/weights/vST0.0", root="package:stlpips-pytorch")
MIN_SIZE = 32


class BlurPool(nn.Module):
    """Depthwise binomial 3x3 blur with reflection padding 2, then keep every second pixel."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("filt", (torch.outer(k, k) / 16).expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _conv(cin: int, cout: int, k: int = 3, p: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=k, padding=p)


def _slices(layers: list[nn.Module], cuts: tuple[int, ...]) -> list[nn.Sequential]:
    """Split a layer list at ``cuts``; each module keeps its index in the whole list as its name."""
    bounds = (0, *cuts, len(layers))
    return [nn.Sequential(OrderedDict((str(i), layers[i]) for i in range(a, b))) for a, b in zip(bounds, bounds[1:])]


def alex_layers() -> tuple[list[nn.Module], tuple[int, ...], tuple[int, ...]]:
    """The shift-tolerant AlexNet trunk: layers, slice cuts and tap channels."""
    layers = [
        nn.Conv2d(3, 64, kernel_size=11, stride=1, padding=2), BlurPool(64), nn.ReLU(),
        nn.MaxPool2d(3, stride=1), BlurPool(64), _conv(64, 192, 5, 2), nn.ReLU(),
        nn.MaxPool2d(3, stride=1), BlurPool(192), _conv(192, 384), nn.ReLU(),
        _conv(384, 256), nn.ReLU(),
        _conv(256, 256), nn.ReLU(),
    ]
    return layers, (3, 7, 11, 13), (64, 192, 384, 256, 256)


def vgg_layers() -> tuple[list[nn.Module], tuple[int, ...], tuple[int, ...]]:
    """The shift-tolerant VGG-16 trunk (up to relu5_3): layers, slice cuts and tap channels."""
    layers: list[nn.Module] = []
    cin = 3
    for block, (cout, n) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if block:
            layers += [nn.MaxPool2d(2, stride=1), BlurPool(cin)]
        for _ in range(n):
            layers += [_conv(cin, cout), nn.ReLU()]
            cin = cout
    return layers, (4, 10, 18, 26), (64, 128, 256, 512, 512)


class Trunk(nn.Module):
    """``forward(x) -> [tap1 .. tap5]``: the output of each slice."""

    def __init__(self, layers: list[nn.Module], cuts: tuple[int, ...]):
        super().__init__()
        for i, s in enumerate(_slices(layers, cuts), start=1):
            self.add_module(f"slice{i}", s)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for s in self.children():
            x = s(x)
            taps.append(x)
        return taps


class Head(nn.Module):
    """Learned non-negative channel weights of one tap (a bias-free 1x1 conv; index 0 was dropout)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(OrderedDict([("0", nn.Identity()),
                                                ("1", nn.Conv2d(channels, 1, 1, bias=False))]))

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return self.model(d)


class Scaling(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (torch.sqrt((f * f).sum(1, keepdim=True) + 1e-20) + 1e-10)


class STLPIPS(nn.Module):
    """``forward(x, ref) -> (N,)`` ST-LPIPS distances for ``x, ref`` (N, 3, H, W) in [0, 1]."""

    def __init__(self, net: str):
        super().__init__()
        if net not in ("alex", "vgg"):
            raise ValueError(f"st-lpips: net must be 'alex' or 'vgg', got {net!r}")
        layers, cuts, chns = alex_layers() if net == "alex" else vgg_layers()
        self.scaling_layer = Scaling()
        self.net = Trunk(layers, cuts)
        for i, c in enumerate(chns):
            self.add_module(f"lin{i}", Head(c))
        self.n_taps = len(chns)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        # two passes, not one over cat([x, ref]): the backward then runs through x's pass only
        fx, fr = (self.net(self.scaling_layer(v * 2 - 1)) for v in (x, ref))
        total = x.new_zeros(x.shape[0])
        for i, (a, b) in enumerate(zip(fx, fr)):
            d = (_unit(a) - _unit(b)) ** 2
            total = total + getattr(self, f"lin{i}")(d).mean(dim=(1, 2, 3))
        return total


def load_strict(model: nn.Module, state: dict, source: str) -> int:
    """Load ``state`` into ``model`` requiring the same names and shapes both ways; returns the tensor count."""
    want = model.state_dict()
    missing, unused = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    bad = sorted(k for k in set(want) & set(state) if tuple(want[k].shape) != tuple(state[k].shape))
    if missing or unused or bad:
        raise ValueError(f"{source}: does not match the network: missing {missing}, unused {unused}, "
                         f"shape differs {bad}")
    model.load_state_dict(state, strict=True)
    return len(state)


def build_stlpips(net: str, device: str | torch.device = "cpu") -> STLPIPS:
    """ST-LPIPS with every trunk and head tensor loaded from the wheel's file (nothing downloaded)."""
    w = ALEX_FILE if net == "alex" else VGG_FILE
    path = verified_path(w)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = STLPIPS(net)
    load_strict(model, state, str(path))
    return model.eval().requires_grad_(False).to(device)


def _register() -> None:
    common = dict(mode="FR", higher_better=False, score_range=(0, 1), differentiable=True, video=False,
                  min_size=MIN_SIZE, backend="nriqa")
    for net, w, trunk in (("alex", ALEX_FILE, "AlexNet"), ("vgg", VGG_FILE, "VGG-16")):
        register(Card(name=f"st-lpips-{net}", weights=(w,),
                      description=f"ST-LPIPS (Ghildyal & Liu, ECCV 2022): shift-tolerant LPIPS, anti-aliased "
                                  f"{trunk} trunk and linear heads trained on BAPPS human 2AFC judgments; "
                                  f"stlpips-pytorch 0.0.2 wheel, weights/vST0.0/{w.filename} (trunk included)",
                      training_data=("bapps",), **common),
                 lambda device="cpu", _net=net, **kw: build_stlpips(_net, device=device))


_register()
