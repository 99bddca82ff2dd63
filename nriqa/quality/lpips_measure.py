"""LPIPS measures built with the ``lpips`` package (Zhang et al. 2018), lower is better.

- ``lpips-vgg`` / ``lpips-alex``: ImageNet trunk (torchvision file in ``$TORCH_HOME/hub/checkpoints``)
  + the learned linear layers v0.1 that ship inside the ``lpips`` package.
- ``lpips-vgg-randtrunk``: the same linear layers on a *randomly initialised* VGG-16 trunk
  (``pnet_rand=True``); builds fully offline. The trunk is initialised from a fixed seed
  (``seed=0``) so the measure is the same function in every process. It is a stand-in for
  offline demos only — used only when explicitly named, never as a fallback for ``lpips-vgg``.

Inputs in [0, 1] (``normalize=True`` maps them to [-1, 1]); output one distance per image.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn

from nriqa.quality.base import Card, WeightFile, no_torch_hub_downloads, register

_TV = "https://download.pytorch.org/models/"
# torchvision trunk files; the 8 hex digits in the name are the sha256 prefix
VGG16_FILE = WeightFile("vgg16-397923af.pth", None, _TV + "vgg16-397923af.pth", "397923af", subdir="checkpoints")
ALEX_FILE = WeightFile("alexnet-owt-7be5be79.pth", None, _TV + "alexnet-owt-7be5be79.pth", "7be5be79",
                       subdir="checkpoints")


class LpipsScorer(nn.Module):
    """``forward(x, ref) -> (N,)`` LPIPS distances for x, ref in [0, 1]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.model(x, ref, normalize=True).reshape(x.shape[0])


def build_lpips(net: str = "vgg", random_trunk: bool = False, seed: int = 0,
                device: str | torch.device = "cpu") -> nn.Module:
    """Build an LPIPS scorer; ``random_trunk`` uses a seeded random trunk (offline)."""
    import lpips  # imported on use: it is only needed to build these measures

    with contextlib.redirect_stdout(io.StringIO()), torch.random.fork_rng(devices=[]), \
            warnings.catch_warnings(), no_torch_hub_downloads():
        warnings.simplefilter("ignore", UserWarning)  # torchvision 'pretrained' deprecation
        torch.manual_seed(seed)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=random_trunk, verbose=False)
    model.requires_grad_(False)
    return LpipsScorer(model.eval()).to(device)


def _register() -> None:
    common = dict(mode="FR", higher_better=False, score_range=(0, 1), differentiable=True, video=False,
                  backend="lpips", training_data=("bapps",))
    register(Card(name="lpips-vgg", min_size=16, weights=(VGG16_FILE,),
                  description="LPIPS v0.1, VGG-16 ImageNet trunk, linear heads trained on BAPPS human 2AFC "
                              "judgments", **common),
             lambda device="cpu", **kw: build_lpips("vgg", False, device=device, **kw))
    register(Card(name="lpips-alex", min_size=16, weights=(ALEX_FILE,),
                  description="LPIPS v0.1, AlexNet ImageNet trunk, linear heads trained on BAPPS human 2AFC "
                              "judgments", **common),
             lambda device="cpu", **kw: build_lpips("alex", False, device=device, **kw))
    register(Card(name="lpips-vgg-randtrunk", min_size=16, weights=(),
                  description="LPIPS v0.1 linear layers (trained on BAPPS human 2AFC judgments) on a seeded "
                              "random VGG-16 trunk (offline stand-in)",
                  **common),
             lambda device="cpu", **kw: build_lpips("vgg", True, device=device, **kw))


_register()
