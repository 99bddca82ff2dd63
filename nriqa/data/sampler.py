"""Training batches (random aligned LR/HR crops) and whole test clips.

Alignment: LR frames come from ``degrade(hr)`` of the *whole* frame (or the dataset's own LR), and a
crop at LR position ``(y, x)`` pairs with the HR crop at ``(scale*y, scale*x)``, so LR and HR match
exactly. Augmentations (each with probability 1/2, applied to LR and HR alike): horizontal flip,
vertical flip, temporal reversal.

Determinism: ``TrainSampler.batch(step)`` draws from a ``torch.Generator`` seeded from
``(seed, step)`` only, so a step's batch is the same whatever was drawn before (exact resume).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from nriqa.data.clip import Clip, LazyClip
from nriqa.data.degradations import DEGRADATIONS, degrade


def _check_degradation(kind: str) -> str:
    up = str(kind).upper()
    if up not in DEGRADATIONS:
        raise ValueError(f"degradation must be one of {DEGRADATIONS}, got {kind!r}")
    return up


def clip_lr(clip: Clip, degradation: str = "BI", scale: int = 4, *, quantize: bool = True) -> Tensor:
    """LR frames ``(T, 3, H/scale, W/scale)`` of a clip: the dataset's own when they match, else computed."""
    degradation = _check_degradation(degradation)
    h, w = clip.size
    if clip.lr is not None and clip.degradation == degradation and clip.lr.shape[-2:] == (h // scale, w // scale):
        return clip.lr
    with torch.no_grad():
        return degrade(clip.hr, degradation, scale, quantize=quantize)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator whose state depends only on ``(seed, step)`` (well mixed via SeedSequence)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step) & 0xFFFFFFFFFFFF]).generate_state(2)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g


class TrainSampler:
    """Random LR/HR crop pairs from clips; ``batch(step)`` -> ``{"lr": (B,T,3,p,p), "hr": (B,T,3,sp,sp)}``.

    ``p = lr_patch``, ``s = scale``, ``T = num_frames``; float32 in ``[0, 1]``. For in-memory
    :class:`Clip` objects the LR frames are computed once at construction (8-bit rounded like stored
    LR PNGs unless ``quantize_lr=False``); :class:`LazyClip` objects are read window by window
    (``T`` frames per sample) and give the same batches as their loaded counterparts.
    """

    def __init__(self, clips: Sequence[Clip], *, scale: int = 4, num_frames: int = 5, lr_patch: int = 32,
                 batch_size: int = 4, degradation: str = "BI", seed: int = 0, quantize_lr: bool = True,
                 augment: bool = True) -> None:
        self.degradation = _check_degradation(degradation)
        for name, v in {"scale": scale, "num_frames": num_frames, "lr_patch": lr_patch,
                        "batch_size": batch_size}.items():
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"TrainSampler: {name} must be a positive integer, got {v!r}")
        clips = list(clips)
        if not clips:
            raise ValueError("TrainSampler: no clips given")
        usable, rejected = [], []
        for c in clips:
            if isinstance(c, LazyClip):       # on disk: sizes are checked when a window is read
                (usable if c.num_frames >= num_frames else rejected).append(c)
                continue
            if not isinstance(c, Clip):
                raise TypeError(f"TrainSampler: clips must be nriqa.data.Clip or LazyClip, got {type(c).__name__}")
            h, w = c.size
            if h % scale or w % scale:
                raise ValueError(f"TrainSampler: clip {c.name} HR {h}x{w} is not a multiple of scale={scale}")
            if c.num_frames >= num_frames and min(h, w) >= lr_patch * scale:
                usable.append(c)
            else:
                rejected.append(f"{c.name} (T={c.num_frames}, {h}x{w})")
        if not usable:
            raise ValueError(f"TrainSampler: no clip has >= {num_frames} frames and a side >= "
                             f"{lr_patch * scale} HR px (lr_patch={lr_patch} x scale={scale}); got {rejected}")
        self.clips = usable
        self.skipped = rejected
        self.scale, self.num_frames, self.lr_patch = int(scale), int(num_frames), int(lr_patch)
        self.batch_size, self.seed, self.augment = int(batch_size), int(seed), bool(augment)
        self.quantize_lr = bool(quantize_lr)
        self.lr = [None if isinstance(c, LazyClip) else clip_lr(c, self.degradation, self.scale, quantize=quantize_lr)
                   for c in usable]

    def __repr__(self) -> str:
        return (f"TrainSampler({len(self.clips)} clips, {self.degradation} x{self.scale}, T={self.num_frames}, "
                f"lr_patch={self.lr_patch}, batch_size={self.batch_size}, seed={self.seed})")

    def _read_window(self, clip: LazyClip, t0: int, t1: int) -> tuple[Tensor, Tensor]:
        hr = clip.read_hr(t0, t1)
        lr = clip.read_lr(t0, t1) if clip.degradation == self.degradation else None
        if lr is None:
            with torch.no_grad():
                lr = degrade(hr, self.degradation, self.scale, quantize=self.quantize_lr)
        return hr, lr

    def _randint(self, high: int, g: torch.Generator) -> int:
        return int(torch.randint(high, (1,), generator=g))

    def batch(self, step: int) -> dict[str, Tensor]:
        """The batch of training step ``step`` (same step -> identical tensors, in any call order)."""
        g = step_generator(self.seed, step)
        p, s, t = self.lr_patch, self.scale, self.num_frames
        lrs, hrs = [], []
        for _ in range(self.batch_size):
            k = self._randint(len(self.clips), g)
            clip = self.clips[k]
            lr_h, lr_w = clip.size[0] // s, clip.size[1] // s
            if min(lr_h, lr_w) < p:
                raise ValueError(f"TrainSampler: clip {clip.name} LR {lr_h}x{lr_w} is smaller than lr_patch={p}")
            t0 = self._randint(clip.num_frames - t + 1, g)
            y = self._randint(lr_h - p + 1, g)
            x = self._randint(lr_w - p + 1, g)
            flips = torch.rand(3, generator=g) < 0.5
            if isinstance(clip, LazyClip):
                hr, lr = self._read_window(clip, t0, t0 + t)
                t_sel = slice(None)
            else:
                hr, lr, t_sel = clip.hr, self.lr[k], slice(t0, t0 + t)
            lr_crop = lr[t_sel, :, y:y + p, x:x + p]
            hr_crop = hr[t_sel, :, s * y:s * (y + p), s * x:s * (x + p)]
            if self.augment:
                dims = [d for d, flip in zip((-1, -2, 0), flips.tolist()) if flip]   # hflip, vflip, time
                if dims:
                    lr_crop, hr_crop = lr_crop.flip(dims), hr_crop.flip(dims)
            lrs.append(lr_crop)
            hrs.append(hr_crop)
        return {"lr": torch.stack(lrs).contiguous(), "hr": torch.stack(hrs).contiguous()}


def test_clips(clips: Sequence[Clip], *, degradation: str = "BI", scale: int = 4, max_frames: int | None = None,
               max_side: int | None = None, quantize_lr: bool = True) -> list[dict]:
    """Whole test clips: ``[{"name", "source", "lr": (1,T,3,h,w), "hr": (1,T,3,s*h,s*w)}]``.

    The first ``max_frames`` frames, centre-cropped so each LR side is at most ``max_side`` px
    (the HR crop is the matching ``scale`` times larger window). LR is degraded from the full frame.
    """
    degradation = _check_degradation(degradation)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"test_clips: max_frames must be >= 1 or None, got {max_frames}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"test_clips: max_side must be >= 1 or None, got {max_side}")
    out = []
    for clip in clips:
        n = clip.num_frames if max_frames is None else min(max_frames, clip.num_frames)
        sub = Clip(clip.name, clip.source, clip.hr[:n],
                   None if clip.lr is None else clip.lr[:n], clip.degradation)
        lr = clip_lr(sub, degradation, scale, quantize=quantize_lr)
        h, w = lr.shape[-2:]
        ch, cw = (h, w) if max_side is None else (min(h, max_side), min(w, max_side))
        top, left = (h - ch) // 2, (w - cw) // 2
        out.append({
            "name": clip.name,
            "source": clip.source,
            "lr": lr[:, :, top:top + ch, left:left + cw].unsqueeze(0).contiguous(),
            "hr": sub.hr[:, :, scale * top:scale * (top + ch),
                         scale * left:scale * (left + cw)].unsqueeze(0).contiguous(),
        })
    return out


test_clips.__test__ = False   # not a pytest test, even when imported into a test module
