"""SpyNet optical flow (Ranjan & Black, CVPR 2017), shared by BasicVSR++, iSeeBetter and VRT.

``SpyNet(ref, supp)`` returns the flow ``(N, 2, H, W)`` (pixels, x then y) from ``ref`` to
``supp``: ``flow_warp(supp, flow) ~= ref``. Inputs are RGB in ``[0, 1]`` of any size; they
are resized internally to a multiple of ``2 ** (levels - 1)`` (at least one pixel at the
coarsest level) and the flow is resized and rescaled back.

The "paper" layout (6 levels, 7x7 convs 8-32-64-32-16-2; 1.44M parameters) matches the
published SpyNet used by BasicVSR++/VRT, so its pretrained weights can be loaded from a
local file with :func:`load_spynet_weights` (never downloaded).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .convert import convert_spynet_keys
from .ops import flow_warp


class SpyNetLevel(nn.Module):
    """One pyramid level: [ref, warped supp, upsampled flow] (8 ch) -> flow residual (2 ch)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 32, 16), kernel: int = 7):
        super().__init__()
        chans = (8, *widths, 2)
        layers: list[nn.Module] = []
        for i in range(len(chans) - 1):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], kernel, 1, kernel // 2))
            if i < len(chans) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SpyNet(nn.Module):
    """Coarse-to-fine flow network. ``forward(ref, supp, scales=None)``.

    ref, supp: ``(N, 3, H, W)`` in ``[0, 1]``. With ``scales=None`` returns the flow at full
    resolution ``(N, 2, H, W)``; with ``scales=(1, 2, 4, 8)`` returns a list of flows at
    ``H // s, W // s`` (magnitudes in pixels of that resolution), as VRT needs.
    """

    def __init__(self, levels: int = 6, widths: tuple[int, ...] = (32, 64, 32, 16), kernel: int = 7):
        super().__init__()
        self.levels = levels
        self.basic_module = nn.ModuleList([SpyNetLevel(widths, kernel) for _ in range(levels)])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    @property
    def multiple(self) -> int:
        return 2 ** (self.levels - 1)

    def _pyramid_flows(self, ref: torch.Tensor, supp: torch.Tensor) -> list[torch.Tensor]:
        """Flows at every level, finest first; input sizes are multiples of ``self.multiple``."""
        refs = [(ref - self.mean) / self.std]
        supps = [(supp - self.mean) / self.std]
        for _ in range(self.levels - 1):
            refs.insert(0, F.avg_pool2d(refs[0], 2, 2, count_include_pad=False))
            supps.insert(0, F.avg_pool2d(supps[0], 2, 2, count_include_pad=False))
        n, _, h0, w0 = refs[0].shape
        flow = refs[0].new_zeros(n, 2, h0, w0)
        flows = []
        for level in range(self.levels):
            if level > 0:
                flow = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
            warped = flow_warp(supps[level], flow, padding_mode="border")
            flow = flow + self.basic_module[level](torch.cat((refs[level], warped, flow), dim=1))
            flows.insert(0, flow)
        return flows

    def forward(self, ref: torch.Tensor, supp: torch.Tensor, scales: tuple[int, ...] | None = None):
        if ref.shape != supp.shape or ref.dim() != 4 or ref.size(1) != 3:
            raise ValueError(f"SpyNet expects ref and supp of equal shape (N,3,H,W); got "
                             f"{tuple(ref.shape)} and {tuple(supp.shape)}")
        h, w = ref.shape[-2:]
        m = self.multiple
        hu, wu = max(m, -(-h // m) * m), max(m, -(-w // m) * m)
        if (hu, wu) != (h, w):
            ref = F.interpolate(ref, size=(hu, wu), mode="bilinear", align_corners=False)
            supp = F.interpolate(supp, size=(hu, wu), mode="bilinear", align_corners=False)
        flows = self._pyramid_flows(ref, supp)
        out = []
        for s in (scales or (1,)):
            k = s.bit_length() - 1
            if 2 ** k != s or k >= self.levels:
                raise ValueError(f"scale {s} must be a power of two below 2**levels={2 ** self.levels}")
            th, tw = max(h // s, 1), max(w // s, 1)
            f = flows[k]
            if f.shape[-2:] != (th, tw):
                f = F.interpolate(f, size=(th, tw), mode="bilinear", align_corners=False)
                f = f * torch.tensor([tw / (wu // s), th / (hu // s)], device=f.device,
                                     dtype=f.dtype).view(1, 2, 1, 1)
            out.append(f)
        return out[0] if scales is None else out


def load_spynet_weights(spynet: SpyNet, path: str | os.PathLike) -> None:
    """Load pretrained SpyNet weights from a local file (our keys or BasicSR/mmagic keys).

    Raises FileNotFoundError naming the path when it is missing; nothing is downloaded.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"SpyNet weight file not found: {path} (nriqa never downloads "
                                f"weights; put the pretrained SpyNet .pth there or pass spynet_path=None)")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("params", "state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    spynet.load_state_dict(convert_spynet_keys(sd), strict=True)
