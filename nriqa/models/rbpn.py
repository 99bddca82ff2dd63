"""iSeeBetter generator: RBPN (Haris et al., CVPR 2019) as used by iSeeBetter (Chadha et al., 2020).

Recurrent back-projection: the centre frame passes through a single-image back-projection
net (DBPN-S); every neighbour (with its flow to the centre) passes through a multi-image
encoder; their difference is refined and added, and the result is projected back to LR to
feed the next neighbour. The HR states of all neighbours are concatenated and reconstructed.

Substitutions (documented): the original computes neighbour flow offline with pyflow; we
compute it on the fly with our SpyNet (flow from the centre frame to the neighbour, pixels,
x then y — pyflow's convention), so flow is differentiable and trainable. For a whole
sequence we run RBPN once per target frame with a window of ``num_frames - 1`` neighbours
(offsets -k..-1, 1..k, as RBPN's dataloader orders them); neighbours outside the sequence are
replaced by the centre frame, as the original test loader does. All target frames are batched.

forward(lr (B,T,3,h,w) in [0,1]) -> (B,T,3,4h,4w). Any h, w; T >= 1.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import check_lr
from .spynet import SpyNet, load_spynet_weights

K, S, P = 8, 4, 2  # x4 projection kernel, stride, padding (RBPN's setting for scale 4)


class ConvAct(nn.Module):
    """Conv (or transposed conv) + optional single-parameter PReLU."""

    def __init__(self, cin: int, cout: int, k: int, s: int, p: int, act: bool = True,
                 transposed: bool = False):
        super().__init__()
        conv = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.conv = conv(cin, cout, k, s, p)
        self.act = nn.PReLU() if act else None
        nn.init.kaiming_normal_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.act(x) if self.act is not None else x


class ResBlock(nn.Module):
    """act(conv) -> conv, + input, -> act (one shared PReLU, as in RBPN)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.act = nn.PReLU()
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.act(self.conv1(x))) + x)


class UpProjection(nn.Module):
    """LR (N,C,h,w) -> HR (N,C,4h,4w) with one back-projection of the error."""

    def __init__(self, c: int):
        super().__init__()
        self.up_conv1 = ConvAct(c, c, K, S, P, transposed=True)
        self.up_conv2 = ConvAct(c, c, K, S, P)
        self.up_conv3 = ConvAct(c, c, K, S, P, transposed=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.up_conv1(x)
        return self.up_conv3(self.up_conv2(h0) - x) + h0


class DownProjection(nn.Module):
    """HR (N,C,4h,4w) -> LR (N,C,h,w) with one back-projection of the error."""

    def __init__(self, c: int):
        super().__init__()
        self.down_conv1 = ConvAct(c, c, K, S, P)
        self.down_conv2 = ConvAct(c, c, K, S, P, transposed=True)
        self.down_conv3 = ConvAct(c, c, K, S, P)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l0 = self.down_conv1(x)
        return self.down_conv3(self.down_conv2(l0) - x) + l0


class DBPNS(nn.Module):
    """Single-image projection net: (N,base,h,w) -> (N,feat,4h,4w); ``stages`` up-projections."""

    def __init__(self, base: int, feat: int, stages: int = 3):
        super().__init__()
        self.feat1 = ConvAct(base, feat, 1, 1, 0)
        self.ups = nn.ModuleList([UpProjection(feat) for _ in range(stages)])
        self.downs = nn.ModuleList([DownProjection(feat) for _ in range(stages - 1)])
        self.output = ConvAct(stages * feat, feat, 1, 1, 0, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ups[0](self.feat1(x))
        hs = [h]
        for down, up in zip(self.downs, self.ups[1:]):
            h = up(down(h))
            hs.insert(0, h)
        return self.output(torch.cat(hs, dim=1))


class RBPN(nn.Module):
    """RBPN x4 generator. Paper size (iSeeBetter/RBPN): base 256, feat 64, 3 stages,
    5 residual blocks, 7 frames: 12,771,943 parameters as the released ``rbpn.Net`` (the
    BasicVSR paper tabulates 12.2M), plus 1,440,300 for our SpyNet = 14,212,243.
    ``residual=True`` adds a bicubic x4 of the centre frame (RBPN's ``--residual`` option,
    off in iSeeBetter's default; on for the tiny size, which trains faster with it)."""

    def __init__(self, base_filter: int = 256, feat: int = 64, num_stages: int = 3,
                 n_resblock: int = 5, num_frames: int = 7, residual: bool = False,
                 spynet_levels: int = 6, spynet_widths: tuple[int, ...] = (32, 64, 32, 16),
                 spynet_kernel: int = 7, spynet_path: str | None = None):
        super().__init__()
        if num_frames < 2 or num_frames % 2 == 0:
            raise ValueError(f"num_frames must be odd and >= 3 (centre + neighbours); got {num_frames}")
        self.num_frames = num_frames
        self.residual = residual
        self.spynet = SpyNet(spynet_levels, tuple(spynet_widths), spynet_kernel)
        if spynet_path:
            load_spynet_weights(self.spynet, spynet_path)
        self.feat0 = ConvAct(3, base_filter, 3, 1, 1)
        self.feat1 = ConvAct(8, base_filter, 3, 1, 1)
        self.DBPN = DBPNS(base_filter, feat, num_stages)
        self.res_feat1 = nn.Sequential(*[ResBlock(base_filter) for _ in range(n_resblock)],
                                       ConvAct(base_filter, feat, K, S, P, transposed=True))
        self.res_feat2 = nn.Sequential(*[ResBlock(feat) for _ in range(n_resblock)],
                                       ConvAct(feat, feat, 3, 1, 1))
        self.res_feat3 = nn.Sequential(*[ResBlock(feat) for _ in range(n_resblock)],
                                       ConvAct(feat, base_filter, K, S, P))
        self.output = ConvAct((num_frames - 1) * feat, 3, 3, 1, 1, act=False)

    def neighbour_offsets(self) -> list[int]:
        k = self.num_frames // 2
        return [o for o in range(-k, k + 1) if o != 0]

    def forward_window(self, centre: torch.Tensor, neighbours: list[torch.Tensor],
                       flows: list[torch.Tensor]) -> torch.Tensor:
        """One RBPN step: centre (N,3,h,w), neighbours/flows lists of (N,3,h,w)/(N,2,h,w)."""
        feat_input = self.feat0(centre)
        feat_frames = [self.feat1(torch.cat((centre, nb, fl), dim=1)) for nb, fl in zip(neighbours, flows)]
        states = []
        for feat_frame in feat_frames:
            h0 = self.DBPN(feat_input)
            h = h0 + self.res_feat2(h0 - self.res_feat1(feat_frame))
            states.append(h)
            feat_input = self.res_feat3(h)
        out = self.output(torch.cat(states, dim=1))
        if self.residual:
            out = out + F.interpolate(centre, scale_factor=4, mode="bicubic", align_corners=False)
        return out

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self)
        b, t, c, h, w = lr.shape
        centre = lr.reshape(b * t, c, h, w)
        idx = torch.arange(t, device=lr.device)
        neighbours = []
        for o in self.neighbour_offsets():
            j = idx + o
            j = torch.where((j < 0) | (j >= t), idx, j)  # outside the clip: the centre frame
            neighbours.append(lr[:, j].reshape(b * t, c, h, w))
        n = len(neighbours)
        # one batched SpyNet call for all (target, neighbour) pairs: flow centre -> neighbour
        flows = self.spynet(centre.repeat(n, 1, 1, 1), torch.cat(neighbours)).chunk(n)
        return self.forward_window(centre, neighbours, list(flows)).view(b, t, 3, 4 * h, 4 * w)
