"""Measures computed by pyiqa (``pyiqa.create_metric``), registered with nriqa cards.

Weight files: pyiqa reads its checkpoints from ``$TORCH_HOME/hub/pyiqa/<file>``, torchvision
backbones from ``$TORCH_HOME/hub/checkpoints/<file>`` and CLIP from ``$TORCH_HOME/hub/clip/<file>``.
The cards below list exactly the files each measure's pyiqa code loads (read from
``pyiqa/archs/*_arch.py``, pyiqa 0.1.16), so presence is checked before construction.

timm backbones (MANIQA's ViT, NIMA's Inception-ResNet-v2, HyperIQA's and TOPIQ's ResNet-50)
are built *without* their ImageNet weights: pyiqa then loads the full measure checkpoint
with ``strict=True``, which overwrites every backbone parameter, so the ImageNet file
(a Hugging Face download) is never needed. During construction every download function
pyiqa could reach is replaced by one that raises :class:`WeightsMissingError`.

The scorer calls ``metric.net`` directly (pyiqa's wrapper disables gradients unless built
``as_loss``), so gradients flow to the input for the differentiable measures.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from nriqa.quality.base import Card, WeightFile, WeightsMissingError, register, torch_hub_dir

_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
_TV = "https://download.pytorch.org/models/"


def _pyiqa_file(name: str, size: int | None = None) -> WeightFile:
    return WeightFile(name, size, _HF + name, None, subdir="pyiqa", root="torch_hub")


def _tv_file(name: str, size: int | None = None) -> WeightFile:
    """torchvision file; the 8 hex digits in its name are the prefix of its sha256."""
    prefix = name.rsplit("-", 1)[-1].split(".")[0]
    return WeightFile(name, size, _TV + name, prefix, subdir="checkpoints", root="torch_hub")


VGG16 = _tv_file("vgg16-397923af.pth")
RESNET18 = _tv_file("resnet18-f37072fd.pth")
CLIP_RN50 = WeightFile(
    "RN50.pt", None,
    "https://openaipublic.azureedge.net/clip/models/"
    "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
    subdir="clip", root="torch_hub",
)


@contextlib.contextmanager
def _offline_build() -> Iterator[None]:
    """Point pyiqa at the current $TORCH_HOME, forbid downloads, build timm backbones bare."""
    import pyiqa.utils.download_util as dl
    import timm

    def no_download(url, dst=None, *a, **k):
        raise WeightsMissingError(
            f"nriqa: pyiqa tried to download {url} (to {dst}); this file is not listed on the "
            "measure's card - nothing is downloaded implicitly. Put the file there by hand."
        )

    saved = {
        (dl, "DEFAULT_CACHE_DIR"): dl.DEFAULT_CACHE_DIR,
        (dl, "download_url_to_file"): dl.download_url_to_file,
        (torch.hub, "download_url_to_file"): torch.hub.download_url_to_file,
        (timm, "create_model"): timm.create_model,
    }
    clip_mod = None
    try:
        import pyiqa.archs.clip_model as clip_mod
        saved[(clip_mod, "_download")] = clip_mod._download
    except ImportError:
        pass
    real_create = timm.create_model

    def bare_create(name, *a, **k):
        k["pretrained"] = False
        return real_create(name, *a, **k)

    def clip_download(url, root):
        import os

        path = os.path.join(root, os.path.basename(url))
        if not os.path.isfile(path):
            no_download(url, path)
        return path

    dl.DEFAULT_CACHE_DIR = str(torch_hub_dir() / "pyiqa")
    dl.download_url_to_file = no_download
    torch.hub.download_url_to_file = no_download
    timm.create_model = bare_create
    if clip_mod is not None:
        clip_mod._download = clip_download
    try:
        yield
    finally:
        for (mod, attr), val in saved.items():
            setattr(mod, attr, val)


class PyiqaScorer(nn.Module):
    """``net(x)`` / ``net(x, ref)`` over a pyiqa network; returns (N,) raw scores."""

    def __init__(self, pyiqa_name: str, net: nn.Module, mode: str):
        super().__init__()
        self.pyiqa_name = pyiqa_name
        self.net = net
        self.mode = mode

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        out = self.net(x, ref) if self.mode == "FR" else self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.reshape(x.shape[0], -1).mean(dim=1).float()


def build_pyiqa(pyiqa_name: str, device: str | torch.device = "cpu", **opts) -> nn.Module:
    """Build pyiqa metric ``pyiqa_name`` offline; returns a frozen :class:`PyiqaScorer`."""
    import pyiqa

    with _offline_build():
        metric = pyiqa.create_metric(pyiqa_name, device=device, **opts)
    scorer = PyiqaScorer(pyiqa_name, metric.net, metric.metric_mode)
    scorer.requires_grad_(False)
    return scorer.eval()


# name, pyiqa name, mode, higher_better, score_range, loss_range, differentiable, min_size, weights, description
# min_size of the weight-free measures was probed (smallest square side that runs); for measures
# with weights it is the architecture's need (224 for fixed-size ViT/ResNet crops) or a safe guess.
_SPECS = [
    ("psnr", "psnr", "FR", True, None, (0, 50), True, 1, (), "PSNR in dB on RGB (unbounded; loss (50-s)/50)"),
    ("ssim", "ssim", "FR", True, (0, 1), None, True, 11, (), "SSIM on the Y channel, 11x11 Gaussian window"),
    ("ms_ssim", "ms_ssim", "FR", True, (0, 1), None, True, 176, (), "multi-scale SSIM (5 scales) on Y"),
    ("cw_ssim", "cw_ssim", "FR", True, (0, 1), None, True, 64, (), "complex-wavelet SSIM on Y"),
    ("fsim", "fsim", "FR", True, (0, 1), None, True, 32, (), "feature similarity (phase congruency), chromatic"),
    ("vif", "vif", "FR", True, (0, 1), None, True, 40, (), "visual information fidelity (pixel domain)"),
    ("gmsd", "gmsd", "FR", False, (0, 0.5), None, True, 8, (), "gradient magnitude similarity deviation on Y"),
    ("nlpd", "nlpd", "FR", False, (0, 1), None, True, 32, (), "normalised Laplacian pyramid distance on Y"),
    ("vsi", "vsi", "FR", True, (0, 1), None, True, 32, (), "visual saliency-induced index"),
    ("mad", "mad", "FR", False, None, (0, 200), False, 128, (), "most apparent distortion (slow)"),
    ("piqe", "piqe", "NR", False, (0, 100), None, False, 16, (),
     "perception-based image quality evaluator (block-wise hard thresholds: input gradient is zero)"),
    ("maniqa", "maniqa", "NR", True, (0, 1), None, True, 224, (_pyiqa_file("ckpt_koniq10k.pt"),),
     "MANIQA (ViT-B/8 + transposed attention), KonIQ-10k"),
    ("dbcnn", "dbcnn", "NR", True, (0, 1), None, True, 32,
     (VGG16, _pyiqa_file("DBCNN_scnn-7ea73d75.pth"), _pyiqa_file("DBCNN_KonIQ10k-2de81c0a.pth")),
     "DBCNN (VGG-16 + SCNN bilinear pooling), KonIQ-10k"),
    ("nima", "nima", "NR", True, (0, 10), None, True, 32, (_pyiqa_file("NIMA_InceptionV2_ava-b0c77c00.pth"),),
     "NIMA (Inception-ResNet-v2), AVA aesthetics, mean of 10-bin distribution"),
    ("hyperiqa", "hyperiqa", "NR", True, (0, 1), None, True, 224,
     (_pyiqa_file("HyperIQA-resnet50-koniq10k-c96c41b1.pth"),), "HyperIQA (ResNet-50 hyper network), KonIQ-10k"),
    ("paq2piq", "paq2piq", "NR", True, (0, 100), None, True, 64,
     (RESNET18, _pyiqa_file("P2P_RoIPoolModel-fit.10.bs.120-ca69882e.pth")), "PaQ-2-PiQ (ResNet-18 RoI pooling)"),
    ("clipiqa", "clipiqa", "NR", True, (0, 1), None, True, 32, (CLIP_RN50,),
     "CLIP-IQA (antonym prompt pairs, CLIP RN50)"),
    ("musiq", "musiq", "NR", True, (0, 100), None, False, 32, (_pyiqa_file("musiq_koniq_ckpt-e95806b9.pth"),),
     "MUSIQ multi-scale transformer, KonIQ-10k (patch extraction not differentiable)"),
    ("topiq_nr", "topiq_nr", "NR", True, (0, 1), None, True, 32, (_pyiqa_file("cfanet_nr_koniq_res50-9a73138b.pth"),),
     "TOPIQ no-reference (ResNet-50 top-down attention), KonIQ-10k"),
    ("pieapp", "pieapp", "FR", False, (0, 5), None, True, 64, (_pyiqa_file("PieAPPv0.1-0937b014.pth"),),
     "PieAPP pairwise-preference error (64px patches, stride 27)"),
    ("dists", "dists", "FR", False, (0, 1), None, True, 32, (VGG16, _pyiqa_file("DISTS_weights-f5e65c96.pth")),
     "DISTS (VGG-16 structure + texture similarity)"),
]


def _register_all() -> None:
    for name, pname, mode, hb, rng, lrng, diff, min_size, weights, desc in _SPECS:
        c = Card(
            name=name, mode=mode, higher_better=hb, score_range=rng, differentiable=diff,
            min_size=min_size, video=False, weights=tuple(weights), backend=f"pyiqa:{pname}",
            description=desc, loss_range=lrng,
        )

        def builder(device="cpu", _p=pname, **opts):
            return build_pyiqa(_p, device, **opts)

        register(c, builder)


_register_all()
