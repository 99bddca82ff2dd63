"""VSR generators for nriqa: BasicVSR++, iSeeBetter (RBPN) and VRT, in two named sizes.

    model = build("basicvsrpp", size="tiny")        # or "paper"; **overrides change any knob
    hr = model(lr)                                   # (B,T,3,h,w) in [0,1] -> (B,T,3,4h,4w)
    flow_parameters(model)                           # SpyNet params, to freeze / give a smaller LR

"paper" is the published configuration (parameter counts checked against the authors'
code, see tests/test_models.py); "tiny" runs a forward+backward on (1,5,3,32,32) in
well under a second on a CPU. Pretrained SpyNet weights load from a local file only
(``spynet_path=...``); nothing is downloaded.

A model's ``forward`` checks only the shape (no device-to-host read: the trainer's hot path).
Outside the trainer, call it through the checked entry::

    hr = upscale(model, lr)        # check_video(lr) first: float, (B,T,3,h,w), finite, in [0, 1]

which rejects uint8 frames, 0..255 floats and NaN/Inf frames with a :class:`VideoInputError`
naming the input and the expectation, instead of returning garbage or a raw torch error.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from .basicvsrpp import BasicVSRPlusPlus
from .ops import VideoInputError
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
    # VRT's 16-frame REDS model (002_VRT_videosr_bi_REDS_16frames): 6-frame parallel warping
    "vrt16": (VRT, {
        "paper": dict(window_size=(8, 8, 8), pa_frames=6, deform_groups=24),
        "tiny": dict(embed_dims=(12,) * 7 + (16,) * 2, depths=(2,) * 7 + (1,) * 2,
                     num_heads=(2,) * 9, indep_reconsts=(8,), window_size=(2, 4, 4), pa_frames=6,
                     deform_groups=6, num_feat=12, drop_path_rate=0.0, residual_mode="bicubic",
                     **_TINY_SPYNET),
    }),
}

SIZES = ("paper", "tiny")


def available() -> list[str]:
    """Names accepted by :func:`build`."""
    return list(_REGISTRY)


def build(name: str, size: str = "tiny", **overrides: Any) -> nn.Module:
    """Build generator ``name`` ("basicvsrpp" | "iseebetter" | "vrt" | "vrt16") at ``size`` ("paper" | "tiny").

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


#: slack around [0, 1] that :func:`check_video` allows (bicubic resizing overshoots a little)
RANGE_TOL = 1e-3


def check_video(x: Any, what: str = "lr", *, range_tol: float = RANGE_TOL) -> torch.Tensor:
    """Check that ``x`` is a video batch a generator can take and return it unchanged.

    ``x`` must be a floating ``torch.Tensor`` of shape ``(B, T, 3, h, w)`` with every dim >= 1,
    finite, with values in ``[0, 1]`` (+- ``range_tol``). Raises :class:`VideoInputError` naming
    ``what`` otherwise (uint8 frames and 0..255 floats get a "divide by 255" hint). The value checks
    read two numbers back from the device: do not call this inside a training step.
    """
    if not isinstance(x, torch.Tensor):
        raise VideoInputError(f"{what} must be a torch.Tensor (B,T,3,h,w) float in [0, 1], got {type(x).__name__}")
    shape = tuple(x.shape)
    if not (x.is_floating_point()):
        hint = "; 8-bit frames: use x.float() / 255" if x.dtype == torch.uint8 else ""
        raise VideoInputError(f"{what} must be a floating tensor (float32, float16, bfloat16 or float64) with "
                              f"values in [0, 1], got dtype {x.dtype}{hint}")
    if x.dim() != 5 or shape[2] != 3:
        raise VideoInputError(f"{what} must be a video batch (B,T,3,h,w) of RGB frames, got shape {shape}")
    if min(shape) < 1:
        raise VideoInputError(f"{what} is empty: shape {shape} (B, T, h and w must all be >= 1)")
    with torch.no_grad():
        t = x.detach()
        stats = torch.stack([torch.isfinite(t).all().float(), t.amin().float(), t.amax().float()]).tolist()
    finite, lo, hi = stats
    if finite < 1:
        bad = (~torch.isfinite(x.detach())).flatten(2).any(-1).nonzero().tolist()
        more = " ..." if len(bad) > 4 else ""
        where = (f"frame(s) {', '.join(str(f) for _, f in bad[:4])}{more}" if shape[0] == 1 else
                 f"(clip, frame) {', '.join(f'({b}, {f})' for b, f in bad[:4])}{more}")
        raise VideoInputError(f"{what} contains NaN or Inf values, in {where}")
    if lo < -range_tol or hi > 1 + range_tol:
        hint = "; 0..255 frames: divide by 255" if hi > 2 else "; clamp it to [0, 1]"
        raise VideoInputError(f"{what} must have values in [0, 1] (float RGB), got min={lo:.4g}, max={hi:.4g}{hint}")
    return x


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype | None, torch.device | None]:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return None, None


def upscale(model: nn.Module, lr: torch.Tensor, *, scale: int = 4, what: str = "lr") -> torch.Tensor:
    """``model(lr)`` behind :func:`check_video`: the checked public entry (not for the training step).

    ``lr`` (B,T,3,h,w) float in [0, 1] is checked, cast to the model's parameter dtype and device,
    and run in eval mode without gradients (the model's mode is restored afterwards). The output is
    checked to be ``(B,T,3,scale*h,scale*w)`` and finite: a model with diverged weights raises
    :class:`VideoInputError` naming it instead of returning NaN frames. Returns the raw output (not
    clamped; clamp to [0, 1] to save or score it).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (e.g. nriqa.models.build(...)), got {type(model).__name__}")
    check_video(lr, what)
    dtype, device = _model_dtype_device(model)
    x = lr.to(dtype=dtype or lr.dtype, device=device or lr.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
    b, t, _, h, w = lr.shape
    name = getattr(model, "nriqa_name", type(model).__name__)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (b, t, 3, scale * h, scale * w):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise VideoInputError(f"model {name!r} returned {got} for {what} {tuple(lr.shape)}; expected "
                              f"{(b, t, 3, scale * h, scale * w)} (x{scale})")
    if not bool(torch.isfinite(out).all()):
        raise VideoInputError(f"model {name!r} returned NaN or Inf frames for a finite {what} in [0, 1]: "
                              "its weights have diverged (reload an earlier checkpoint)")
    return out


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["available", "build", "check_video", "config", "flow_parameters", "count_parameters", "upscale",
           "VideoInputError",
           "BasicVSRPlusPlus", "RBPN", "VRT", "SpyNet", "load_spynet_weights"]
