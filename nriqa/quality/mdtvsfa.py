"""MDTVSFA: mixed-dataset-trained VSFA video quality model (Li, Jiang & Jiang, IJCV 2021).

Pipeline for a clip ``(B, T, 3, H, W)`` in [0, 1] (higher score = better quality):

1. content features: ImageNet-normalised frames through ResNet-50 up to its last conv block;
   per frame the channel-wise spatial mean and (unbiased) std are concatenated -> 4096 values
   (frames need >= 64 px per side so that the last block has more than one position);
2. ``dimemsion_reduction`` Linear 4096 -> 128 (the key keeps the released checkpoint's spelling);
3. ``feature_aggregation`` GRU (hidden 32, zero initial state) and ``regression`` Linear 32 -> 1
   give a quality score per frame;
4. subjectively inspired temporal pooling: per frame, a memory term (the minimum of the last
   ``tau`` frame scores, including the current one) and a current term (a softmin-weighted
   average of the next ``tau`` frame scores, including the current one) are blended
   ``beta * current + (1 - beta) * memory``; the clip score is their mean over frames;
5. a sigmoid bounds it to (0, 1): the *relative* quality, which :class:`MDTVSFA` returns by
   default. The mixed-dataset head (``nlm``: a 4-parameter nonlinear mapping, ``lm``: one linear
   map per training set K/C/L/N) is loaded too; ``output="mapped"`` returns ``nlm(relative)``.

Weights (never downloaded implicitly): the authors' released quality-model state_dict
``MDTVSFA.pt`` in ``weights_dir()/mdtvsfa/`` and the torchvision ResNet-50 file
``resnet50-0676ba61.pth`` in ``$TORCH_HOME/hub/checkpoints/``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision
from torch import nn

from nriqa.quality.base import Card, WeightFile, register

MDTVSFA_FILE = WeightFile(
    "MDTVSFA.pt", 2163133, "https://github.com/lidq92/MDTVSFA/raw/master/models/MDTVSFA.pt",
    "d5dd4fdf69ad4ee0e7f15caca1b5346d30e4d24a67fbbfd2e3fe434cbf5458c7",
    subdir="mdtvsfa", root="nriqa",
)
RESNET50_FILE = WeightFile(
    "resnet50-0676ba61.pth", None, "https://download.pytorch.org/models/resnet50-0676ba61.pth", "0676ba61",
    subdir="checkpoints", root="torch_hub",
)
DATASETS = ("K", "C", "L", "N")   # KoNViD-1k, CVD2014, LIVE-Qualcomm, LIVE-VQC
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class ContentFeatures(nn.Module):
    """ResNet-50 trunk -> per-frame [spatial mean, spatial std] of the last conv block (N, 4096)."""

    def __init__(self):
        super().__init__()
        resnet = torchvision.models.resnet50(weights=None)
        self.trunk = nn.Sequential(*list(resnet.children())[:-2])
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        f = self.trunk((frames - self.mean) / self.std).flatten(2)
        return torch.cat([f.mean(-1), f.std(-1)], dim=1)


def temporal_pooling(q: torch.Tensor, tau: int = 12, beta: float = 0.5) -> torch.Tensor:
    """Subjectively inspired temporal pooling of frame scores ``q`` (B, T) -> clip scores (B,)."""
    b, t = q.shape
    inf = torch.full((b, tau - 1), float("inf"), dtype=q.dtype, device=q.device)
    past = torch.cat([inf, q], dim=1).unfold(1, tau, 1)            # (B, T, tau): frames t-tau+1..t
    memory = past.min(dim=-1).values
    future = torch.cat([q, inf], dim=1).unfold(1, tau, 1)          # frames t..t+tau-1
    valid = torch.isfinite(future)
    weights = torch.softmax(torch.where(valid, -future, torch.full_like(future, -float("inf"))), dim=-1)
    current = (weights * torch.where(valid, future, torch.zeros_like(future))).sum(-1)
    return (beta * current + (1 - beta) * memory).mean(dim=1)


class QualityHead(nn.Module):
    """Reduction + GRU + regression + pooling + mixed-dataset mapping (key names as released)."""

    def __init__(self, input_size: int = 4096, reduced_size: int = 128, hidden_size: int = 32):
        super().__init__()
        self.hidden_size = hidden_size
        self.dimemsion_reduction = nn.Linear(input_size, reduced_size)
        self.feature_aggregation = nn.GRU(reduced_size, hidden_size, batch_first=True)
        self.regression = nn.Linear(hidden_size, 1)
        self.nlm = nn.Sequential(nn.Linear(1, 1), nn.Sigmoid(), nn.Linear(1, 1))
        self.lm = nn.Sequential(OrderedDict((k, nn.Linear(1, 1)) for k in DATASETS))  # per-dataset maps

    def forward(self, feats: torch.Tensor, output: str = "relative") -> torch.Tensor:
        """feats (B, T, 4096) -> (B,) relative quality in (0, 1) (or the ``mapped`` score)."""
        x = self.dimemsion_reduction(feats)
        h0 = torch.zeros(1, x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        x, _ = self.feature_aggregation(x, h0)
        q = self.regression(x).squeeze(-1)                          # (B, T) frame quality
        relative = torch.sigmoid(temporal_pooling(q))
        if output == "relative":
            return relative
        if output == "mapped":
            return self.nlm(relative.unsqueeze(-1)).squeeze(-1)
        raise ValueError(f"mdtvsfa: output must be 'relative' or 'mapped', got {output!r}")


class MDTVSFA(nn.Module):
    """``forward(video (B, T, 3, H, W) in [0, 1]) -> (B,)`` clip quality, higher is better."""

    def __init__(self, output: str = "relative", frame_batch: int = 16):
        super().__init__()
        self.features = ContentFeatures()
        self.head = QualityHead()
        self.output = output
        self.frame_batch = frame_batch

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        frames = video.flatten(0, 1)
        feats = torch.cat([self.features(frames[i: i + self.frame_batch])
                           for i in range(0, frames.shape[0], self.frame_batch)])
        return self.head(feats.view(b, t, -1), self.output)

    @classmethod
    def from_files(cls, head_path, backbone_path, output: str = "relative") -> MDTVSFA:
        """Load the released quality-model state_dict and the torchvision ResNet-50 file (strict)."""
        m = cls(output=output)
        head_sd = torch.load(head_path, map_location="cpu", weights_only=True)
        m.head.load_state_dict(head_sd, strict=True)
        tv_sd = torch.load(backbone_path, map_location="cpu", weights_only=True)
        tv_sd = {k: v for k, v in tv_sd.items() if not k.startswith("fc.")}
        # torchvision names (conv1, bn1, layer1..4) -> positions in the trunk Sequential
        order = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        renamed = {}
        for k, v in tv_sd.items():
            top, rest = k.split(".", 1)
            renamed[f"{order.index(top)}.{rest}"] = v
        m.features.trunk.load_state_dict(renamed, strict=True)
        m.requires_grad_(False)
        return m.eval()


def _build(device="cpu", output: str = "relative", **kw) -> nn.Module:
    return MDTVSFA.from_files(MDTVSFA_FILE.path, RESNET50_FILE.path, output=output).to(device)


register(
    Card(name="mdtvsfa", mode="NR", higher_better=True, score_range=(0, 1), differentiable=True, min_size=64,
         video=True, weights=(MDTVSFA_FILE, RESNET50_FILE), backend="nriqa",
         description="MDTVSFA video quality (ResNet-50 mean/std features, GRU, temporal pooling); "
                     "relative score in (0,1) per clip; trained on KoNViD-1k, CVD2014, LIVE-Qualcomm and LIVE-VQC "
                     "opinion scores",
         training_data=("konvid-1k", "cvd2014", "live-qualcomm", "live-vqc")),
    _build,
)
