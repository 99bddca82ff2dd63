"""Small building blocks shared by the VSR generators.

Conventions: feature maps are ``(N, C, H, W)``; optical flow is ``(N, 2, H, W)`` in pixels with
channel 0 = horizontal (x) and channel 1 = vertical (y) displacement. ``flow_warp(x, flow)``
samples ``x`` at ``p + flow(p)``, so a flow computed *from* frame a *to* frame b warps b onto a.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

from nriqa.errors import UserError


class VideoInputError(UserError):
    """A video tensor given to a generator, :func:`nriqa.models.check_video` or :func:`nriqa.models.upscale`
    (or returned by the model there) has the wrong type, dtype, shape or values; the message names it
    and what was expected."""


def check_lr(lr: torch.Tensor, model: nn.Module) -> None:
    """What every generator's ``forward`` checks first, without reading a value from the device:
    ``lr`` is a ``(B, T, 3, h, w)`` tensor, T >= 1, of the dtype of ``model``'s weights (float64 or
    uint8 frames fail here with a :class:`VideoInputError` naming the conversion, not in a conv)."""
    if not isinstance(lr, torch.Tensor) or lr.dim() != 5 or lr.size(2) != 3 or lr.size(1) < 1:
        shape = tuple(lr.shape) if isinstance(lr, torch.Tensor) else type(lr).__name__
        raise VideoInputError(f"lr must be a video tensor (B,T,3,h,w) with T>=1; got {shape}")
    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    if weight is not None and lr.dtype != weight.dtype and not torch.is_autocast_enabled(lr.device.type):
        hint = "x.float() / 255" if lr.dtype == torch.uint8 else f"x.to({weight.dtype})"
        raise VideoInputError(f"lr is {lr.dtype} but the model's weights are {weight.dtype}: pass {hint} "
                              "(frames in [0, 1])")

_GRIDS: dict[tuple, torch.Tensor] = {}


def _make_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    return torch.stack((xs, ys), dim=0)  # (2, H, W), x first


def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The pixel grid ``(2, H, W)`` (x, y), cached per shape in eager mode. Under ``torch.compile``
    it is built in the graph instead (the compiler folds it): reading and filling a global dict
    there made every compiled model trace twice, as the dict's contents changed after the first
    call (a guard failure, i.e. a recompile)."""
    if torch.compiler.is_compiling():
        return _make_grid(h, w, device, dtype)
    key = (h, w, device, dtype)
    grid = _GRIDS.get(key)
    if grid is None:
        grid = _make_grid(h, w, device, dtype)
        if len(_GRIDS) > 64:
            _GRIDS.clear()
        _GRIDS[key] = grid
    return grid


def flow_warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear",
              padding_mode: str = "zeros") -> torch.Tensor:
    """Warp ``x (N,C,H,W)`` by ``flow (N,2,H,W)`` (pixels, x then y); returns ``(N,C,H,W)``."""
    n, _, h, w = x.shape
    pos = _base_grid(h, w, x.device, flow.dtype).unsqueeze(0) + flow
    gx = 2.0 * pos[:, 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * pos[:, 1] / max(h - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1).to(x.dtype)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def flow_warp_nearest4(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour warp at the 4 integer corners around ``p + flow``: ``(N, 4C, H, W)``,
    ordered (floor x, floor y), (floor x, ceil y), (ceil x, floor y), (ceil x, ceil y).

    Used by VRT to hand the first convolution un-interpolated neighbour pixels.
    """
    n, _, h, w = x.shape
    pos = _base_grid(h, w, x.device, flow.dtype).unsqueeze(0) + flow
    lo, hi = torch.floor(pos), torch.ceil(pos)
    outs = []
    for fx, fy in ((lo, lo), (lo, hi), (hi, lo), (hi, hi)):
        px = fx[:, 0]
        py = fy[:, 1]
        grid = torch.stack((2.0 * px / max(w - 1, 1) - 1.0, 2.0 * py / max(h - 1, 1) - 1.0), dim=-1)
        outs.append(F.grid_sample(x, grid.to(x.dtype), mode="nearest", padding_mode="zeros",
                                  align_corners=True))
    return torch.cat(outs, dim=1)


#: "auto" (torchvision on CUDA, grid_sample on CPU), "torchvision" or "grid"
DEFORM_BACKEND = "auto"


def deform_conv3x3_grid(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """Modulated 3x3 deformable conv (padding 1) with ``grid_sample`` + one matmul.

    Same maths and argument layout as ``torchvision.ops.deform_conv2d`` (offset
    ``(N, 2*G*9, H, W)`` ordered group, tap, (dy, dx); mask ``(N, G*9, H, W)``; bilinear with
    zeros outside), agreeing to float rounding; about 5x faster forward+backward on CPU,
    where torchvision's kernel loops per pixel.
    """
    n, cin, h, w = x.shape
    g = mask.size(1) // 9
    off = offset.view(n, g, 9, 2, h, w)
    taps = torch.arange(3, device=x.device, dtype=offset.dtype) - 1
    ky = taps.view(3, 1).expand(3, 3).reshape(1, 1, 9, 1, 1)
    kx = taps.view(1, 3).expand(3, 3).reshape(1, 1, 9, 1, 1)
    ys = torch.arange(h, device=x.device, dtype=offset.dtype).view(1, 1, 1, h, 1) + ky + off[:, :, :, 0]
    xs = torch.arange(w, device=x.device, dtype=offset.dtype).view(1, 1, 1, 1, w) + kx + off[:, :, :, 1]
    grid = torch.stack((2 * xs / max(w - 1, 1) - 1, 2 * ys / max(h - 1, 1) - 1), dim=-1)
    cols = F.grid_sample(x.reshape(n * g, cin // g, h, w), grid.view(n * g, 9 * h, w, 2).to(x.dtype),
                         mode="bilinear", padding_mode="zeros", align_corners=True)
    cols = cols.view(n, g, cin // g, 9, h, w) * mask.view(n, g, 1, 9, h, w).to(x.dtype)
    wg = cin // weight.size(1)   # weight groups, as torchvision infers them
    out = torch.matmul(weight.reshape(wg, weight.size(0) // wg, -1).to(x.dtype),
                       cols.reshape(n, wg, cin // wg * 9, h * w))
    out = out.view(n, -1, h, w)
    return out if bias is None else out + bias.view(1, -1, 1, 1).to(out.dtype)


def modulated_deform_conv3x3(x, offset, weight, bias, mask, backend: str | None = None):
    """Dispatch to torchvision's kernel or the grid_sample version (see ``DEFORM_BACKEND``)."""
    backend = backend or DEFORM_BACKEND
    if backend == "auto":
        backend = "torchvision" if x.is_cuda else "grid"
    if backend == "grid":
        return deform_conv3x3_grid(x, offset, weight, bias, mask)
    if backend != "torchvision":
        raise ValueError(f"deform backend must be 'auto', 'grid' or 'torchvision'; got {backend!r}")
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    return deform_conv2d(x.to(dtype), offset.to(dtype), weight.to(dtype),
                         None if bias is None else bias.to(dtype), padding=(1, 1), mask=mask.to(dtype))


class ResidualBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, added to the input (no batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ConvResidualBlocks(nn.Module):
    """Input conv (``in_ch -> out_ch``) + LeakyReLU(0.1), then ``num_blocks`` residual blocks."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int):
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.blocks = nn.Sequential(*[ResidualBlock(out_ch) for _ in range(num_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(F.leaky_relu(self.conv_in(x), 0.1))


class PixelShuffleUp(nn.Module):
    """conv3x3 (C -> 4C) then pixel shuffle x2: ``(N,C,H,W) -> (N,C,2H,2W)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


class FlowGuidedDeformConv(nn.Module):
    """Modulated 3x3 deformable conv whose offsets are residuals around optical flow(s).

    ``conv_offset`` predicts ``3 * 9 * groups`` channels from a condition tensor; the first two
    thirds are offsets ``max_residue * tanh(.)`` added to the flow of the input chunk they act
    on (``len(flows)`` equal chunks of the input channels), the last third is a sigmoid mask.
    ``weight_groups`` splits the input channels and outputs into groups convolved separately (VRT's
    multi-frame parallel warping: one group per neighbour frame).
    Runs ``torchvision.ops.deform_conv2d`` on CUDA and an equivalent grid_sample version on CPU
    (``DEFORM_BACKEND``): identical modules and state_dict on both, no compiled extensions.
    """

    def __init__(self, in_ch: int, out_ch: int, cond_ch: int, deform_groups: int,
                 max_residue_magnitude: float = 10.0, hidden: int | None = None, weight_groups: int = 1):
        super().__init__()
        if in_ch % deform_groups:
            raise ValueError(f"in_ch={in_ch} must be divisible by deform_groups={deform_groups}")
        if in_ch % weight_groups or out_ch % weight_groups:
            raise ValueError(f"in_ch={in_ch} and out_ch={out_ch} must be divisible by weight_groups={weight_groups}")
        hidden = hidden or out_ch
        self.deform_groups = deform_groups
        self.max_residue_magnitude = max_residue_magnitude
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch // weight_groups, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.conv_offset = nn.Sequential(
            nn.Conv2d(cond_ch, hidden, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, 27 * deform_groups, 3, 1, 1),
        )
        # start as plain flow-guided warping: zero residual offsets, mask 0.5
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, flows: list[torch.Tensor]) -> torch.Tensor:
        """x (N,in_ch,H,W) *unwarped* neighbour features (the flow-guided offsets do the warping);
        cond (N,cond_ch,H,W) condition (warped features, current features, flows); flows: each
        (N,2,H,W), one per equal channel chunk of ``x``. Returns (N,out_ch,H,W)."""
        out = self.conv_offset(cond)
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1))
        # torchvision offset layout per group and tap: (dy, dx) -> flow flipped to (y, x)
        chunks = torch.chunk(offset, len(flows), dim=1)
        offset = torch.cat([c + f.flip(1).repeat(1, c.size(1) // 2, 1, 1)
                            for c, f in zip(chunks, flows)], dim=1)
        return modulated_deform_conv3x3(x, offset, self.weight, self.bias, torch.sigmoid(mask))


RESIDUAL_MODES = ("bilinear", "bicubic")


def upsample_residual(x: torch.Tensor, scale: int, mode: str) -> torch.Tensor:
    """The image-space skip of a VSR generator: ``x`` (N,3,h,w) upsampled ``scale``x by ``mode``
    ("bilinear" as the published BasicVSR++/VRT, or "bicubic", which starts a short CPU
    training closer to a strong interpolator)."""
    if mode not in RESIDUAL_MODES:
        raise ValueError(f"residual mode must be one of {RESIDUAL_MODES}, got {mode!r}")
    return F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)
