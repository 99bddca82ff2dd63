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
import os
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
    """Point pyiqa at the current $TORCH_HOME, forbid downloads, build timm backbones bare.

    pyiqa internals this relies on (pyiqa 0.1.16): the module globals ``DEFAULT_CACHE_DIR`` and
    ``download_url_to_file`` of ``pyiqa.utils.download_util`` (read by ``load_file_from_url`` at
    call time), ``pyiqa.archs.clip_model._download(url, root)``, and the archs calling
    ``timm.create_model`` through the ``timm`` module.
    """
    # pyiqa and timm are imported here, not at module top: they take seconds to import and are
    # needed only when a pyiqa measure is built (registering the cards must stay cheap).
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


# ----------------------------------------------------------------------------- degenerate frames
# pyiqa's formulas divide by zero on some frames that are valid input (flat, all black, a linear
# ramp, a one-pixel checkerboard). What nriqa returns there is stated on each card ("Degenerate
# frames: ..."); tests/test_quality_degenerate.py checks every offline measure on such frames.
# Each rule changes only the scores pyiqa leaves undefined (NaN) or impossible (above the maximum):
# every other score is pyiqa's, bit for bit.

PIQE_FLAT = 100.0       # PIQE of every flat frame (no active block): its worst score
_YIQ_Y = (0.299, 0.587, 0.114)


def _piqe_defined(x: torch.Tensor, ref: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """pyiqa's PIQE divides the luminance by its peak: an all-black frame is 0/0 = NaN. It is flat
    like every other constant frame, which scores PIQE_FLAT; so does the black one (no device read)."""
    w = torch.tensor(_YIQ_Y, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    black = (x * w).sum(1).flatten(1).amax(1) <= 0
    return torch.where(black & torch.isnan(out), torch.full_like(out, PIQE_FLAT), out)


def _cw_ssim_defined(x: torch.Tensor, ref: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """CW-SSIM (K = 0) is at most 1 (Cauchy-Schwarz). pyiqa's complex magnitude adds 1e-12 under the
    root, so where neither frame has energy in the compared band the ratio is 2e-6 / 2e-12 = 1e6. Both
    frames are structureless at that scale: equal structure, 1 (no device read)."""
    return torch.where(out > 1 + 1e-3, torch.ones_like(out), out)


def _vif_repair(net: nn.Module, x: torch.Tensor, ref: torch.Tensor, out: torch.Tensor,
                bad: torch.Tensor) -> torch.Tensor:
    """Frames whose VIF is NaN: pyiqa fits the reference's Gaussian scale mixture with the
    eigenvalues of a subband covariance and a pseudo-inverse; on a reference whose subbands are
    (near-)singular (flat, a linear ramp, a one-pixel checkerboard) float32 round-off makes some
    eigenvalues and energies negative and ``log2(1 + negative)`` is NaN. Those frames are scored
    again with both clipped at zero, their exact (non-negative) values. Other frames keep their score,
    except when a gradient is needed: then they are scored again too (backward through the first call
    would carry NaN into the input gradient of the repaired frames, 0 * NaN), and on references whose
    fit is singular the new score can differ from the first (a one-pixel checkerboard: meaningless)."""
    vif = net.net
    fit = vif.refparams_vecgsm

    def clipped_fit(org):
        ss, lam, cu = fit(org)
        return [t.clamp_min(0) for t in ss], [t.clamp_min(0) for t in lam], cu

    def score(i: torch.Tensor) -> torch.Tensor:
        return vif(x[i], ref[i]).reshape(len(i), -1).mean(dim=1).float()

    bad_idx, good_idx = bad.nonzero().flatten(), (~bad).nonzero().flatten()
    vif.refparams_vecgsm = clipped_fit  # an instance attribute over the method, removed below
    try:
        repaired = score(bad_idx)
    finally:
        del vif.refparams_vecgsm
    if not (torch.is_grad_enabled() and (x.requires_grad or ref.requires_grad)):
        return out.index_put((bad_idx,), repaired)
    parts = [repaired] + ([score(good_idx)] if len(good_idx) else [])
    order = torch.cat([bad_idx, good_idx]).argsort()
    return torch.cat(parts)[order]


class _FiniteGrad(torch.autograd.Function):
    """Identity forward; backward replaces NaN/Inf in the incoming gradient by 0 (no device read)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        return t.view_as(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)


def _finite_grad(t: torch.Tensor | None) -> torch.Tensor | None:
    return _FiniteGrad.apply(t) if t is not None and t.requires_grad else t


_DEFINED = {"piqe": _piqe_defined, "cw_ssim": _cw_ssim_defined}
_REPAIR = {"vif": _vif_repair}
#: measures whose pyiqa input gradient is NaN on degenerate frames (fsim: flat frames, zero phase
#: congruency energy; nlpd: identical frames, sqrt at 0): there the gradient is 0, elsewhere pyiqa's
_FINITE_GRAD = frozenset({"fsim", "nlpd"})


class PyiqaScorer(nn.Module):
    """``net(x)`` / ``net(x, ref)`` over a pyiqa network; returns (N,) raw scores.

    Scores pyiqa leaves undefined on degenerate frames are replaced by the card's stated value:
    without a device read (piqe, cw_ssim) on every call, and by :meth:`repair_undefined` (vif,
    which scores frames again) in checked :class:`~nriqa.quality.registry.Measure` calls only.
    """

    def __init__(self, pyiqa_name: str, net: nn.Module, mode: str):
        super().__init__()
        self.pyiqa_name = pyiqa_name
        self.net = net
        self.mode = mode

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        if self.pyiqa_name in _FINITE_GRAD:
            x, ref = _finite_grad(x), _finite_grad(ref)
        out = self.net(x, ref) if self.mode == "FR" else self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = out.reshape(x.shape[0], -1).mean(dim=1).float()
        defined = _DEFINED.get(self.pyiqa_name)
        return defined(x, ref, out) if defined is not None else out

    def repair_undefined(self, x: torch.Tensor, ref: torch.Tensor | None, out: torch.Tensor,
                         bad: torch.Tensor) -> torch.Tensor:
        """Scores for the frames ``bad`` (bool (N,)) whose score is NaN/Inf, where the card defines
        one; called by checked Measure calls (it may read from the device and score frames again)."""
        repair = _REPAIR.get(self.pyiqa_name)
        return repair(self, x, ref, out, bad) if repair is not None else out


def build_pyiqa(pyiqa_name: str, device: str | torch.device = "cpu", **opts) -> nn.Module:
    """Build pyiqa metric ``pyiqa_name`` offline; returns a frozen :class:`PyiqaScorer`."""
    import pyiqa  # slow to import; see _offline_build

    with _offline_build():
        metric = pyiqa.create_metric(pyiqa_name, device=device, **opts)
    scorer = PyiqaScorer(pyiqa_name, metric.net, metric.metric_mode)
    scorer.requires_grad_(False)
    return scorer.eval()


def _pyiqa_card(name: str, mode: str, *, higher_better: bool, score_range: tuple | None, min_size: int,
                description: str, weights: tuple[WeightFile, ...] = (), differentiable: bool = True,
                loss_range: tuple | None = None, training_data: tuple[str, ...] = ()) -> Card:
    """Card of the pyiqa metric ``name`` (nriqa uses pyiqa's own name; frames only, not video).
    ``training_data``: the set pyiqa's default weights were trained on, where the description names it."""
    return Card(
        name=name, mode=mode, higher_better=higher_better, score_range=score_range,
        differentiable=differentiable, min_size=min_size, video=False, weights=weights,
        backend=f"pyiqa:{name}", description=description, loss_range=loss_range, training_data=training_data,
    )


# Mode and direction restate pyiqa's table (``pyiqa.default_model_configs.DEFAULT_CONFIGS``:
# ``metric_mode``, ``lower_better``); tests/test_quality_pyiqa_measures.py checks that they agree. They are
# written out rather than read at import because importing pyiqa takes seconds, and listing the
# measures must not. pyiqa's ranges are rough ("~0, ~1"); the ranges here are the ones
# :func:`~nriqa.quality.registry.to_loss` normalises with. Where they differ from pyiqa's: psnr
# is unbounded (pyiqa "~0, ~40") and normalised over 0..50 dB; gmsd is 0..0.5 (pyiqa "0, ~1").
# min_size of the weight-free measures was probed (smallest square side that runs); for measures
# with weights it is the architecture's need (224 for fixed-size ViT/ResNet crops) or a safe guess.
CARDS: tuple[Card, ...] = (
    _pyiqa_card("psnr", "FR", higher_better=True, score_range=None, loss_range=(0, 50), min_size=1,
                description="PSNR in dB on RGB (unbounded; loss (50-s)/50). Degenerate frames: identical frames "
                            "score 80 dB (pyiqa's MSE floor 1e-8); flat frames are ordinary input"),
    _pyiqa_card("ssim", "FR", higher_better=True, score_range=(0, 1), min_size=11,
                description="SSIM on the Y channel, 11x11 Gaussian window. Degenerate frames: finite on flat "
                            "frames (SSIM's stabilising constants); identical frames score 1"),
    _pyiqa_card("ms_ssim", "FR", higher_better=True, score_range=(0, 1), min_size=176,
                description="multi-scale SSIM (5 scales) on Y. Degenerate frames: finite on flat frames; "
                            "identical frames score 1"),
    _pyiqa_card("cw_ssim", "FR", higher_better=True, score_range=(0, 1), min_size=64,
                description="complex-wavelet SSIM on Y (one band; insensitive to luminance). Degenerate frames: "
                            "two frames with no structure in the compared band (flat, black, white, a linear "
                            "ramp, a one-pixel checkerboard) score 1, equal structure (pyiqa's K=0 formula "
                            "returned up to 1e6 there: 0/0 guarded by 1e-12); a flat frame against a textured "
                            "one scores ~0"),
    _pyiqa_card("fsim", "FR", higher_better=True, score_range=(0, 1), min_size=32,
                description="feature similarity (phase congruency), chromatic. Degenerate frames: finite on flat "
                            "frames; identical frames score 1; the input gradient is 0 on a flat frame (pyiqa's "
                            "is NaN there)"),
    _pyiqa_card("vif", "FR", higher_better=True, score_range=(0, 1), min_size=40,
                description="visual information fidelity (pixel domain). Degenerate frames: a flat reference "
                            "carries no information, so VIF is 0 whatever x is (also against itself). On a "
                            "reference with singular subbands (a linear ramp, a one-pixel checkerboard) pyiqa's "
                            "GSM fit gives NaN; checked calls score those frames again with the fit's "
                            "eigenvalues and energies clipped at zero (a ramp against itself scores 1), "
                            "unchecked calls (check_values=False) return the NaN. Undefined on a reference "
                            "with energy only at one-pixel period (a one-pixel checkerboard): meaningless "
                            "large values or NaN, which checked calls raise as UndefinedScoreError"),
    _pyiqa_card("gmsd", "FR", higher_better=False, score_range=(0, 0.5), min_size=8,
                description="gradient magnitude similarity deviation on Y. Degenerate frames: finite on flat "
                            "frames; identical frames score 0"),
    _pyiqa_card("nlpd", "FR", higher_better=False, score_range=(0, 1), min_size=32,
                description="normalised Laplacian pyramid distance on Y, as pyiqa computes it: its values differ "
                            "from the published reference implementation's by up to 31 % on near-clean images "
                            "(kept as pyiqa's, not corrected here; compare rankings, not absolute values, with "
                            "papers). Not bounded by 1: unrelated frames can score above 2 (loss s > 1 there). "
                            "Degenerate frames: finite on flat frames; identical frames score 0, with input "
                            "gradient 0 (pyiqa's is NaN there, the square root's derivative at 0)"),
    _pyiqa_card("vsi", "FR", higher_better=True, score_range=(0, 1), min_size=32,
                description="visual saliency-induced index. Degenerate frames: finite on flat frames; identical "
                            "frames score 1"),
    _pyiqa_card("mad", "FR", higher_better=False, score_range=None, loss_range=(0, 200), min_size=128,
                differentiable=False, description="most apparent distortion (slow). Degenerate frames: finite on "
                                                         "flat frames; identical frames score 0"),
    _pyiqa_card("piqe", "NR", higher_better=False, score_range=(0, 100), min_size=16, differentiable=False,
                description="perception-based image quality evaluator "
                            "(block-wise hard thresholds: input gradient is zero). Degenerate frames: a flat "
                            "frame (constant, all white) has no active block and scores 100, the worst; an "
                            "all-black frame, which pyiqa scores NaN (it divides by the peak luminance, 0), "
                            "scores 100 as well"),
    _pyiqa_card("maniqa", "NR", higher_better=True, score_range=(0, 1), min_size=224,
                weights=(_pyiqa_file("ckpt_koniq10k.pt"),),
                description="MANIQA (ViT-B/8 + transposed attention), KonIQ-10k", training_data=("koniq10k",)),
    _pyiqa_card("dbcnn", "NR", higher_better=True, score_range=(0, 1), min_size=32,
                weights=(VGG16, _pyiqa_file("DBCNN_scnn-7ea73d75.pth"), _pyiqa_file("DBCNN_KonIQ10k-2de81c0a.pth")),
                description="DBCNN (VGG-16 + SCNN bilinear pooling), KonIQ-10k", training_data=("koniq10k",)),
    _pyiqa_card("nima", "NR", higher_better=True, score_range=(0, 10), min_size=32,
                weights=(_pyiqa_file("NIMA_InceptionV2_ava-b0c77c00.pth"),),
                description="NIMA (Inception-ResNet-v2), AVA aesthetics, mean of 10-bin distribution",
                training_data=("ava",)),
    _pyiqa_card("hyperiqa", "NR", higher_better=True, score_range=(0, 1), min_size=224,
                weights=(_pyiqa_file("HyperIQA-resnet50-koniq10k-c96c41b1.pth"),),
                description="HyperIQA (ResNet-50 hyper network), KonIQ-10k", training_data=("koniq10k",)),
    _pyiqa_card("paq2piq", "NR", higher_better=True, score_range=(0, 100), min_size=64,
                weights=(RESNET18, _pyiqa_file("P2P_RoIPoolModel-fit.10.bs.120-ca69882e.pth")),
                description="PaQ-2-PiQ (ResNet-18 RoI pooling)"),
    _pyiqa_card("clipiqa", "NR", higher_better=True, score_range=(0, 1), min_size=32, weights=(CLIP_RN50,),
                description="CLIP-IQA (antonym prompt pairs, CLIP RN50)"),
    _pyiqa_card("musiq", "NR", higher_better=True, score_range=(0, 100), min_size=32, differentiable=False,
                weights=(_pyiqa_file("musiq_koniq_ckpt-e95806b9.pth"),),
                description="MUSIQ multi-scale transformer, KonIQ-10k (patch extraction not differentiable)",
                training_data=("koniq10k",)),
    _pyiqa_card("topiq_nr", "NR", higher_better=True, score_range=(0, 1), min_size=32,
                weights=(_pyiqa_file("cfanet_nr_koniq_res50-9a73138b.pth"),),
                description="TOPIQ no-reference (ResNet-50 top-down attention), KonIQ-10k",
                training_data=("koniq10k",)),
    _pyiqa_card("pieapp", "FR", higher_better=False, score_range=(0, 5), min_size=64,
                weights=(_pyiqa_file("PieAPPv0.1-0937b014.pth"),),
                description="PieAPP pairwise-preference error (64px patches, stride 27)"),
    _pyiqa_card("dists", "FR", higher_better=False, score_range=(0, 1), min_size=32,
                weights=(VGG16, _pyiqa_file("DISTS_weights-f5e65c96.pth")),
                description="DISTS (VGG-16 structure + texture similarity)"),
)


def _register_all() -> None:
    for c in CARDS:
        def builder(device="cpu", _p=c.name, **opts):
            return build_pyiqa(_p, device, **opts)

        register(c, builder)


_register_all()
