"""BRISQUE (Mittal, Moorthy & Bovik, IEEE TIP 2012) in torch, differentiable; lower is better.

The regressor is the trained epsilon-SVR (RBF kernel, gamma 0.05, 770 support vectors, rho -155.845)
shipped in the ``brisque`` 0.2.0 wheel (``brisque/models/svm.txt``, a libsvm model file parsed here)
with its feature scaling to [-1, 1] (``brisque/models/normalize.pickle``: per-feature min/max, read
with an unpickler that accepts plain numbers and containers only). It was trained on LIVE IQA
opinion scores; it is *not* byte-identical to the MATLAB release's ``allmodel`` (its scaling ranges
differ slightly from ``allrange``).

Features: the paper's 36 (18 per scale, 2 scales) on the grey image in [0, 255]:

- MSCN coefficients ``(I - mu) / (sigma + 1)``, 7x7 Gaussian window (sigma 7/6), zero padding
  (MATLAB ``filter2(..., 'same')``);
- the MSCN values' shape and variance -> (alpha, (left var + right var) / 2);
- the products of each coefficient with its right, lower, lower-right and upper-right neighbour
  (pairs inside the image) -> AGGD (alpha, mean, left variance, right variance);
- the second scale is the grey image halved.

Features follow MATLAB's ``brisque_feature.m`` / ``brisquescore.m`` in the grey image and the
wheel's code elsewhere. The wheel's feature code departs from MATLAB's in five places:

- grey image: MATLAB ``rgb2gray`` (BT.601) on uint8, so rounded to integers; the wheel: BT.709 luma
  (``skimage.color.rgb2gray``), not rounded;
- second scale: MATLAB ``imresize`` bicubic, antialiased; the wheel: OpenCV ``INTER_CUBIC`` at 0.5
  (Keys a = -0.75, no antialiasing);
- MSCN shape: MATLAB a GGD fit (variance = mean square); the wheel an AGGD fit (variance = mean of
  the two sides' mean squares);
- right side of an AGGD: MATLAB values > 0; the wheel values >= 0 (flat regions' zeros count);
- neighbour products: MATLAB circular shifts; the wheel pairs inside the image.

``grey="matlab"`` (the default) takes MATLAB's grey image, rounded to 8 bits as ``rgb2gray`` on
uint8 does (the rounding passes gradients straight through); ``grey="wheel"`` takes the wheel's and
then reproduces the package's ``BRISQUE().score()`` within 0.01 on five scikit-image photos
(``tests/test_quality_brisque_measure.py``). Why the grey image and nothing else: on the five TID2013
images of the reference toolbox's calibration table (I03, I04, I06, I08, I19; MATLAB 94.64, -0.11,
0.99, 5.36, 72.26) the wheel's features give 102.34, 0.84, 0.75, 8.80, 90.69 (I04 and I06 swapped,
mean distance 6.15), MATLAB's rounded grey 94.94, 0.98, 1.38, 9.02, 91.49 (the published ranking,
mean distance 4.93); without the rounding MATLAB's weights alone keep the swap. The other four
MATLAB choices each move the scores further off (all five as in MATLAB: scikit-image photos up to 8
points off the package, in another order): the SVR was trained on the wheel's features there. The
price of the MATLAB grey: scikit-image photos move up to 1.5 from the package (rocket 4.23 -> 5.71).

Shape parameters invert the moment ratio on the grid ``[0.2, 10]`` step 0.001 with linear
interpolation (shared with :mod:`nriqa.quality.niqe`; the wheel uses a root finder), so the score
is differentiable almost everywhere. Score: ``sum_i coef_i exp(-gamma ||s(f) - sv_i||^2) - rho`` for
the scaled features ``s(f)``; typical values 0..100, outside that range for very clean or very
distorted images.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nriqa.quality.base import Card, WeightFile, register, verified_path
from nriqa.quality.niqe import _gauss_window, invert_moment_ratio

N_FEATURES = 36
MIN_SIZE = 32

_PIP = "pip install brisque==0.2.0"
SVM_FILE = WeightFile("svm.txt", 351414, _PIP, "19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d",
                      subdir="brisque/models", root="package:brisque")
SCALE_FILE = WeightFile("normalize.pickle", 686, _PIP,
                        "a91753fe7088efe0b40e4d091315201fdb067966fc6785cf465e1eab060acda9",
                        subdir="brisque/models", root="package:brisque")


# ---------------------------------------------------------------- the model files
def read_libsvm_model(path: str | Path) -> dict:
    """Parse a libsvm ``svm_save_model`` text file of a one-output regression model (epsilon/nu-SVR).

    Returns ``{"svm_type", "kernel_type", "gamma", "rho", "coef" (n,), "sv" (n, d)}``; feature
    indices are 1-based and sparse in the file (an absent index is 0).
    """
    lines = Path(path).read_text().splitlines()
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, value = lines[i].strip().partition(" ")
        if key:
            header[key] = value.strip()
        i += 1
    if i == len(lines):
        raise ValueError(f"{path}: no 'SV' line; not a libsvm model file")
    if header.get("svm_type") not in ("epsilon_svr", "nu_svr"):
        raise ValueError(f"{path}: svm_type {header.get('svm_type')!r}; expected a regression model")
    if header.get("kernel_type") != "rbf":
        raise ValueError(f"{path}: kernel_type {header.get('kernel_type')!r}; expected rbf")
    rows = [ln.split() for ln in lines[i + 1:] if ln.strip()]
    n_sv = int(header["total_sv"])
    if len(rows) != n_sv:
        raise ValueError(f"{path}: header says {n_sv} support vectors, found {len(rows)}")
    pairs = [[(int(k), float(v)) for k, v in (p.split(":") for p in r[1:])] for r in rows]
    dim = max((k for r in pairs for k, _ in r), default=0)
    sv = np.zeros((n_sv, dim))
    for j, r in enumerate(pairs):
        for k, v in r:
            sv[j, k - 1] = v
    return {"svm_type": header["svm_type"], "kernel_type": "rbf", "gamma": float(header["gamma"]),
            "rho": float(header["rho"].split()[0]), "coef": np.array([float(r[0]) for r in rows]), "sv": sv}


class _NumbersOnly(pickle.Unpickler):
    """Unpickles plain containers and numbers; refuses every class or function reference."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a scaling file")


def read_scaling(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The per-feature ``(min, max)`` of ``normalize.pickle`` (``{"min_": [...], "max_": [...]}``)."""
    d = _NumbersOnly(io.BytesIO(Path(path).read_bytes())).load()
    lo, hi = np.asarray(d["min_"], dtype=np.float64), np.asarray(d["max_"], dtype=np.float64)
    if lo.shape != (N_FEATURES,) or hi.shape != (N_FEATURES,) or not (hi > lo).all():
        raise ValueError(f"{path}: expected {N_FEATURES} (min, max) pairs with max > min")
    return lo, hi


def published_model() -> dict:
    """The ``brisque`` wheel's SVR and feature scaling, checked against the files nriqa was tested with."""
    m = read_libsvm_model(verified_path(SVM_FILE))
    if m["sv"].shape[1] > N_FEATURES:
        raise ValueError(f"{SVM_FILE.path}: support vectors have {m['sv'].shape[1]} features, expected {N_FEATURES}")
    sv = np.zeros((m["sv"].shape[0], N_FEATURES))
    sv[:, : m["sv"].shape[1]] = m["sv"]
    m["sv"] = sv
    m["lo"], m["hi"] = read_scaling(verified_path(SCALE_FILE))
    return m


# ---------------------------------------------------------------- features
_LUMA = (0.2125, 0.7154, 0.0721)                           # BT.709, as skimage.color.rgb2gray
_LUMA_MATLAB = (0.298936021293775, 0.587043074451121, 0.114020904255103)   # MATLAB rgb2gray
GREYS = ("matlab", "wheel")
_HALF_TAPS = (-0.09375, 0.59375, 0.59375, -0.09375)       # Keys cubic (a = -0.75) at distances 1.5, 0.5


def grey(x: torch.Tensor) -> torch.Tensor:
    """RGB (N, 3, H, W) in [0, 1] -> BT.709 luma (N, 1, H, W) in [0, 255], not rounded (the wheel's)."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True) * 255.0


def grey_matlab(x: torch.Tensor) -> torch.Tensor:
    """RGB (N, 3, H, W) in [0, 1] -> MATLAB ``rgb2gray`` of the 8-bit image (N, 1, H, W): integers in
    [0, 255]; the rounding is straight-through (its gradient is the unrounded luma's)."""
    w = torch.tensor(_LUMA_MATLAB, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (x * w).sum(1, keepdim=True) * 255.0
    return y + (torch.round(y) - y).detach()


def halve(y: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 1, H/2, W/2), bicubic without antialiasing, as OpenCV ``resize(fx=fy=0.5,
    INTER_CUBIC)``: output pixel ``i`` is at input position ``2i + 0.5`` (taps ``2i-1 .. 2i+2``,
    weights ``_HALF_TAPS``, edge pixels repeated outside the image); an odd side's half is rounded
    to even, as OpenCV rounds the output size (37 -> 18, 451 -> 226).
    """
    h, w = y.shape[-2:]
    oh, ow = max(1, round(h / 2)), max(1, round(w / 2))
    p = F.pad(y, (1, 2 * ow - w + 1, 1, 2 * oh - h + 1), mode="replicate")
    k = torch.tensor(_HALF_TAPS, dtype=y.dtype, device=y.device)
    p = F.conv2d(p, k.view(1, 1, 4, 1), stride=(2, 1))
    return F.conv2d(p, k.view(1, 1, 1, 4), stride=(1, 2))


def mscn_zero_pad(y: torch.Tensor) -> torch.Tensor:
    """MSCN coefficients of grey images (N, 1, H, W) in [0, 255], zero padding (MATLAB ``filter2``)."""
    w = _gauss_window(str(y.device), y.dtype)
    mu = F.conv2d(y, w, padding=3)
    var = F.conv2d(y * y, w, padding=3) - mu * mu
    return (y - mu) / (torch.sqrt(var.abs() + 1e-8) + 1)


def _aggd(v: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AGGD over the last dim with zeros on the right side: ``(alpha, left_var, right_var)``."""
    neg, pos = (v < 0).to(v.dtype), (v >= 0).to(v.dtype)
    sq = v * v
    left = (sq * neg).sum(-1) / neg.sum(-1).clamp_min(1) + eps
    right = (sq * pos).sum(-1) / pos.sum(-1).clamp_min(1) + eps
    g = torch.sqrt(left / right)
    r = v.abs().mean(-1) ** 2 / (sq.mean(-1) + eps) * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    return invert_moment_ratio(r), left, right


def scale_features(y: torch.Tensor) -> torch.Tensor:
    """The 18 BRISQUE features of each grey image (N, 1, H, W) at one scale -> (N, 18)."""
    c = mscn_zero_pad(y)[:, 0]
    alpha, left, right = _aggd(c.flatten(1))
    feats = [alpha, (left + right) / 2]
    pairs = (c[:, :, :-1] * c[:, :, 1:], c[:, :-1, :] * c[:, 1:, :],          # right, lower
             c[:, :-1, :-1] * c[:, 1:, 1:], c[:, 1:, :-1] * c[:, :-1, 1:])    # lower-right, upper-right
    for pair in pairs:
        a, left, right = _aggd(pair.flatten(1))
        g1, g2, g3 = torch.lgamma(1 / a), torch.lgamma(2 / a), torch.lgamma(3 / a)
        mean = (torch.sqrt(right) - torch.sqrt(left)) * torch.exp(g2 - g1 + 0.5 * (g1 - g3))
        feats += [a, mean, left, right]
    return torch.stack(feats, dim=-1)


def brisque_features(x: torch.Tensor, grey_image: str = "matlab") -> torch.Tensor:
    """The 36 BRISQUE features of RGB images (N, 3, H, W) in [0, 1], computed in float64 -> (N, 36).

    ``grey_image``: ``"matlab"`` (``rgb2gray`` on 8 bits) or ``"wheel"`` (BT.709 luma, unrounded).
    """
    if grey_image not in GREYS:
        raise ValueError(f"grey_image must be one of {GREYS}, got {grey_image!r}")
    y = (grey_matlab if grey_image == "matlab" else grey)(x.double())
    return torch.cat([scale_features(y), scale_features(halve(y))], dim=-1)


class BRISQUE(nn.Module):
    """``forward(x (N,3,H,W) in [0,1]) -> (N,)`` BRISQUE scores (lower is better); differentiable.

    ``grey_image``: which grey image the features start from (see the module docstring).
    """

    def __init__(self, model: dict, grey_image: str = "matlab"):
        super().__init__()
        if grey_image not in GREYS:
            raise ValueError(f"grey_image must be one of {GREYS}, got {grey_image!r}")
        self.grey_image = grey_image
        self.gamma, self.rho = float(model["gamma"]), float(model["rho"])
        self.register_buffer("lo", torch.as_tensor(model["lo"], dtype=torch.float64))
        self.register_buffer("hi", torch.as_tensor(model["hi"], dtype=torch.float64))
        self.register_buffer("coef", torch.as_tensor(model["coef"], dtype=torch.float64))
        self.register_buffer("sv", torch.as_tensor(model["sv"], dtype=torch.float64))

    def svr(self, feats: torch.Tensor) -> torch.Tensor:
        """SVR prediction from raw features (N, 36): scale to [-1, 1], RBF kernel, weighted sum - rho."""
        s = -1 + 2 * (feats - self.lo) / (self.hi - self.lo)
        d2 = (s * s).sum(-1, keepdim=True) - 2 * s @ self.sv.T + (self.sv * self.sv).sum(-1)
        return torch.exp(-self.gamma * d2.clamp_min(0)) @ self.coef - self.rho

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.svr(brisque_features(x, self.grey_image)).float()


def _register() -> None:
    register(Card(name="brisque", mode="NR", higher_better=False, score_range=(0, 100), differentiable=True,
                  min_size=MIN_SIZE, video=False, weights=(SVM_FILE, SCALE_FILE), backend="nriqa",
                  description="BRISQUE (Mittal, Moorthy & Bovik, IEEE TIP 2012): 36 MSCN/AGGD features over 2 "
                              "scales, epsilon-SVR (RBF) trained on LIVE IQA opinion scores, from the brisque "
                              "0.2.0 wheel (brisque/models/svm.txt, normalize.pickle); features as that wheel "
                              "computes them but on MATLAB's rgb2gray 8-bit grey image (the published "
                              "calibration ranking); not byte-identical to the MATLAB release's model; scores "
                              "~0..100+, can leave the range; loss s/100",
                  training_data=("live",)),
             lambda device="cpu", **kw: BRISQUE(published_model()).to(device))


_register()
