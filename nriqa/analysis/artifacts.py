"""Artifact measures: find what naive optimization of a quality metric does to the frames.

Each measure compares a prediction with its ground truth and returns an :class:`ArtifactMap`
``(scores, maps)``: one score per frame (``(N,)``, ``0`` = no more of the artifact than the
ground truth, larger = worse) and a heat map per frame (``(N, H, W)``, same convention) that
shows *where* the artifact is.  Inputs are ``(N, 3, H, W)`` images or ``(B, T, 3, H, W)``
video (flattened to frames), float RGB in ``[0, 1]``; ``pred`` and ``gt`` share a shape.

- :func:`chroma_noise` -- colored dots: excess high-frequency Cb/Cr energy away from edges (after
  removing a frame-wide periodic pattern, :func:`periodic_pattern`'s).
- :func:`edge_artifacts` -- dotted edges: excess second-derivative energy *along* the ground
  truth's edges beyond that across them, luma and chroma, after removing what the prediction adds
  over the whole frame.
- :func:`eyes` -- small isolated dark blobs with a bright rim, added by the prediction (ring test
  on the luma difference).
- :func:`ringing` -- halos: excess second-derivative luma energy *across* edges beside them.
- :func:`blur` -- loss of high-frequency luma energy (spectral ratio above a cutoff frequency).
- :func:`periodic_pattern` -- a fine grid or stripes over the whole frame: energy of the residual's
  isolated high-frequency spectral peaks where the prediction adds power (a generator's dot texture).
- :func:`flicker` -- temporal instability of local brightness: warped consecutive-frame difference
  of the output's low-passed luma relative to that of the ground truth (optical flow from the
  ground truth, OpenCV Farneback; fine per-frame detail is left to the spatial detectors);
  :func:`flicker_excess` puts it on the scale of the others (0 = as stable as the ground truth).

:mod:`nriqa.analysis.inject` puts each artifact into clean frames; its ``confusion_table`` shows
which detector answers to which artifact.

:func:`top_crops` finds the windows where a measure is highest; :func:`nriqa.viz.plots.crop_grid` draws them.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor

_EPS = 1e-4  # energy floor: keeps log-ratios finite in flat regions (energies are on a [0,1]^2 scale)


class ArtifactMap(NamedTuple):
    """Per-frame scores ``(N,)`` and heat maps ``(N, H, W)``; 0 = like the ground truth."""

    scores: Tensor
    maps: Tensor


# ----------------------------------------------------------------------------- helpers
def _frames(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 5:
        x = x.flatten(0, 1)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be (N,3,H,W) or (B,T,3,H,W) RGB, got shape {tuple(x.shape)}")
    return x.float()


def _pair(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    p, g = _frames(pred, "pred"), _frames(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {tuple(p.shape)} and gt {tuple(g.shape)} must have the same shape")
    return p, g.to(p.device)


def _gauss(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with reflect padding."""
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_h = min(radius, x.shape[-2] - 1)
    pad_w = min(radius, x.shape[-1] - 1)
    if pad_h < radius or pad_w < radius:  # tiny images: fall back to replicate padding
        x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    else:
        x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ycbcr(x: Tensor) -> Tensor:
    """RGB ``(N,3,H,W)`` in [0,1] -> YCbCr (BT.601, full range, Cb/Cr centred on 0)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.564 * (b - y)
    cr = 0.713 * (r - y)
    return torch.cat([y, cb, cr], 1)


def _excess(e_pred: Tensor, e_gt: Tensor) -> Tensor:
    """Local excess energy as a clipped log2 ratio: 0 where pred has no more than gt, 1 = twice."""
    return torch.log2((e_pred + _EPS) / (e_gt + _EPS)).clamp_min(0)


# ----------------------------------------------------------------------------- measures
def _zone_mean(x: Tensor, zone: Tensor) -> Tensor:
    """Mean of ``x (N,1,H,W)`` over the float mask ``zone`` per frame ``(N,)`` (0 on an empty zone)."""
    return (x * zone).sum((1, 2, 3)) / zone.sum((1, 2, 3)).clamp_min(1)


@torch.no_grad()
def chroma_noise(pred: Tensor, gt: Tensor, *, sigma: float = 1.0, window: float = 1.5,
                 threshold: float = 0.15, away: int = 4) -> ArtifactMap:
    """Colored dots / chroma noise away from edges.

    High-pass Cb and Cr (``x - gauss(x, sigma)``), local energy ``gauss(hp_cb^2 + hp_cr^2,
    window)``; the map is the clipped log2 ratio of the prediction's energy to the ground
    truth's (0 = no excess, 1 = twice the energy) on pixels more than ``away`` px from the ground
    truth's edges (0 on and near edges: colour added *along* edges is :func:`edge_artifacts`'
    business); the score is its mean over those pixels.  A frame-wide periodic pattern (the
    residual's part found by :func:`periodic_pattern`) is removed from the prediction first: it is
    :func:`periodic_pattern`'s business.  A frame with less than 5 % of its pixels
    away from edges (dense texture, noise) is scored over all its pixels.
    """
    p, g = _pair(pred, gt)
    part, _ = _periodic_part(p, g, **_PERIODIC)

    def energy(c: Tensor) -> Tensor:
        hp = c - _gauss(c, sigma)
        return _gauss(hp.pow(2).sum(1, keepdim=True), window)

    zone = 1 - edge_mask(g, threshold=threshold, dilate=away).float()
    busy = zone.mean((1, 2, 3)) < 0.05
    zone[busy] = 1.0
    maps = _excess(energy(ycbcr(p)[:, 1:] - part[:, 1:]), energy(ycbcr(g)[:, 1:])) * zone
    return ArtifactMap(_zone_mean(maps, zone), maps[:, 0])


def edge_mask(gt: Tensor, *, threshold: float = 0.15, dilate: int = 1) -> Tensor:
    """Boolean ``(N,1,H,W)`` mask of the ground truth's edges (Sobel luma magnitude > threshold),
    dilated by ``dilate`` pixels."""
    g = _frames(gt, "gt")
    y = ycbcr(g)[:, :1]
    kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=y.dtype, device=y.device) / 4
    yp = F.pad(y, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(yp, kx.view(1, 1, 3, 3))
    gy = F.conv2d(yp, kx.t().reshape(1, 1, 3, 3))
    m = ((gx.pow(2) + gy.pow(2)).sqrt() > threshold).float()
    if dilate > 0:
        m = F.max_pool2d(m, 2 * dilate + 1, stride=1, padding=dilate)
    return m > 0


def _hessian(x: Tensor, sigma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Scale-normalised Hessian ``(xx, yy, xy)`` of each channel of ``x (N,C,H,W)`` at ``sigma``."""
    s = _gauss(x, sigma)
    s = F.pad(s, (1, 1, 1, 1), mode="replicate")
    c = s[..., 1:-1, 1:-1]
    xx = s[..., 1:-1, 2:] - 2 * c + s[..., 1:-1, :-2]
    yy = s[..., 2:, 1:-1] - 2 * c + s[..., :-2, 1:-1]
    xy = (s[..., 2:, 2:] - s[..., 2:, :-2] - s[..., :-2, 2:] + s[..., :-2, :-2]) / 4
    k = sigma ** 2
    return k * xx, k * yy, k * xy


def _normal(gt: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Unit gradient direction ``(nx, ny)`` of the ground truth's luma, smoothed at ``sigma``."""
    y = F.pad(_gauss(ycbcr(gt)[:, :1], sigma), (1, 1, 1, 1), mode="replicate")
    gx = (y[..., 1:-1, 2:] - y[..., 1:-1, :-2]) / 2
    gy = (y[..., 2:, 1:-1] - y[..., :-2, 1:-1]) / 2
    norm = (gx.pow(2) + gy.pow(2)).sqrt().clamp_min(1e-8)
    return gx / norm, gy / norm


def _directional(x: Tensor, ux: Tensor, uy: Tensor, sigma: float, weights: Tensor) -> Tensor:
    """Energy ``sum_c w_c (u^T H_c u)^2`` ``(N,1,H,W)`` of the second derivative along ``u``."""
    xx, yy, xy = _hessian(ycbcr(x), sigma)
    d2 = ux ** 2 * xx + uy ** 2 * yy + 2 * ux * uy * xy
    return (weights.view(1, -1, 1, 1) * d2.pow(2)).sum(1, keepdim=True)


@torch.no_grad()
def edge_artifacts(pred: Tensor, gt: Tensor, *, sigma: float = 0.8, window: float = 1.0,
                   threshold: float = 0.15, eps: float = 1e-5) -> ArtifactMap:
    """Dotted edges: periodic energy *along* the ground truth's edges, luma and chroma.

    At every pixel the edge tangent ``t`` and normal ``n`` come from the ground truth's luma
    gradient; the energy ``E_u = gauss(sum_c w_c (u^T H_c u)^2, window)`` of the second derivative
    along ``u`` (Hessian at ``sigma``, channels Y, Cb, Cr with weights 1, 2, 2) is ~0 along ``t`` on a
    clean straight edge, blurred or not, and large where dots or dashes sit on it (periods of ~2-8
    px).  Texture or noise spread over the whole frame is removed first: its energy, the frame's
    mean added energy ``mean(max(0, E_u,pred - E_u,gt))`` far from edges (> 4 px), is subtracted from
    ``E_u,pred`` everywhere.  Excess along ``u`` = clipped log2 ratio of what remains to ``E_u,gt``
    (``eps`` floor).  Map = excess along ``t`` minus excess along ``n``, clipped at 0, on the edge
    mask (:func:`edge_mask`, 1 px dilation): dots add structure along the edge, while sharpening or
    ringing scale the edge's own structure in both directions alike.  Score = mean map on the edge
    mask minus the mean excess along ``t`` far from edges, clipped at 0 (sparse dots everywhere are
    no edge artifact either).
    """
    p, g = _pair(pred, gt)
    nx, ny = _normal(g, sigma)
    w = torch.tensor([1.0, 2.0, 2.0], dtype=p.dtype, device=p.device)
    hp, hg = _hessian(ycbcr(p), sigma), _hessian(ycbcr(g), sigma)  # shared by both directions
    on_edge = edge_mask(g, threshold=threshold, dilate=1).float()
    flat = 1 - edge_mask(g, threshold=threshold, dilate=4).float()

    def excess(ux: Tensor, uy: Tensor) -> Tensor:
        def energy(h: tuple[Tensor, Tensor, Tensor]) -> Tensor:
            d2 = ux ** 2 * h[0] + uy ** 2 * h[1] + 2 * ux * uy * h[2]
            return _gauss((w.view(1, -1, 1, 1) * d2.pow(2)).sum(1, keepdim=True), window)
        ep, eg = energy(hp), energy(hg)
        spread = _zone_mean((ep - eg).clamp_min(0), flat).view(-1, 1, 1, 1)
        return torch.log2(((ep - spread).clamp_min(0) + eps) / (eg + eps)).clamp_min(0)

    along = excess(-ny, nx)
    exc = (along - excess(nx, ny)).clamp_min(0)
    scores = (_zone_mean(exc, on_edge) - _zone_mean(along, flat)).clamp_min(0)
    return ArtifactMap(scores, (exc * on_edge)[:, 0])


@torch.no_grad()
def ringing(pred: Tensor, gt: Tensor, *, sigma: float = 1.0, window: float = 1.5,
            threshold: float = 0.15, reach: int = 6, eps: float = 1e-5) -> ArtifactMap:
    """Ringing / halos: oscillations *across* the edges, beside them.

    In the halo zone (1 to ``reach`` px from the ground truth's edges) compare the luma second
    derivative energy across the edge (along the GT gradient ``n``) with that along it (``t``):
    ringing adds ``(n^T H n)^2`` only, isotropic dots or blobs add both.  Map = clipped log2 excess
    (pred/gt) across minus along, clipped at 0; score = its mean over the halo zone.
    """
    p, g = _pair(pred, gt)
    nx, ny = _normal(g, 2.0)
    w = torch.tensor([1.0, 0.0, 0.0], dtype=p.dtype, device=p.device)

    def excess(ux: Tensor, uy: Tensor) -> Tensor:
        ep = _gauss(_directional(p, ux, uy, sigma, w), window)
        eg = _gauss(_directional(g, ux, uy, sigma, w), window)
        return torch.log2((ep + eps) / (eg + eps)).clamp_min(0)

    zone = (edge_mask(g, threshold=threshold, dilate=reach)
            & ~edge_mask(g, threshold=threshold, dilate=1)).float()
    maps = (excess(nx, ny) - excess(-ny, nx)).clamp_min(0) * zone
    return ArtifactMap(_zone_mean(maps, zone), maps[:, 0])


def _ring(x: Tensor, radius: int) -> Tensor:
    """The 8 values of ``x (N,C,H,W)`` at ``radius`` px around each pixel (axes and diagonals,
    replicate padding), stacked ``(8, N, C, H, W)``."""
    d = int(round(radius / 2 ** 0.5))
    xp = F.pad(x, (radius,) * 4, mode="replicate")
    h, w = x.shape[-2:]
    offsets = [(0, radius), (0, -radius), (radius, 0), (-radius, 0), (d, d), (d, -d), (-d, d), (-d, -d)]
    return torch.stack([xp[..., radius + dy:radius + dy + h, radius + dx:radius + dx + w]
                        for dy, dx in offsets])


@torch.no_grad()
def eyes(pred: Tensor, gt: Tensor, *, sigma: float = 0.8, radius: int = 3, window: float = 2.0,
         eps: float = 1e-5) -> ArtifactMap:
    """"Eyes": small isolated dark blobs with a bright rim (dark centre ~3 px across, rim at
    ``radius`` px), added by the prediction.

    On the luma difference ``d = gauss(Y_pred - Y_gt, sigma)`` the eye strength at a pixel is
    ``max(0, min(-d(p), min_k d(p + radius u_k)))`` over the 8 axis/diagonal directions ``u_k``:
    positive only where the prediction is darker than the ground truth at the centre *and* brighter
    on the whole ring around it (an isolated, roughly isotropic dark-in-bright spot; luma units).
    Ringing stripes (dark along the edge), edges, dots of one pixel, blur and brightness changes are
    not eyes.  Map = ``log2(1 + gauss(e^2, window) / (gauss(e_gt^2, window) + eps))`` where
    ``e_gt`` is the same ring test on the ground truth's own luma (``min_k y(p + radius u_k) - y(p)``,
    clipped at 0: where the scene itself is spotty an added eye counts less); 0 = no added eye,
    1 = local mean of ``e^2`` equal to the scene's own plus ``eps``, log-compressed above.
    Score = its mean over the frame (sparse eyes give small means; compare runs, not absolutes).
    """
    p, g = _pair(pred, gt)
    yp, yg = _gauss(ycbcr(p)[:, :1], sigma), _gauss(ycbcr(g)[:, :1], sigma)
    d = yp - yg
    e = torch.minimum(-d, _ring(d, radius).min(0).values).clamp_min(0)
    e_gt = (_ring(yg, radius).min(0).values - yg).clamp_min(0)
    maps = torch.log2(1 + _gauss(e.pow(2), window) / (_gauss(e_gt.pow(2), window) + eps))[:, 0]
    return ArtifactMap(maps.mean((-2, -1)), maps)


def _hann2d(h: int, w: int, device, dtype) -> Tensor:
    return torch.outer(torch.hann_window(h, periodic=False, device=device, dtype=dtype),
                       torch.hann_window(w, periodic=False, device=device, dtype=dtype))


@torch.no_grad()
def high_frequency_ratio(pred: Tensor, gt: Tensor, *, cutoff: float = 0.125) -> Tensor:
    """Spectral ratio ``(N,)``: luma power above ``cutoff`` cycles/pixel, pred over gt (Hann-windowed
    FFT). 1 = as much fine detail as the ground truth, <1 = blurrier, >1 = noisier/over-sharpened.
    The default cutoff 0.125 is the LR Nyquist frequency for x4 super-resolution."""
    p, g = _pair(pred, gt)
    h, w = p.shape[-2:]
    win = _hann2d(h, w, p.device, p.dtype)
    fy = torch.fft.fftfreq(h, device=p.device).abs().view(-1, 1)
    fx = torch.fft.fftfreq(w, device=p.device).abs().view(1, -1)
    high = (torch.sqrt(fy ** 2 + fx ** 2) >= cutoff).to(p.dtype)

    def power(x: Tensor) -> Tensor:
        y = ycbcr(x)[:, 0]
        y = (y - y.mean((-2, -1), keepdim=True)) * win
        return (torch.fft.fft2(y).abs().pow(2) * high).sum((-2, -1))

    return power(p) / power(g).clamp_min(1e-12)


@torch.no_grad()
def blur(pred: Tensor, gt: Tensor, *, cutoff: float = 0.125, sigma: float = 1.0,
         window: float = 3.0) -> ArtifactMap:
    """Blur: loss of high-frequency luma energy relative to the ground truth.

    Score ``max(0, -log2 r)`` with ``r`` = :func:`high_frequency_ratio`: 0 = as much fine detail
    as GT, 1 = half of GT's high-frequency power lost, 5 = 97 % lost (a bicubic x4 upscale).  Map:
    ``clip(1 - E_pred / E_gt, 0, 1)`` of local high-pass luma energy, weighted by where the ground
    truth has detail (``E_gt / (E_gt + eps)``).
    """
    p, g = _pair(pred, gt)
    scores = (-torch.log2(high_frequency_ratio(p, g, cutoff=cutoff).clamp_min(1e-6))).clamp_min(0)

    def energy(x: Tensor) -> Tensor:
        y = ycbcr(x)[:, :1]
        return _gauss((y - _gauss(y, sigma)).pow(2), window)

    ep, eg = energy(p), energy(g)
    maps = (1 - ep / (eg + 1e-12)).clamp(0, 1) * (eg / (eg + _EPS))
    return ArtifactMap(scores, maps[:, 0])


def _box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean of ``x (N,1,H,W)`` over a ``(2 radius + 1)^2`` window, circular padding (a spectrum wraps)."""
    r_h, r_w = min(radius, x.shape[-2] // 2), min(radius, x.shape[-1] // 2)
    xp = F.pad(x, (r_w, r_w, r_h, r_h), mode="circular")
    return F.avg_pool2d(xp, (2 * r_h + 1, 2 * r_w + 1), stride=1)


def _periodic_part(p: Tensor, g: Tensor, *, min_freq: float, peak: float, radius: int,
                   away: int, threshold: float, share: float) -> tuple[Tensor, Tensor]:
    """The residual's added periodic part off the ground truth's edges ``(N,3,H,W)`` (YCbCr units) and
    its RMS amplitude ``(N,)`` (see :func:`periodic_pattern`)."""
    h, w = p.shape[-2:]
    zone = _gauss(1 - edge_mask(g, threshold=threshold, dilate=away).float(), 1.0)
    hann = _hann2d(h, w, p.device, p.dtype)
    win = hann * zone                                                     # (N,1,H,W)
    yp, yg = ycbcr(p), ycbcr(g)
    r = yp - yg
    r = r - r.mean((-2, -1), keepdim=True)

    def power(x: Tensor, wx: Tensor = win) -> Tensor:
        return torch.fft.fft2((x - x.mean((-2, -1), keepdim=True)) * wx).abs().pow(2).sum(1, keepdim=True)

    fy = torch.fft.fftfreq(h, device=p.device).abs().view(-1, 1)
    fx = torch.fft.fftfreq(w, device=p.device).abs().view(1, -1)
    high = (torch.maximum(fy, fx) >= min_freq).to(p.dtype)
    pr = power(r)
    added = pr * (power(yp) > power(yg)).to(p.dtype) * high
    background = _box_mean(pr, radius)
    # frame-wide: per unit of window power, as strong off the edges as over the whole frame (share)
    everywhere = power(r, hann) / hann.pow(2).sum()
    off_edges = pr / win.pow(2).sum((1, 2, 3), keepdim=True).clamp_min(1e-12)
    peaks = ((added > peak * background.clamp_min(1e-12)) & (off_edges >= share * everywhere)).to(p.dtype)
    peaks = (F.max_pool2d(F.pad(peaks, (1, 1, 1, 1), mode="circular"), 3, stride=1) > 0).to(p.dtype) * high
    part = torch.fft.ifft2(torch.fft.fft2(r) * peaks).real                # not windowed
    amp = ((part.pow(2).mean(1, keepdim=True) * zone).sum((1, 2, 3)) / zone.sum((1, 2, 3)).clamp_min(1e-12)).sqrt()
    return part, amp


_PERIODIC = dict(min_freq=0.24, peak=20.0, radius=7, away=2, threshold=0.15, share=0.25)
"""Defaults of :func:`periodic_pattern`'s spectral peak search (shared with :func:`chroma_noise`)."""


@torch.no_grad()
def periodic_pattern(pred: Tensor, gt: Tensor, *, min_freq: float = _PERIODIC["min_freq"],
                     peak: float = _PERIODIC["peak"], radius: int = _PERIODIC["radius"],
                     away: int = _PERIODIC["away"], threshold: float = _PERIODIC["threshold"],
                     share: float = _PERIODIC["share"], floor: float = 1 / 255, window: float = 2.0) -> ArtifactMap:
    """Periodic pattern over the whole frame: a fine dot grid or stripes of period <= 4 px.

    Residual ``r = YCbCr(pred) - YCbCr(gt)`` (per-frame mean removed), windowed by a 2-D Hann window
    times a soft mask of the pixels more than ``away`` px from the ground truth's edges (artifacts
    *on* edges are :func:`edge_artifacts`'); power spectrum ``P(f) = sum_c |FFT(r_c w)|^2``, counted
    only where the prediction has more power than the ground truth (a pattern *added*, not detail
    lost) and where ``max(|f_x|, |f_y|) >= min_freq`` cycles/px.  A peak is a bin above ``peak``
    times the spectrum's smooth background (its mean over a ``2 radius + 1`` box) whose power per
    unit of window power off the edges is at least ``share`` of that over the whole frame (Hann
    window alone): a pattern over the whole frame, not a lattice on the edges.  The peaks, widened
    by one bin (the window's lobe), select the residual's periodic part (its unwindowed spectrum at
    those bins, transformed back); ``a`` is that part's RMS per channel off the edges ([0, 1] units).
    Score ``log2(1 + a / floor)`` ``(N,)``: 0 = no added periodic pattern, 1 = an RMS of one 8-bit
    grey level, +1 per doubling.  Random dots, blur, edge or blob artifacts spread their energy over
    the spectrum and score ~0.  Map ``(N, H, W)``: the same scale for the local RMS (Gaussian
    ``window``) of the residual's periodic part (the peak bins transformed back).
    """
    p, g = _pair(pred, gt)
    part, amp = _periodic_part(p, g, min_freq=min_freq, peak=peak, radius=radius, away=away,
                               threshold=threshold, share=share)
    local = _gauss(part.pow(2).mean(1, keepdim=True), window).sqrt()
    return ArtifactMap(torch.log2(1 + amp / floor), torch.log2(1 + local / floor)[:, 0])


def _farneback(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Backward flow for warping: for each pixel of ``nxt`` the displacement into ``prev``."""
    import cv2  # imported on use: only the flicker measure needs OpenCV

    a = (prev * 255).round().astype(np.uint8)
    b = (nxt * 255).round().astype(np.uint8)
    return cv2.calcOpticalFlowFarneback(b, a, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _warp(x: Tensor, flow: Tensor) -> Tensor:
    """Bilinear backward warp of ``x (N,C,H,W)`` by ``flow (N,2,H,W)`` (x then y, pixels):
    ``out[p] = x[p + flow[p]]``, border padding."""
    n, _, h, w = x.shape
    yy, xx = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    gx = (xx + flow[:, 0]) / max(w - 1, 1) * 2 - 1
    gy = (yy + flow[:, 1]) / max(h - 1, 1) * 2 - 1
    return F.grid_sample(x, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


FLOW_METHOD = "opencv-farneback-on-ground-truth"


def flow_method(flow_net: torch.nn.Module | None = None) -> str:
    """Which optical flow :func:`flicker` uses: a pretrained SpyNet when one is passed
    (``nriqa.models.spynet.SpyNet`` + ``load_spynet_weights``), else OpenCV Farneback."""
    return "spynet-on-ground-truth" if flow_net is not None else FLOW_METHOD


@torch.no_grad()
def flicker(pred: Tensor, gt: Tensor, *, flow_net: torch.nn.Module | None = None,
            sigma: float = 3.0, floor: float = 1 / 255) -> ArtifactMap:
    """Temporal flicker of a clip ``(T,3,H,W)`` or ``(1,T,3,H,W)``, T >= 2: frame-to-frame change of
    the *local brightness* that does not follow the ground truth's motion.

    Flicker is judged on low-passed luma ``L = gauss(Y, sigma)`` (``sigma`` = 3 px keeps what a
    viewer sees as a region brightening or darkening and removes each frame's own fine detail, so
    per-frame high-frequency artifacts -- dots, dotted edges, ringing -- are left to their own
    detectors).  For each consecutive pair, optical flow is estimated on the ground truth and
    ``L[t]`` is warped onto ``L[t+1]``.  Flow: ``flow_net`` when given -- a *pretrained* SpyNet
    (``flow_net(ref=gt[t+1], supp=gt[t])``; random weights give meaningless flow, so none is built
    here) -- else OpenCV Farneback on luma (see :func:`flow_method`).
    Warped difference ``d_x(t) = mean |L_x[t+1] - warp(L_x[t])|`` (luma units, [0, 1]); score
    ``(d_pred(t) + floor) / (d_gt(t) + floor)`` per pair (``(T-1,)``; 1 = as stable as the ground
    truth, >1 = flickers more; ``floor`` = one 8-bit grey level keeps invisible changes of a static
    ground truth from reading as large ratios).  Map: ``|pred diff| - |gt diff|`` of ``L``, clipped
    at 0, per pair ``(T-1, H, W)``.
    """
    p, g = _pair(pred, gt)
    if pred.dim() == 5 and pred.shape[0] != 1:
        raise ValueError(f"flicker takes one clip, got a batch of {pred.shape[0]}")
    if p.shape[0] < 2:
        raise ValueError(f"flicker needs at least 2 frames, got {p.shape[0]}")
    if flow_net is not None:
        dev = next(flow_net.parameters()).device
        flows = flow_net(g[1:].to(dev), g[:-1].to(dev)).to(p)  # (T-1, 2, H, W)
    else:
        y = ycbcr(g)[:, 0].cpu().numpy()
        flows = torch.stack([torch.from_numpy(_farneback(y[t], y[t + 1])).permute(2, 0, 1)
                             for t in range(p.shape[0] - 1)]).to(p)
    lp, lg = _gauss(ycbcr(p)[:, :1], sigma), _gauss(ycbcr(g)[:, :1], sigma)
    dp = (lp[1:] - _warp(lp[:-1], flows)).abs()[:, 0]
    dg = (lg[1:] - _warp(lg[:-1], flows)).abs()[:, 0]
    scores = (dp.mean((-2, -1)) + floor) / (dg.mean((-2, -1)) + floor)
    return ArtifactMap(scores, (dp - dg).clamp_min(0))


@torch.no_grad()
def flicker_excess(pred: Tensor, gt: Tensor, **kw) -> ArtifactMap:
    """:func:`flicker` on the artifact scale: score ``max(0, log2 ratio)`` per frame pair ``(T-1,)``
    (0 = as stable as the ground truth, 1 = twice its warped frame difference); map as
    :func:`flicker`'s (pair ``t`` sits at frame ``t + 1``)."""
    res = flicker(pred, gt, **kw)
    return ArtifactMap(torch.log2(res.scores.clamp_min(1e-6)).clamp_min(0), res.maps)


MEASURES: dict[str, Callable[..., ArtifactMap]] = {
    "chroma_noise": chroma_noise,
    "edge_artifacts": edge_artifacts,
    "eyes": eyes,
    "ringing": ringing,
    "blur": blur,
    "flicker": flicker_excess,
    "periodic_pattern": periodic_pattern,
}
"""Artifact detectors by name; every one is 0 on the ground truth itself, larger = more artifact.
``flicker`` takes one clip ``(T,3,H,W)`` and scores frame pairs; the others score frames."""


def measure_artifacts(pred: Tensor, gt: Tensor, measures: Sequence[str] = tuple(MEASURES)) -> dict[str, Tensor]:
    """Scores ``{name: (N,)}`` of the named per-frame artifact measures."""
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown artifact measure(s) {unknown}; known: {list(MEASURES)}")
    return {m: MEASURES[m](pred, gt).scores for m in measures}


# ----------------------------------------------------------------------------- crops
class Crop(NamedTuple):
    frame: int
    y: int
    x: int
    size: int
    value: float


@torch.no_grad()
def top_crops(pred: Tensor, gt: Tensor, measure: str | Callable[..., ArtifactMap] = "chroma_noise",
              k: int = 4, size: int = 48) -> list[Crop]:
    """The ``k`` non-overlapping ``size x size`` windows where ``measure``'s heat map is highest.

    ``measure`` is a name in :data:`MEASURES` or a callable ``(pred, gt) -> ArtifactMap``.
    Returns crops sorted by mean map value (highest first); fewer than ``k`` when frames are small.
    """
    fn = MEASURES.get(measure) if isinstance(measure, str) else measure
    if fn is None:
        raise ValueError(f"unknown artifact measure {measure!r}; known: {list(MEASURES)}")
    if k < 1 or size < 1:
        raise ValueError(f"k and size must be >= 1, got k={k}, size={size}")
    p, _ = _pair(pred, gt)
    h, w = p.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop size {size} is larger than the frames ({h}x{w})")
    maps = fn(pred, gt).maps.unsqueeze(1)
    stride = max(1, size // 4)
    pooled = F.avg_pool2d(maps, size, stride=stride)[:, 0]  # (N, h', w')
    order = torch.argsort(pooled.flatten(), descending=True)
    n_h, n_w = pooled.shape[-2:]
    chosen: list[Crop] = []
    for idx in order.tolist():
        f, rem = divmod(idx, n_h * n_w)
        iy, ix = divmod(rem, n_w)
        y, x = iy * stride, ix * stride
        if any(c.frame == f and abs(c.y - y) < size and abs(c.x - x) < size for c in chosen):
            continue
        chosen.append(Crop(f, y, x, size, float(pooled[f, iy, ix])))
        if len(chosen) == k:
            break
    return chosen
