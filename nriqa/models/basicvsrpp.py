"""BasicVSR++ (Chan et al., CVPR 2022): second-order grid propagation + flow-guided deformable
alignment, written for nriqa (pure PyTorch + torchvision.ops.deform_conv2d).

Structure (as published): SpyNet flow between neighbours; per-frame feature extraction;
four propagation branches (backward_1, forward_1, backward_2, forward_2), each branch seeing
the features of all earlier branches; second-order alignment that warps the propagated
features of frames t-1 and t-2 with deformable conv whose offsets are residuals on the
flows; reconstruction from the concatenated branch features; two pixel-shuffle x2 steps and
a bilinear x4 residual of the input (``residual_mode="bicubic"`` for the tiny size).

forward(lr (B,T,3,h,w) in [0,1]) -> (B,T,3,4h,4w). Any h, w (SpyNet resizes internally); T >= 1.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import ConvResidualBlocks, FlowGuidedDeformConv, PixelShuffleUp, check_lr, flow_warp, upsample_residual
from .spynet import SpyNet, load_spynet_weights

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")


class SecondOrderAlign(FlowGuidedDeformConv):
    """Deformable alignment of [feat(t-1), feat(t-2)] (2C ch) guided by flows n1, n2."""

    def __init__(self, channels: int, deform_groups: int, max_residue_magnitude: float):
        super().__init__(2 * channels, channels, 3 * channels + 4, deform_groups,
                         max_residue_magnitude)

    def align(self, feat_n1, feat_n2, cond_n1, cond_n2, feat_current, flow_n1, flow_n2):
        cond = torch.cat((cond_n1, feat_current, cond_n2, flow_n1, flow_n2), dim=1)
        return self(torch.cat((feat_n1, feat_n2), dim=1), cond, [flow_n1, flow_n2])


class BasicVSRPlusPlus(nn.Module):
    """BasicVSR++ x4. Paper size: ``mid_channels=64, num_blocks=7`` (7.32M parameters)."""

    def __init__(self, mid_channels: int = 64, num_blocks: int = 7, extract_blocks: int = 5,
                 deform_groups: int = 16, max_residue_magnitude: float = 10.0,
                 spynet_levels: int = 6, spynet_widths: tuple[int, ...] = (32, 64, 32, 16),
                 spynet_kernel: int = 7, spynet_path: str | None = None, hr_channels: int = 64,
                 residual_mode: str = "bilinear",
                 reconstruction_blocks: int = 5):
        super().__init__()
        c = mid_channels
        self.mid_channels = c
        self.residual_mode = residual_mode
        upsample_residual(torch.zeros(1, 3, 1, 1), 4, residual_mode)  # validates the mode early
        self.spynet = SpyNet(spynet_levels, tuple(spynet_widths), spynet_kernel)
        if spynet_path:
            load_spynet_weights(self.spynet, spynet_path)
        self.feat_extract = ConvResidualBlocks(3, c, extract_blocks)
        self.deform_align = nn.ModuleDict({
            b: SecondOrderAlign(c, deform_groups, max_residue_magnitude) for b in BRANCHES})
        self.backbone = nn.ModuleDict({
            b: ConvResidualBlocks((2 + i) * c, c, num_blocks) for i, b in enumerate(BRANCHES)})
        self.reconstruction = ConvResidualBlocks(5 * c, c, reconstruction_blocks)
        self.upsample1 = PixelShuffleUp(c)
        self.upsample2 = PixelShuffleUp(c)
        self.conv_hr = nn.Conv2d(c, hr_channels, 3, 1, 1)
        self.conv_last = nn.Conv2d(hr_channels, 3, 3, 1, 1)

    def compute_flows(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward flows (t -> t+1) and forward flows (t+1 -> t), each (B, T-1, 2, h, w)."""
        b, t, c, h, w = lr.shape
        a = lr[:, :-1].reshape(-1, c, h, w)
        z = lr[:, 1:].reshape(-1, c, h, w)
        both = self.spynet(torch.cat((a, z)), torch.cat((z, a)))  # one batched SpyNet call
        backward, forward = both.view(2, b, t - 1, 2, h, w).unbind(0)
        return backward, forward

    def _propagate(self, feats: dict, flows: torch.Tensor, branch: str) -> list[torch.Tensor]:
        spatial = feats["spatial"]
        t = len(spatial)
        order = list(range(t))[::-1] if branch.startswith("backward") else list(range(t))
        align = self.deform_align[branch]
        others = [k for k in feats if k not in ("spatial", branch)]
        out: list[torch.Tensor] = []
        feat_prop = spatial[0].new_zeros(spatial[0].shape)
        for i, idx in enumerate(order):
            current = spatial[idx]
            if i > 0:
                # flow that warps the previously visited frame onto the current one
                flow_n1 = flows[:, idx] if branch.startswith("backward") else flows[:, idx - 1]
                cond_n1 = flow_warp(feat_prop, flow_n1)
                if i > 1:
                    feat_n2 = out[-2]
                    flow_prev = flows[:, idx + 1] if branch.startswith("backward") else flows[:, idx - 2]
                    flow_n2 = flow_n1 + flow_warp(flow_prev, flow_n1)
                    cond_n2 = flow_warp(feat_n2, flow_n2)
                else:
                    feat_n2 = torch.zeros_like(feat_prop)
                    flow_n2 = torch.zeros_like(flow_n1)
                    cond_n2 = torch.zeros_like(cond_n1)
                feat_prop = align.align(feat_prop, feat_n2, cond_n1, cond_n2, current, flow_n1, flow_n2)
            stacked = torch.cat([current] + [feats[k][idx] for k in others] + [feat_prop], dim=1)
            feat_prop = feat_prop + self.backbone[branch](stacked)
            out.append(feat_prop)
        return out[::-1] if branch.startswith("backward") else out

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self)
        b, t, _, h, w = lr.shape
        spatial = self.feat_extract(lr.reshape(b * t, 3, h, w)).view(b, t, -1, h, w)
        feats: dict[str, list[torch.Tensor]] = {"spatial": list(spatial.unbind(1))}
        if t > 1:
            flows_backward, flows_forward = self.compute_flows(lr)
        else:
            flows_backward = flows_forward = lr.new_zeros(b, 0, 2, h, w)
        for branch in BRANCHES:
            flows = flows_backward if branch.startswith("backward") else flows_forward
            feats[branch] = self._propagate(feats, flows, branch)
        # reconstruction is per frame and independent: batch all frames at once
        hr = torch.cat([torch.stack(feats[k], 1) for k in ("spatial", *BRANCHES)], dim=2)
        hr = self.reconstruction(hr.flatten(0, 1))
        hr = F.leaky_relu(self.upsample1(hr), 0.1)
        hr = F.leaky_relu(self.upsample2(hr), 0.1)
        hr = self.conv_last(F.leaky_relu(self.conv_hr(hr), 0.1))
        base = upsample_residual(lr.reshape(b * t, 3, h, w), 4, self.residual_mode)
        return (hr + base).view(b, t, 3, 4 * h, 4 * w)


