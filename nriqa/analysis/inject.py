"""Artifact injectors: put a known artifact into clean frames, at a chosen strength.

Each injector is a pure function ``(x, strength, *, seed=0) -> y``: ``x`` is a clip ``(T, 3, H, W)``
(or frames ``(N, 3, H, W)``), float RGB in ``[0, 1]``; ``strength`` in ``[0, 1]`` (0 returns ``x``
unchanged, 1 is a strong, clearly visible artifact); ``y`` has ``x``'s shape, clamped to ``[0, 1]``.
Random placements come from ``seed`` only (a private generator), so a call is repeatable.

- :func:`coloured_dots` -- isolated green / magenta pixels, 1.5 % of the pixels, amplitude ``0.6 s``.
- :func:`dotted_edges` -- green dots on the frame's own edges (Sobel luma > 0.15), one every 4 px
  along horizontal / vertical edges (a quincunx lattice), amplitude ``0.5 s``.
- :func:`eyes` -- small grey "eyes": a dark disc (radius 1.5 px, ``-0.5 s``) in a bright rim
  (radius 2-3.5 px, ``+0.35 s``), centred 6 px beside an edge of the first frame, about one per
  16 x 16 px cell, at the same places in every frame.
- :func:`ringing` -- luma oscillations across edges (stripes parallel to them, ~5.5 px period):
  a 1-D band-pass along the local edge normal, added ``6 s`` times within 8 px of edges.
- :func:`blur` -- Gaussian blur, ``sigma = 2.5 s`` px.
- :func:`flicker` -- temporal flicker: frame ``t`` brightened by ``+0.08 s`` on even ``t`` and
  darkened on odd ``t`` (no spatial change within a frame).
- :func:`periodic` -- a fixed fine grid over the whole frame: one random 4 x 4 px tile of RGB
  offsets (luma and chroma, RMS ``0.04 s``) repeated over every frame.

:data:`INJECTORS` maps the kind names to the functions; :func:`confusion_table` scores every
artifact detector (:data:`nriqa.analysis.artifacts.MEASURES`) on every injected kind.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from . import artifacts as A

Tensor = torch.Tensor


def _check(x: Tensor, strength: float) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be a (T,3,H,W) RGB tensor, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must lie in [0, 1], got {strength!r}")
    return x.float()


def _grid(x: Tensor) -> tuple[Tensor, Tensor]:
    h, w = x.shape[-2:]
    return torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")


def _edges(x: Tensor, threshold: float = 0.15) -> Tensor:
    """``(T,1,H,W)`` float mask of each frame's own edges (Sobel luma magnitude > threshold)."""
    return A.edge_mask(x, threshold=threshold, dilate=0).float()


def coloured_dots(x: Tensor, strength: float, *, seed: int = 0, density: float = 0.015) -> Tensor:
    """Isolated green / magenta pixels (same places in every frame), amplitude ``0.6 * strength``."""
    x = _check(x, strength)
    g = torch.Generator().manual_seed(seed)
    shape = (1, 1, *x.shape[-2:])
    where = (torch.rand(shape, generator=g) < density).float()
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
    green = torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1)
    return (x + (0.6 * strength) * (where * sign * green).to(x)).clamp(0, 1)


def dotted_edges(x: Tensor, strength: float, *, seed: int = 0) -> Tensor:
    """Green dots along each frame's edges, one every 4 px along horizontal and vertical edges."""
    x = _check(x, strength)
    yy, xx = _grid(x)
    lattice = ((yy % 2 == 0) & (xx % 2 == 0) & ((yy // 2 + xx // 2) % 2 == 0)).to(x)
    green = torch.tensor([-0.5, 1.0, -0.5], device=x.device).view(1, 3, 1, 1)
    return (x + (0.5 * strength) * _edges(x) * lattice * green).clamp(0, 1)


def _eye_kernel(dtype, device) -> Tensor:
    t = torch.arange(-4, 5, dtype=dtype, device=device)
    r = torch.sqrt(t.view(-1, 1) ** 2 + t.view(1, -1) ** 2)
    return torch.where(r <= 1.5, -0.5, torch.where(r <= 3.5, 0.35, 0.0)).to(dtype)


def eyes(x: Tensor, strength: float, *, seed: int = 0, cell: int = 16, offset: int = 6) -> Tensor:
    """Grey "eyes" (dark disc, bright rim) ``offset`` px beside the first frame's edges, at most one
    per ``cell``-px cell, at the same places in every frame (positions from ``seed``): a spatial
    artifact only -- eyes that jumped from frame to frame would also be flicker."""
    x = _check(x, strength)
    e = _edges(x[:1])
    band = (F.max_pool2d(e, 2 * offset + 1, 1, offset) > 0) & ~(F.max_pool2d(e, 2 * offset - 1, 1, offset - 1) > 0)
    g = torch.Generator().manual_seed(seed)
    score = torch.rand(band.shape, generator=g).to(x.device) * band  # a random band pixel per cell
    pooled, idx = F.max_pool2d(score, cell, cell, return_indices=True)
    centres = torch.zeros_like(score).flatten(2)
    centres.scatter_(2, idx.flatten(2), (pooled > 0).to(x).flatten(2))
    centres = centres.view_as(score)
    k = _eye_kernel(x.dtype, x.device)
    delta = F.conv2d(centres, k.view(1, 1, *k.shape), padding=k.shape[-1] // 2)
    return (x + strength * delta).clamp(0, 1)


def ringing(x: Tensor, strength: float, *, seed: int = 0, freq: float = 0.18, spread: float = 4.0,
            reach: int = 8) -> Tensor:
    """Luma ringing beside edges: oscillations *across* each edge, i.e. stripes parallel to it.

    A 1-D band-pass along the local edge normal (each frame's own luma gradient direction, smoothed
    at 2 px): kernel ``cos(2 pi freq k) exp(-k^2 / 2 spread^2)``, zero-mean, unit gain at ``freq``
    (~5.5 px period), applied to the luma and added ``6 s`` times (same change to R, G and B), within
    ``reach`` px of each frame's edges (a soft mask).  Unlike an isotropic band-pass it does not turn
    texture into blobs: the added pattern is constant along the edge."""
    x = _check(x, strength)
    y = A.ycbcr(x)[:, :1]
    nx, ny = A._normal(x, 2.0)
    radius = int(round(2.5 * spread))
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    env = torch.exp(-0.5 * (k / spread) ** 2)
    h = torch.cos(2 * torch.pi * freq * k) * env
    h = h - env * (h.sum() / env.sum())  # zero-mean: a flat region gets no ringing
    h = h / (h * torch.cos(2 * torch.pi * freq * k)).sum()  # unit gain at freq
    extra = sum(float(h[i]) * A._warp(y, torch.cat([nx, ny], 1) * float(k[i])) for i in range(len(k)))
    near = A._gauss(F.max_pool2d(_edges(x), 2 * reach + 1, 1, reach), 2.0)
    return (x + 6.0 * strength * extra * near).clamp(0, 1)


def blur(x: Tensor, strength: float, *, seed: int = 0) -> Tensor:
    """Gaussian blur with ``sigma = 2.5 * strength`` px (strength 0: unchanged)."""
    x = _check(x, strength)
    return x.clone() if strength <= 0 else A._gauss(x, 2.5 * float(strength)).clamp(0, 1)


def periodic(x: Tensor, strength: float, *, seed: int = 0, period: int = 4, rms: float = 0.04) -> Tensor:
    """A fixed fine grid over the whole frame, like a fine-tuned generator's dot / stripe texture.

    One random ``period x period`` tile of RGB offsets (zero mean per channel, luma and chroma, from
    ``seed``), scaled to an RMS of ``rms * strength`` and repeated over every frame at the same place
    (``period`` 4 holds periods 4 and 2 along each axis; the demo's NR-IQA fine-tunes add such
    4-px tiles of about 0.01-0.02 per frequency in Y, Cb and Cr)."""
    x = _check(x, strength)
    if period < 2:
        raise ValueError(f"period must be >= 2 px, got {period}")
    g = torch.Generator().manual_seed(seed)
    tile = torch.randn((3, period, period), generator=g)
    tile = tile - tile.mean((-2, -1), keepdim=True)
    tile = tile * (rms * float(strength) / tile.pow(2).mean().sqrt().clamp_min(1e-8))
    h, w = x.shape[-2:]
    reps = (1, -(-h // period), -(-w // period))
    pattern = tile.repeat(*reps)[:, :h, :w].to(x)
    return (x + pattern).clamp(0, 1)


def flicker(x: Tensor, strength: float, *, seed: int = 0) -> Tensor:
    """Brightness flicker: ``+0.08 s`` on even frames, ``-0.08 s`` on odd frames."""
    x = _check(x, strength)
    sign = torch.tensor([1.0 if t % 2 == 0 else -1.0 for t in range(x.shape[0])], device=x.device)
    return (x + 0.08 * strength * sign.view(-1, 1, 1, 1)).clamp(0, 1)


INJECTORS: dict[str, Callable[..., Tensor]] = {
    "coloured_dots": coloured_dots,
    "dotted_edges": dotted_edges,
    "eyes": eyes,
    "ringing": ringing,
    "blur": blur,
    "flicker": flicker,
    "periodic": periodic,
}
"""Artifact kind -> injector."""

DETECTS: dict[str, str] = {"chroma_noise": "coloured_dots", "edge_artifacts": "dotted_edges",
                           "eyes": "eyes", "ringing": "ringing", "blur": "blur", "flicker": "flicker",
                           "periodic_pattern": "periodic"}
"""Detector (:data:`nriqa.analysis.artifacts.MEASURES`) -> the injected kind it is meant to find."""


def inject(x: Tensor, kind: str, strength: float, *, seed: int = 0) -> Tensor:
    """``INJECTORS[kind](x, strength, seed=seed)`` with a clear error for an unknown kind."""
    if kind not in INJECTORS:
        raise ValueError(f"unknown artifact kind {kind!r}; known: {list(INJECTORS)}")
    return INJECTORS[kind](x, strength, seed=seed)


def confusion_table(clips: Sequence[Tensor] | Mapping[str, Tensor], *, strength: float = 0.5,
                    detectors: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """Mean detector score (rows) on clean clips and on each injected kind (columns) at ``strength``.

    ``clips``: clean clips ``(T,3,H,W)`` in ``[0,1]``, T >= 2 (``flicker`` needs pairs). Each cell is
    the mean over clips of the detector's mean score on ``inject(clip, kind, strength)`` against the
    clean clip; column ``clean`` scores the clean clip against itself (0 for every detector).
    Higher = more of the artifact; a good detector is high on its own kind (:data:`DETECTS`) and
    near 0 elsewhere.
    """
    clips = list(clips.values()) if isinstance(clips, Mapping) else list(clips)
    if not clips:
        raise ValueError("clips is empty: nothing to inject into")
    detectors = list(detectors or A.MEASURES)
    kinds = list(kinds or INJECTORS)
    cols: dict[str, dict[str, float]] = {}
    for kind in ["clean", *kinds]:
        sums = dict.fromkeys(detectors, 0.0)
        for clip in clips:
            dirty = clip if kind == "clean" else inject(clip, kind, strength, seed=seed)
            for d, v in A.measure_artifacts(dirty, clip, detectors).items():
                sums[d] += float(v.float().mean()) / len(clips)
        cols[kind] = sums
    table = pd.DataFrame(cols).loc[detectors]
    table.index.name = "detector"
    table.columns.name = f"injected (strength {strength:g})"
    return table
