"""NIQE (Mittal, Soundararajan & Bovik 2013) in torch, differentiable; lower is better.

Features (per 96x96 patch at scale 1, and per 48x48 patch of the 0.5x bicubic image at scale 2,
18 per scale, 36 in all), computed on luminance in [0, 255]:

- luminance = MATLAB ``rgb2gray`` (exact weights, the first row of the inverse NTSC matrix,
  0.298936 / 0.587043 / 0.114021) rounded to integer grey levels as on uint8 images (straight-through
  gradient);
- MSCN coefficients ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window (sigma 7/6, replicate
  padding) whose weights are rounded to float32, as the reference toolbox stores them; they then sum
  to 1 + 1.1e-8, so a pixel in a flat neighbourhood of level I gets ``-1.1e-8 I / (1 + sigma)``
  instead of an exact 0 with a round-off sign. That decides which side of the AGGD fits flat pixels
  count on (negative; none for black) and their magnitude in mostly flat patches, and moves NIQE by
  up to 0.6 % on real images (TID2013 I03, I08, I19); a level-independent tilt instead was measured
  1.9 % off the reference on scikit-image's astronaut (black background). Consequence inherited from
  the reference: flat frames of different grey levels get different (finite) scores;
- an AGGD fit of the MSCN values -> (shape alpha, mean of left/right scales);
- AGGD fits of the products of each coefficient with its right, lower, lower-right and
  upper-right neighbour (circular within the patch) -> (alpha, mean, left scale, right scale) each.

AGGD shape: the moment ratio ``r(a) = G(2/a)^2 / (G(1/a) G(3/a))`` is inverted on the grid
``a in [0.2, 10]`` step 0.001. The *value* is the nearest grid point (as MATLAB's and the toolbox's
``argmin``); the *gradient* is that of linear interpolation between the two neighbouring grid points
(straight-through: ``alpha = lin + (nearest - lin).detach()``, so the score is exact and gradients
are finite and positive in r); outside the grid the shape clamps (zero gradient).

Agreement with the reference toolbox (pyiqa's ``calculate_niqe`` fed the same pristine arrays), on the
five TID2013 images of its calibration table (I03, I04, I06, I08, I19; measured, not shipped): with the
same grey input the scores agree within 0.01 % (the rest is pyiqa's float32 half-scale resize); with
RGB input they differ by the luminance weights alone (pyiqa takes YIQ's 0.299 / 0.587 / 0.114), up to
0.47 % (I03). The exact ``rgb2gray`` weights are kept because they bring I03 to within 0.1 % of the
published MATLAB value (0.299 weights: -0.45 %). tests/test_quality_niqe.py pins both agreements on
scikit-image photos.

Score: ``sqrt((mu_p - mu_x)^T pinv((C_p + C_x)/2) (mu_p - mu_x))`` where ``(mu_p, C_p)`` is the
pristine multivariate Gaussian and ``(mu_x, C_x)`` the mean/covariance of the image's patch
features (``C_x = 0`` when the image has a single patch).

Measures (the same feature code, two pristine models):

- ``niqe``: the published model. The pristine MVG the authors fitted on their 125 pristine natural
  images (no opinion scores; the MATLAB release's ``modelparameters.mat``), as shipped in the
  ``iqa-torch`` wheel (``iqa/niqe/niqe_pris_params.npz``: ``mu_pris_param`` (1, 36),
  ``cov_pris_param`` (36, 36)), located with ``importlib.metadata``; 96 px patches as published.
- ``niqe-kit``: pristine model fitted here with this same feature code on the embedded clean
  training frames (``nriqa.data.pristine_frames("train")``; cached under ``cache_dir()/niqe/``)
  with 48 px patches (24 px at scale 2), so that the kit's small frames (96..256 px) give several
  patches. Not comparable to published NIQE values.
"""
from __future__ import annotations

import hashlib
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nriqa.data import bicubic_resize, pristine_frames
from nriqa.errors import brief_error
from nriqa.paths import atomic_path, cache_dir
from nriqa.progress import progress_bar
from nriqa.quality.base import Card, WeightFile, register, verified_path

PATCH = 96                      # patch side of the published model
KIT_PATCH = 48                  # patch side of the kit fit: small frames (96..256 px) still give >1 patch
SHARPNESS_THRESHOLD = 0.75      # pristine patches: local sharpness > 0.75 * max over the image
_GRID = torch.arange(0.2, 10.0 + 1e-9, 0.001, dtype=torch.float64)
_FIT_VERSION = "niqe-kit-v3"  # v3: float32-rounded window, nearest-grid shape, exact rgb2gray


def _aggd_ratio(a: torch.Tensor) -> torch.Tensor:
    """r(a) = G(2/a)^2 / (G(1/a) G(3/a)); increasing in a."""
    lg = torch.lgamma
    return torch.exp(2 * lg(2 / a) - lg(1 / a) - lg(3 / a))


_RATIO = _aggd_ratio(_GRID)
_RATIO_RANGE = (float(_RATIO[0]), float(_RATIO[-1]))  # Python floats: clamping needs no device read
_TABLES: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The (grid, ratio) lookup tables on ``device``, copied there once."""
    if device not in _TABLES:
        _TABLES[device] = (_GRID.to(device), _RATIO.to(device))
    return _TABLES[device]


def invert_moment_ratio(r: torch.Tensor, nearest: bool = False) -> torch.Tensor:
    """Shape alpha with r(alpha) = r on the grid, differentiable a.e.

    ``nearest=False``: linear interpolation between grid points (value and gradient).
    ``nearest=True``: the value is the nearest grid point (ties -> the smaller alpha, as an argmin),
    the gradient that of the linear interpolation (straight-through).
    """
    grid, ratio = _tables(r.device)
    r64 = r.double().clamp(*_RATIO_RANGE)
    idx = torch.searchsorted(ratio, r64.detach()).clamp(1, len(ratio) - 1)
    r0, r1 = ratio[idx - 1], ratio[idx]
    g0, g1 = grid[idx - 1], grid[idx]
    w = (r64 - r0) / (r1 - r0)
    lin = g0 + w * (g1 - g0)
    if nearest:
        near = torch.where((r64 - r0).abs() <= (r1 - r64).abs(), g0, g1)
        lin = lin + (near - lin).detach()
    return lin.to(r.dtype)


def aggd_fit(x: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, ...]:
    """Fit an asymmetric generalised Gaussian over the last dim of ``x`` (..., n).

    Returns ``(alpha, beta_left, beta_right, mean)``, each of shape ``x.shape[:-1]``.
    """
    neg, pos = (x < 0).to(x.dtype), (x > 0).to(x.dtype)
    sq = x * x
    left_std = torch.sqrt((sq * neg).sum(-1) / neg.sum(-1).clamp_min(1) + eps)
    right_std = torch.sqrt((sq * pos).sum(-1) / pos.sum(-1).clamp_min(1) + eps)
    gamma_hat = left_std / right_std
    r_hat = x.abs().mean(-1) ** 2 / (sq.mean(-1) + eps)
    r_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
    alpha = invert_moment_ratio(r_norm, nearest=True)
    scale = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    beta_l, beta_r = left_std * scale, right_std * scale
    mean = (beta_r - beta_l) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
    return alpha, beta_l, beta_r, mean


@lru_cache(maxsize=8)
def _gauss_window(device: str, dtype: torch.dtype, float32_weights: bool = False) -> torch.Tensor:
    """7x7 Gaussian window (sigma 7/6) normalised in float64; ``float32_weights`` rounds each weight
    to float32 (the reference toolbox's NIQE window, summing to 1 + 1.1e-8) before the cast to ``dtype``."""
    ax = torch.arange(7, dtype=torch.float64) - 3
    g = torch.exp(-(ax ** 2) / (2 * (7 / 6) ** 2))
    w = torch.outer(g, g)
    w = w / w.sum()
    if float32_weights:
        w = w.float()
    return w.to(device=device, dtype=dtype).view(1, 1, 7, 7)


def mscn(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MSCN coefficients and local sigma of luminance ``y`` (N, 1, H, W) in [0, 255] (float32-rounded window)."""
    w = _gauss_window(str(y.device), y.dtype, float32_weights=True)
    mu = F.conv2d(F.pad(y, (3, 3, 3, 3), mode="replicate"), w)
    var = F.conv2d(F.pad(y * y, (3, 3, 3, 3), mode="replicate"), w) - mu * mu
    sigma = torch.sqrt(var.abs() + 1e-8)
    return (y - mu) / (sigma + 1), sigma


def _patches(t: torch.Tensor, p: int) -> torch.Tensor:
    """(N, 1, H, W) with H, W multiples of p -> (N, P, p, p), row-major patch order."""
    n, _, h, w = t.shape
    return t.reshape(n, h // p, p, w // p, p).permute(0, 1, 3, 2, 4).reshape(n, -1, p, p)


def _scale_features(y: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch features (N, P, 18) and per-patch sharpness (N, P) at one scale."""
    coef, sigma = mscn(y)
    cp = _patches(coef, p)
    sharp = _patches(sigma, p).mean(dim=(-1, -2))
    flat = cp.flatten(-2)
    a, bl, br, _ = aggd_fit(flat)
    feats = [a, (bl + br) / 2]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        shifted = torch.roll(cp, shifts=(dy, dx), dims=(-2, -1))
        a, bl, br, m = aggd_fit((cp * shifted).flatten(-2))
        feats += [a, m, bl, br]
    return torch.stack(feats, dim=-1), sharp


def _downscale_half(y: torch.Tensor) -> torch.Tensor:
    return bicubic_resize(y, scale=0.5)  # MATLAB-compatible imresize(0.5)


#: MATLAB ``rgb2gray`` weights: first row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703])
RGB2GRAY = tuple(float(v) for v in np.linalg.inv([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647],
                                                  [1.0, -1.106, 1.703]])[0])


def luminance(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """RGB (N, 3, H, W) in [0, 1] -> luminance (N, 1, H, W) in [0, 255] (exact rgb2gray weights).

    ``quantize`` rounds to integer grey levels like MATLAB's ``rgb2gray`` on uint8 images (the
    published parameters were fitted that way); the rounding passes gradients straight through.
    """
    w = torch.tensor(RGB2GRAY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (x * w).sum(1, keepdim=True) * 255.0
    return y + (y.round() - y).detach() if quantize else y


def niqe_features(x: torch.Tensor, patch: int = PATCH, quantize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch features (N, P, 36) and scale-1 sharpness (N, P) of RGB images (N, 3, H, W) in [0, 1].

    Frames are cropped (top-left) to multiples of ``patch``; needs H, W >= ``patch``.
    """
    n, _, h, w = x.shape
    if min(h, w) < patch or patch % 2:
        raise ValueError(f"niqe: frames must be at least {patch}x{patch} (even patch), got {h}x{w}")
    y = luminance(x.double(), quantize)[..., : h // patch * patch, : w // patch * patch]
    f1, sharp = _scale_features(y, patch)
    f2, _ = _scale_features(_downscale_half(y), patch // 2)
    return torch.cat([f1, f2], dim=-1), sharp


def niqe_distance(feats: torch.Tensor, mu_p: torch.Tensor, cov_p: torch.Tensor) -> torch.Tensor:
    """NIQE score per image from patch features (N, P, 36) and a pristine MVG."""
    mu = feats.mean(dim=1)
    d = feats - mu.unsqueeze(1)
    p = feats.shape[1]
    cov = d.transpose(1, 2) @ d / (p - 1) if p > 1 else torch.zeros_like(cov_p).expand(feats.shape[0], -1, -1)
    diff = (mu_p.to(feats) - mu).unsqueeze(-1)
    inv = torch.linalg.pinv((cov_p.to(feats) + cov) / 2, hermitian=True)
    q = (diff.transpose(1, 2) @ inv @ diff).reshape(-1)
    return torch.sqrt(q.clamp_min(1e-12))


def fit_pristine(frames: torch.Tensor, patch: int = PATCH, threshold: float = SHARPNESS_THRESHOLD,
                 batch: int = 8, progress: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Fit the pristine MVG (mu (36,), cov (36, 36)) on the sharp patches of clean frames (N, 3, H, W)."""
    rows = []
    it = range(0, frames.shape[0], batch)
    if progress:
        it = progress_bar(it, desc="niqe pristine fit", leave=False)
    with torch.no_grad():
        for i in it:
            f, sharp = niqe_features(frames[i: i + batch].float(), patch)
            keep = sharp > threshold * sharp.amax(dim=1, keepdim=True)
            rows.append(f[keep])
    feats = torch.cat(rows).double().numpy()
    feats = feats[np.isfinite(feats).all(axis=1)]
    return feats.mean(0), np.cov(feats, rowvar=False), feats.shape[0]


def _pristine_source() -> tuple[torch.Tensor, str]:
    """The embedded clean training frames and a label naming them (part of the cache key)."""
    frames = pristine_frames("train")
    return frames, f"nriqa.data.pristine_frames('train') {tuple(frames.shape)}"


N_FEATURES = 36


def _read_kit_params(path: Path) -> dict | None:
    """The cached fit at ``path``, or None (with a warning naming the file) when it is unreadable:
    truncated, not an ``.npz``, missing keys, wrong shapes or non-finite values. The caller refits."""
    try:
        with open(path, "rb") as fh:  # our own handle: np.load leaks its own when the zip is bad
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with z:
                mu, cov = np.asarray(z["mu"], dtype=np.float64), np.asarray(z["cov"], dtype=np.float64)
                out = {"mu": mu, "cov": cov, "patches": int(z["patches"]), "source": str(z["source"])}
    except Exception as err:  # np.load raises BadZipFile, EOFError, OSError, ValueError, KeyError ...
        why = brief_error(err)
    else:
        if mu.shape != (N_FEATURES,) or cov.shape != (N_FEATURES, N_FEATURES):
            why = f"mu {mu.shape} / cov {cov.shape}, expected ({N_FEATURES},) / ({N_FEATURES}, {N_FEATURES})"
        elif not (np.isfinite(mu).all() and np.isfinite(cov).all()):
            why = "non-finite values"
        else:
            return out
    warnings.warn(f"niqe: cached pristine fit {path} is unreadable ({why}); refitting it and "
                  "replacing the file", stacklevel=3)
    return None


def kit_params(refit: bool = False, progress: bool = False, patch: int = KIT_PATCH) -> dict:
    """The kit-fitted pristine model ``{"mu", "cov", "patches", "source", "patch"}``, cached atomically.

    A cached file that cannot be read back (truncated, garbage, wrong keys or shapes) is refitted
    and replaced, with a warning naming it; ``refit=True`` refits regardless.
    """
    frames, source = _pristine_source()
    stamp = f"{_FIT_VERSION}|{patch}|{source}|{float(frames.double().sum()):.6f}"
    key = hashlib.sha1(stamp.encode()).hexdigest()[:12]
    path = cache_dir() / "niqe" / f"kit_params_{key}.npz"
    if path.exists() and not refit:
        cached = _read_kit_params(path)
        if cached is not None:
            return {**cached, "patch": patch}
    mu, cov, n = fit_pristine(frames, patch=patch, progress=progress)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, mu=mu, cov=cov, patches=n, source=source)
    return {"mu": mu, "cov": cov, "patches": n, "source": source, "patch": patch}


#: the published pristine model, shipped in the iqa-torch wheel (never downloaded at run time)
PRISTINE_FILE = WeightFile(
    "niqe_pris_params.npz", 11850, "pip install iqa-torch==1.2.1",
    "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
    subdir="iqa/niqe", root="package:iqa-torch",
)


def published_params() -> dict:
    """The published pristine model ``{"mu" (36,), "cov" (36, 36), "source", "patch"}`` (96 px patches)."""
    path = verified_path(PRISTINE_FILE)
    with np.load(path, allow_pickle=False) as z:
        mu = np.asarray(z["mu_pris_param"], dtype=np.float64).reshape(-1)
        cov = np.asarray(z["cov_pris_param"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected mu (36,) and cov (36, 36), got {mu.shape} and {cov.shape}")
    return {"mu": mu, "cov": cov, "source": str(path), "patch": PATCH}


class NIQE(nn.Module):
    """``forward(x (N,3,H,W) in [0,1]) -> (N,)`` NIQE; lower is better; differentiable."""

    def __init__(self, mu: np.ndarray, cov: np.ndarray, patch: int = PATCH):
        super().__init__()
        self.patch = patch
        self.register_buffer("mu", torch.as_tensor(mu, dtype=torch.float64).reshape(-1))
        self.register_buffer("cov", torch.as_tensor(cov, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, _ = niqe_features(x, self.patch)
        return niqe_distance(feats, self.mu, self.cov).float()


def _from_params(p: dict, device) -> NIQE:
    return NIQE(p["mu"], p["cov"], patch=p["patch"]).to(device)


def _register() -> None:
    common = dict(mode="NR", higher_better=False, score_range=None, loss_range=(0, 10), differentiable=True,
                  video=False, backend="nriqa")
    register(Card(name="niqe", min_size=PATCH, weights=(PRISTINE_FILE,),
                  description="NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013) with the published pristine "
                              "model (MVG fitted by the authors on 125 pristine natural images, no opinion "
                              "scores; MATLAB release's parameters) from the iqa-torch 1.2.1 wheel, "
                              "iqa/niqe/niqe_pris_params.npz; 96px patches; loss s/10",
                  training_data=("niqe-pristine",), **common),
             lambda device="cpu", **kw: _from_params(published_params(), device))
    register(Card(name="niqe-kit", min_size=KIT_PATCH, weights=(),
                  description=f"NIQE with a pristine MVG fitted here on the embedded clean training frames with "
                              f"{KIT_PATCH}px patches (cached; the frames of both halves' sources, training data "
                              f"embedded-a and embedded-b); not comparable to published NIQE; loss s/10",
                  training_data=("embedded-a", "embedded-b"), **common),
             lambda device="cpu", **kw: _from_params(kit_params(), device))


_register()
