"""QualityLoss: any differentiable :mod:`nriqa.quality` measure as a lower-is-better loss."""
from __future__ import annotations

import difflib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nriqa import quality
from nriqa.losses._checks import (
    LossInputError,
    UnknownNameError,
    check_rank,
    check_same_shape,
    check_values,
    frames,
)


def unknown_name_message(name: str, known: list[str], what: str = "quality measure") -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(sorted(known))})"


def lookup_card(name: str) -> quality.Card:
    """``nriqa.quality.card(name)`` with a closest-name suggestion on failure.

    Kit-trained measures (``cnniqa@embedded-a``, ...) are found by the registry in
    ``weights_dir()/kit/`` when first looked up.
    """
    if not isinstance(name, str):
        raise TypeError(f"measure name must be a string, got {type(name).__name__}")
    try:
        return quality.card(name)
    except ValueError:
        known = quality.names()
        if name.strip().lower() in known:
            raise
        raise UnknownNameError(unknown_name_message(name, known) + kit_hint(name)) from None


def kit_hint(name: str) -> str:
    if "@" not in name:
        return ""
    return (f". {name!r} looks like a kit-trained measure: train it first (nriqa.iqa.train_iqa) so its "
            f"checkpoint lies under weights_dir()/kit/")


def tile_starts(size: int, tile: int) -> list[int]:
    """Start offsets of ``ceil(size / tile)`` tiles of width ``tile`` covering ``[0, size)``.

    Evenly spread (rounded ``linspace(0, size - tile, n)``), so neighbouring tiles overlap
    by the same amount when ``tile`` does not divide ``size``; deterministic.
    """
    n = math.ceil(size / tile)
    if n == 1:
        return [0]
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def split_tiles(x: Tensor, tile: int) -> tuple[Tensor, int]:
    """``(N,C,H,W)`` -> ``(N*k, C, tile, tile)`` tiles (frame-major) and ``k`` tiles per frame."""
    n, c, h, w = x.shape
    tiles = [x[:, :, i:i + tile, j:j + tile] for i in tile_starts(h, tile) for j in tile_starts(w, tile)]
    k = len(tiles)
    return torch.stack(tiles, dim=1).reshape(n * k, c, tile, tile), k


def centre_crop(x: Tensor, size: int) -> Tensor:
    """Central ``size x size`` window of the last two dims (whole dim when it is smaller)."""
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top:top + ch, left:left + cw]


def _mirror_pad(x: Tensor, size: int) -> Tensor:
    """Frames ``(..., C, H, W)`` mirror-padded (centred, edge pixel not repeated) to at least
    ``size x size``; the padding per side must be smaller than the side it pads."""
    h, w = x.shape[-2:]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph >= h or pw >= w:
        raise LossInputError(f"frames of {h}x{w} px are too small to mirror-pad to {size}x{size}; use bigger patches")
    lead = x.shape[:-3]
    y = F.pad(x.reshape(-1, *x.shape[-3:]), (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="reflect")
    return y.reshape(*lead, x.shape[-3], *y.shape[-2:])


class QualityLoss(nn.Module):
    """A differentiable quality measure as a loss: lower is better, ``~[0, 1]``.

    ``loss = mean over frames of nriqa.quality.to_loss(measure(frame[, ref]), card)``; the
    per-measure mapping to lower-better (e.g. ``1 - s`` or ``(hi - s) / (hi - lo)``) is the
    quality registry's, documented on each card.

    Input: ``pred`` ``(N,3,H,W)`` or video ``(B,T,3,H,W)`` (flattened to ``B*T`` frames);
    ``target`` of the same shape, required for full-reference (``FR``) measures and ignored
    for no-reference ones.  ``pred`` is clamped to ``[0, 1]`` before scoring (no gradient
    through saturated pixels); it must be finite.  ``target`` must be finite in ``[0, 1]``.

    Size handling, deterministic (same input -> same pixels scored):

    - ``crop=s``: score only the central ``s x s`` window of each frame;
    - ``tile=s``: cut each frame into a grid of ``ceil(H/s) x ceil(W/s)`` tiles of ``s x s``
      (evenly overlapping when ``s`` does not divide the side, see :func:`tile_starts`),
      score every tile, average the tiles of a frame, then average the frames;
    - frames smaller than the card's ``min_size`` raise an error unless
      ``upsample_small=True``, which bilinearly enlarges them so the short side is ``min_size``
      (it blurs: the measure sees a softer frame than the generator made), or ``pad_small=True``,
      which mirror-pads them (centred) to ``min_size`` and keeps their pixel scale (a measure with a
      fixed block size, NIQE's 96 px, then scores the generator's own texture); the padding must
      be smaller than the frame.

    Crop is applied before tiling.  Video measures (``card.video``) see the whole clip
    ``(B,T,3,H,W)``, support ``crop`` only, and may score per clip or per frame (averaged).

    The measure network is frozen (``eval()``, ``requires_grad=False``) and held outside this
    module's registered children: it never appears in ``.parameters()``/``.state_dict()`` of
    this loss or of anything containing it, and ``.train()`` on a container never unfreezes it.
    ``.to(device)`` / ``.cuda()`` / ``.float()`` on the loss (or a container) move it along.
    """

    def __init__(self, name: str, device: str | torch.device = "cpu", *, tile: int | None = None,
                 crop: int | None = None, upsample_small: bool = False, pad_small: bool = False,
                 validate: bool = True) -> None:
        super().__init__()
        card = lookup_card(name)
        if upsample_small and pad_small:
            raise ValueError("upsample_small and pad_small are exclusive: enlarge small frames or mirror-pad them")
        if not card.differentiable:
            raise ValueError(
                f"quality measure {name!r} is not differentiable and cannot be used as a loss; "
                f"differentiable measures available offline: {self._offline_hint()}")
        for arg, value in (("tile", tile), ("crop", crop)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{arg} must be a positive int or None, got {value!r}")
        min_size = int(getattr(card, "min_size", 0) or 0)
        if tile is not None and tile < min_size:
            raise ValueError(f"tile={tile} is smaller than {name!r}'s minimum input size {min_size}")
        if getattr(card, "video", False) and tile is not None:
            raise ValueError(f"{name!r} is a video measure: tile is not supported (use crop)")
        measure = quality.create(name, device=device)
        measure.eval()
        measure.requires_grad_(False)
        object.__setattr__(self, "measure", measure)  # plain attribute: not a registered child
        self.name = name
        self.card = card
        self.tile = tile
        self.crop = crop
        self.upsample_small = upsample_small
        self.pad_small = pad_small
        self.validate = validate
        self.min_size = min_size

    @staticmethod
    def _offline_hint() -> str:
        return ", ".join(quality.offline_names(differentiable=True))

    @property
    def full_reference(self) -> bool:
        return self.card.mode == "FR"

    @property
    def device(self) -> torch.device:
        for t in list(self.measure.parameters()) + list(self.measure.buffers()):
            return t.device
        return torch.device("cpu")

    def _apply(self, fn, *args, **kwargs):  # .to()/.cuda()/.float() reach the unregistered measure
        super()._apply(fn, *args, **kwargs)
        self.measure._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> QualityLoss:
        super().train(mode)
        self.measure.eval()  # the measure stays in eval mode whatever the container does
        return self

    def _fit_size(self, x: Tensor) -> Tensor:
        if self.crop is not None:
            x = centre_crop(x, self.crop)
        h, w = x.shape[-2:]
        need = max(self.min_size, self.tile or 0)
        if min(h, w) < need:
            if self.pad_small:
                return _mirror_pad(x, need)
            if not self.upsample_small:
                raise LossInputError(
                    f"{self.name!r} needs frames of at least {need}x{need} px, got {h}x{w}; use bigger "
                    f"patches or QualityLoss(..., pad_small=True) / (..., upsample_small=True)")
            scale = need / min(h, w)
            size = (max(need, math.ceil(h * scale)), max(need, math.ceil(w * scale)))
            lead = x.shape[:-3]
            x = F.interpolate(x.reshape(-1, *x.shape[-3:]), size=size, mode="bilinear",
                              align_corners=False).reshape(*lead, x.shape[-3], *size)
        return x

    def forward(self, pred: Tensor, target: Tensor | None = None) -> Tensor:
        """Scalar loss, lower is better (mean over frames of the per-frame loss)."""
        fr = self.full_reference
        if fr and target is None:
            raise LossInputError(f"{self.name!r} is a full-reference measure: target is required")
        if not fr:
            target = None
        if self.validate:
            check_rank(pred, "pred", channels=3)
            if target is not None:
                check_rank(target, "target", channels=3)
                check_same_shape(pred, target)
            check_values(pred, target)
        video = bool(getattr(self.card, "video", False))
        if video and pred.dim() != 5:
            raise LossInputError(f"{self.name!r} is a video measure: pred must be (B,T,3,H,W), "
                                 f"got shape {tuple(pred.shape)}")
        x = pred.clamp(0, 1)
        ref = target.clamp(0, 1) if target is not None else None  # within the checked tolerance
        if not video:
            x = frames(x)
            ref = frames(ref) if ref is not None else None
        x = self._fit_size(x)
        ref = self._fit_size(ref) if ref is not None else None
        per_frame = 1
        if self.tile is not None:
            x, per_frame = split_tiles(x, self.tile)
            ref = split_tiles(ref, self.tile)[0] if ref is not None else None
        # values were checked above when validating; unvalidated calls (the trainer's hot path)
        # must not sync with the device, and a NaN must reach the trainer's non-finite guard
        if isinstance(self.measure, quality.Measure):
            score = self.measure(x, ref, check_values=self.validate)
        else:
            score = self.measure(x, ref) if ref is not None else self.measure(x)
        loss = quality.to_loss(score, self.card)
        allowed = {x.shape[0]} if not video else {x.shape[0], x.shape[0] * x.shape[1]}  # video: per clip or frame
        if loss.numel() not in allowed:
            raise RuntimeError(f"measure {self.name!r} returned {loss.numel()} scores for input "
                               f"{tuple(x.shape)}; expected one raw score per image (video: per clip or frame)")
        return loss.float().reshape(-1, per_frame).mean(dim=1).mean()

    def extra_repr(self) -> str:
        parts = [repr(self.name), self.card.mode]
        if self.crop:
            parts.append(f"crop={self.crop}")
        if self.tile:
            parts.append(f"tile={self.tile}")
        return ", ".join(parts)
