"""What each loss wants in pixels: optimize an image's pixels directly against one loss term.

The idea of Ding et al. 2021 ("Comparison of full-reference image quality models for optimization
of image processing systems"): no generator in between, so what the optimized image turns into is
what the loss itself rewards.  Start from a held-out frame (a bicubic upscale, a baseline model's
output), run Adam on the pixels (clamped to ``[0, 1]`` after every step) and look at the result
with the artifact detectors (:mod:`nriqa.analysis.artifacts`).

Variants (``with_``): ``"alone"`` -- the term only; ``"charbonnier"`` -- plus ``anchor_weight x``
Charbonnier to the *start* image (it may not wander far); ``"st-lpips-alex"`` (any FR measure name)
-- plus that measure to the start image.  Full-reference terms (``gmsd``, ``st-lpips-alex``, ...)
compare with the ground truth ``gt``, as in fine-tuning.  Every term is the lower-is-better
:class:`nriqa.losses.QualityLoss` of its measure.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping, NamedTuple, Sequence

import pandas as pd
import torch

from nriqa.losses.pixel import Charbonnier
from nriqa.losses.quality_loss import QualityLoss

from . import artifacts as A

Tensor = torch.Tensor

#: the per-frame detectors shown for pixel-optimized images (flicker needs a clip)
FRAME_DETECTORS = ("chroma_noise", "edge_artifacts", "eyes", "ringing", "blur", "periodic_pattern")


class PixelResult(NamedTuple):
    image: Tensor          # (N,3,H,W) in [0,1], detached
    losses: list[float]    # the objective at every step (before the step)
    seconds: float


def _check(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be (N,3,H,W) RGB frames, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(f"{name} must be finite and in [0, 1]")
    return x.detach().float()


def optimize_pixels(start: Tensor, loss: Callable[[Tensor], Tensor], *, steps: int = 200,
                    lr: float = 0.01) -> PixelResult:
    """Adam on the pixels of ``start`` ``(N,3,H,W)`` in ``[0,1]`` against the scalar ``loss(x)``
    (lower is better); pixels are clamped to ``[0, 1]`` after each step. ``steps = 0`` returns
    ``start``."""
    x0 = _check(start, "start")
    if steps < 0 or lr <= 0:
        raise ValueError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    history: list[float] = []
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        value = loss(x)
        value.backward()
        history.append(float(value.detach()))
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return PixelResult(x.detach(), history, time.perf_counter() - t0)


def pixel_loss(term: str, *, gt: Tensor, start: Tensor, with_: str = "alone",
               anchor_weight: float = 1.0, cache: dict | None = None) -> Callable[[Tensor], Tensor]:
    """The objective ``x -> term(x[, gt]) (+ anchor_weight * anchor(x, start))`` (see the module
    docstring for ``with_``). ``cache``: a dict reused across calls so every measure network is
    built once."""
    cache = {} if cache is None else cache

    def measure(name: str) -> QualityLoss:
        if name not in cache:
            cache[name] = QualityLoss(name, upsample_small=True, validate=False)
        return cache[name]

    main = measure(term)
    ref = gt if main.full_reference else None

    def score(x: Tensor) -> Tensor:
        if main.card.video:   # a video measure (cvvdp) sees each image as a one-frame clip (N, 1, 3, H, W)
            return main(x[:, None], None if ref is None else ref[:, None])
        return main(x, ref)

    if with_ == "alone":
        return score
    if with_ == "charbonnier":
        anchor = cache.setdefault("charbonnier", Charbonnier(validate=False))
    else:
        anchor = measure(with_)
        if not anchor.full_reference:
            raise ValueError(f"with_={with_!r}: the anchor must be 'alone', 'charbonnier' or a "
                             f"full-reference measure")
    return lambda x: score(x) + anchor_weight * anchor(x, start)


def artifact_scores(images: Mapping[str, Tensor], gt: Tensor,
                    detectors: Sequence[str] = FRAME_DETECTORS) -> pd.DataFrame:
    """Rows = image labels, columns = ``detectors``: mean score of each image against ``gt``."""
    rows = {k: {d: float(v.mean()) for d, v in A.measure_artifacts(img, gt, detectors).items()}
            for k, img in images.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(detectors)]


class Gallery(NamedTuple):
    images: dict[tuple[str, str, str], Tensor]   # (start, with_, term) -> (N,3,H,W); term "start" = start
    scores: pd.DataFrame                           # index (start, with, term), columns FRAME_DETECTORS
    seconds: float                                 # wall time of the whole gallery


def pixel_gallery(starts: Mapping[str, Tensor], gt: Tensor, terms: Sequence[str], *,
                  variants: Sequence[str] = ("alone",), steps: int = 200, lr: float = 0.01,
                  anchor_weight: float = 1.0) -> Gallery:
    """Every ``term`` x ``variant`` optimized from every start image (``{label: (N,3,H,W)}``, the
    same shape as ``gt``), with the artifact scores of starts and results against ``gt``."""
    gt = _check(gt, "gt")
    if not starts or not terms or not variants:
        raise ValueError("starts, terms and variants must be non-empty")
    t0 = time.perf_counter()
    cache: dict = {}
    images: dict[tuple[str, str, str], Tensor] = {}
    for label, s in starts.items():
        s = _check(s, f"starts[{label!r}]")
        if s.shape != gt.shape:
            raise ValueError(f"starts[{label!r}] has shape {tuple(s.shape)}, gt {tuple(gt.shape)}")
        for v in variants:
            images[(label, v, "start")] = s
            for term in terms:
                fn = pixel_loss(term, gt=gt, start=s, with_=v, anchor_weight=anchor_weight, cache=cache)
                images[(label, v, term)] = optimize_pixels(s, fn, steps=steps, lr=lr).image
    scores = artifact_scores({k: img for k, img in images.items()}, gt)
    scores.index = pd.MultiIndex.from_tuples(scores.index, names=["start", "with", "term"])
    return Gallery(images, scores, time.perf_counter() - t0)


def change_caption(before: Mapping[str, float], after: Mapping[str, float], *,
                   tie: float = 0.02, short: Mapping[str, str] | None = None) -> str:
    """One line per detector: ``name score arrow change``; arrow up = more artifact than ``before``,
    down = less, ``=`` within ``tie`` (a tie is written as such). Scores are the detectors' own
    units (log2 energy ratio against the ground truth)."""
    lines = []
    for d, a in after.items():
        b = float(before.get(d, 0.0))
        delta = float(a) - b
        arrow = "=" if abs(delta) <= tie else ("\u2191" if delta > 0 else "\u2193")
        name = (short or {}).get(d, d)
        lines.append(f"{name} {a:.2f} {arrow}" + ("" if arrow == "=" else f"{delta:+.2f}"))
    return "\n".join(lines)


SHORT_NAMES = {"chroma_noise": "dots", "edge_artifacts": "edges", "eyes": "eyes", "ringing": "ring",
               "blur": "blur", "flicker": "flicker", "periodic_pattern": "grid"}
"""Short detector names for captions under small tiles."""
