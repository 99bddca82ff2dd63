"""Synthetic distortions for the embedded KADID-style IQA set.

``distort(img, kind, level)`` applies one of :data:`DISTORTIONS` to one image at a level
1 (mild) .. 5 (strong). Everything is deterministic: the same image, kind and level give
the same output bit for bit (random fields use a fixed seed per kind and level).

The types are chosen for what super-resolution and compression produce: blur (Gaussian,
motion, bicubic down-up), noise (white, chroma / coloured dots), JPEG blocking, colour
saturation and contrast shifts, ringing / over-sharpening and pixelation. The level
parameters grow strictly, so every type degrades further as the level rises (the
monotonicity that RankIQA-style ranking labels rely on; tests check it with PSNR).

Images are ``(3, H, W)`` float32 RGB tensors in ``[0, 1]``; outputs have the same shape,
dtype and range.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

LEVELS = (1, 2, 3, 4, 5)

# Parameters per level (index 0 = level 1). Strictly increasing severity.
_PARAMS: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (0.6, 1.0, 1.6, 2.4, 3.5),        # sigma in px
    "motion_blur": (3, 5, 7, 11, 15),                   # kernel length in px (diagonal)
    "bicubic_downup": (1.5, 2.0, 3.0, 4.0, 6.0),        # down-scale factor
    "white_noise": (0.02, 0.04, 0.07, 0.11, 0.16),      # RGB noise std
    "chroma_noise": (0.03, 0.06, 0.10, 0.15, 0.22),     # std of colour-difference noise
    "colored_dots": (0.005, 0.01, 0.02, 0.04, 0.07),    # fraction of pixels set to a saturated colour
    "jpeg": (60, 35, 20, 10, 5),                        # cv2 JPEG quality (lower = worse)
    "saturation": (0.75, 0.55, 0.35, 0.18, 0.0),        # chroma gain (1 = unchanged)
    "contrast": (0.8, 0.65, 0.5, 0.35, 0.22),           # contrast gain around mean luma
    "oversharpen": (0.8, 1.6, 2.8, 4.5, 7.0),           # unsharp-mask amount (ringing halos)
    "pixelate": (2, 3, 4, 6, 8),                        # block size in px (nearest down-up)
}

DISTORTIONS: list[str] = list(_PARAMS)


def _seed(kind: str, level: int) -> int:
    return 1000 * (DISTORTIONS.index(kind) + 1) + level


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    k = int(2 * np.ceil(3 * sigma) + 1)
    return cv2.GaussianBlur(x, (k, k), sigma, borderType=cv2.BORDER_REFLECT)


def _motion_blur(x: np.ndarray, length: float) -> np.ndarray:
    n = int(length)
    kernel = np.eye(n, dtype=np.float32) / n       # 45-degree line
    return cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _bicubic_downup(x: np.ndarray, factor: float) -> np.ndarray:
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _pixelate(x: np.ndarray, block: float) -> np.ndarray:
    h, w = x.shape[:2]
    b = int(block)
    small = cv2.resize(x, (max(1, -(-w // b)), max(1, -(-h // b))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _jpeg(x: np.ndarray, quality: float) -> np.ndarray:
    bgr = np.ascontiguousarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)[..., ::-1])
    ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed to JPEG-encode the image")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def _saturation(x: np.ndarray, gain: float) -> np.ndarray:
    y = _luma(x)[..., None]
    return y + gain * (x - y)


def _contrast(x: np.ndarray, gain: float) -> np.ndarray:
    m = float(_luma(x).mean())
    return m + gain * (x - m)


def _oversharpen(x: np.ndarray, amount: float) -> np.ndarray:
    return x + amount * (x - _gaussian_blur(x, 1.5))


def _white_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, std, size=x.shape).astype(np.float32)


def _chroma_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    # Noise in the two colour-difference directions only (luma kept), blurred slightly so it
    # forms coloured blotches like demosaicing / chroma-subsampling artifacts.
    h, w = x.shape[:2]
    cb = _gaussian_blur(rng.normal(0.0, std, (h, w)).astype(np.float32), 0.7)
    cr = _gaussian_blur(rng.normal(0.0, std, (h, w)).astype(np.float32), 0.7)
    # directions orthogonal to the luma weights
    d1 = np.array([-0.169, -0.331, 0.5], dtype=np.float32) / 0.5
    d2 = np.array([0.5, -0.419, -0.081], dtype=np.float32) / 0.5
    return x + cb[..., None] * d1 + cr[..., None] * d2


def _colored_dots(x: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    u = rng.random((h, w))
    palette = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]], np.float32)
    colours = palette[rng.integers(0, len(palette), (h, w))]
    out = x.copy()
    mask = u < frac                     # nested masks: a dot at level k is also a dot at k+1
    out[mask] = colours[mask]
    return out


def distort(img: torch.Tensor, kind: str, level: int) -> torch.Tensor:
    """Apply distortion ``kind`` at ``level`` (1..5) to ``img`` (3, H, W) float in [0, 1].

    Returns a new ``(3, H, W)`` float32 tensor in ``[0, 1]`` on the input's device.
    Deterministic. Raises ``ValueError`` for an unknown kind, a level outside 1..5 or a
    wrongly shaped image.
    """
    if kind not in _PARAMS:
        raise ValueError(f"distortion kind {kind!r} is unknown; choose one of {DISTORTIONS}")
    if int(level) != level or level not in LEVELS:
        raise ValueError(f"distortion level must be an integer in 1..5, got {level!r}")
    if not isinstance(img, torch.Tensor) or img.ndim != 3 or img.shape[0] != 3:
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise ValueError(f"img must be a (3, H, W) tensor, got {shape}")
    if min(img.shape[1:]) < 8:
        raise ValueError(f"img must be at least 8x8 pixels, got {tuple(img.shape[1:])}")
    p = _PARAMS[kind][int(level) - 1]
    x = img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy().copy()
    rng = np.random.default_rng(_seed(kind, int(level)))
    if kind == "gaussian_blur":
        y = _gaussian_blur(x, p)
    elif kind == "motion_blur":
        y = _motion_blur(x, p)
    elif kind == "bicubic_downup":
        y = _bicubic_downup(x, p)
    elif kind == "white_noise":
        y = _white_noise(x, p, rng)
    elif kind == "chroma_noise":
        y = _chroma_noise(x, p, rng)
    elif kind == "colored_dots":
        y = _colored_dots(x, p, np.random.default_rng(_seed(kind, 1)))  # same field, nested masks
    elif kind == "jpeg":
        y = _jpeg(x, p)
    elif kind == "saturation":
        y = _saturation(x, p)
    elif kind == "contrast":
        y = _contrast(x, p)
    elif kind == "oversharpen":
        y = _oversharpen(x, p)
    else:  # pixelate
        y = _pixelate(x, p)
    y = np.clip(y, 0.0, 1.0).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1).contiguous().to(img.device)
