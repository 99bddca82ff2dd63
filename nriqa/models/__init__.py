"""VSR generators for nriqa: BasicVSR++, iSeeBetter (RBPN) and VRT, in two named sizes.

    model = build("basicvsrpp", size="tiny")        # or "paper"; **overrides change any knob
    hr = model(lr)                                   # (B,T,3,h,w) in [0,1] -> (B,T,3,4h,4w)
    flow_parameters(model)                           # SpyNet params, to freeze / give a smaller LR

"paper" is the published configuration (parameter counts checked against the authors'
code, see tests/test_models_params.py); "tiny" runs a forward+backward on (1,5,3,32,32) in
well under a second on a CPU. Pretrained SpyNet weights load from a local file only
(``spynet_path=...``); nothing is downloaded.
"""
from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from .basicvsrpp import BasicVSRPlusPlus
from .rbpn import RBPN
from .spynet import SpyNet, load_spynet_weights
from .vrt import VRT

_TINY_SPYNET = dict(spynet_levels=4, spynet_widths=(16, 16, 8, 8), spynet_kernel=3)

#: name -> (class, {size: constructor kwargs})
_REGISTRY: dict[str, tuple[Callable[..., nn.Module], dict[str, dict[str, Any]]]] = {
    "basicvsrpp": (BasicVSRPlusPlus, {
        "paper": dict(mid_channels=64, num_blocks=7),
        "tiny": dict(mid_channels=16, num_blocks=1, extract_blocks=1, deform_groups=4, hr_channels=16,
                     reconstruction_blocks=1, residual_mode="bicubic",
                     **_TINY_SPYNET),
    }),
    "iseebetter": (RBPN, {
        "paper": dict(base_filter=256, feat=64, num_stages=3, n_resblock=5, num_frames=7),
        "tiny": dict(base_filter=16, feat=8, num_stages=2, n_resblock=1, num_frames=3,
                     residual=True, **_TINY_SPYNET),
    }),
    "vrt": (VRT, {
        "paper": dict(),  # REDS x4: 6-frame windows, 13 stages, dims 120/180 (see vrt.py)
        "tiny": dict(embed_dims=(12,) * 7 + (16,) * 2, depths=(2,) * 7 + (1,) * 2,
                     num_heads=(2,) * 9, indep_reconsts=(8,), window_size=(2, 4, 4),
                     deform_groups=4, num_feat=12, drop_path_rate=0.0, residual_mode="bicubic",
                     **_TINY_SPYNET),
    }),
}

SIZES = ("paper", "tiny")


def available() -> list[str]:
    """Names accepted by :func:`build`."""
    return list(_REGISTRY)


def build(name: str, size: str = "tiny", **overrides: Any) -> nn.Module:
    """Build generator ``name`` ("basicvsrpp" | "iseebetter" | "vrt") at ``size`` ("paper" | "tiny").

    ``overrides`` replace constructor keyword arguments (e.g. ``spynet_path=...``,
    ``mid_channels=32``). forward(lr (B,T,3,h,w) in [0,1]) -> (B,T,3,4h,4w).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model name {name!r}; available: {available()}")
    cls, sizes = _REGISTRY[name]
    if size not in sizes:
        raise ValueError(f"unknown size {size!r} for {name!r}; expected one of {list(sizes)}")
    kwargs = {**sizes[size], **overrides}
    model = cls(**kwargs)
    model.nriqa_name, model.nriqa_size = name, size
    return model


def config(name: str, size: str = "tiny") -> dict[str, Any]:
    """The constructor keyword arguments of a named size (a copy)."""
    if name not in _REGISTRY or size not in _REGISTRY[name][1]:
        raise ValueError(f"unknown model/size {name!r}/{size!r}; available: {available()} x {list(SIZES)}")
    return dict(_REGISTRY[name][1][size])


def flow_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of every SpyNet inside ``model`` ([] when it has none)."""
    params: list[nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, SpyNet):
            params.extend(module.parameters())
    return params


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["available", "build", "config", "flow_parameters", "count_parameters",
           "BasicVSRPlusPlus", "RBPN", "VRT", "SpyNet", "load_spynet_weights"]
