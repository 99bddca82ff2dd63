"""The one record every dataset returns: a named HR clip, optionally with the dataset's own LR frames."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nriqa.data.frames_io import read_frames, read_image, to_tensor


@dataclass
class Clip:
    """A video clip.

    ``hr``: ``(T, 3, H, W)`` float32 RGB in ``[0, 1]``, ``H`` and ``W`` multiples of 4.
    ``lr``: optional LR frames shipped with a folder dataset, ``(T, 3, H/scale, W/scale)``, and
    ``degradation`` names how they were made (``"BI"``/``"BD"``); samplers use them when the
    requested degradation matches and compute ``degrade(hr)`` otherwise.
    """

    name: str
    source: str
    hr: Tensor
    lr: Tensor | None = None
    degradation: str | None = None

    def __post_init__(self) -> None:
        hr = self.hr
        if not isinstance(hr, Tensor) or hr.ndim != 4 or hr.shape[1] != 3:
            shape = tuple(hr.shape) if isinstance(hr, Tensor) else type(hr).__name__
            raise ValueError(f"Clip {self.name!r}: hr must be a (T, 3, H, W) tensor, got {shape}")
        if hr.dtype != torch.float32:
            raise ValueError(f"Clip {self.name!r}: hr must be float32 in [0, 1], got {hr.dtype}")
        if self.lr is not None and (self.lr.ndim != 4 or self.lr.shape[:2] != hr.shape[:2]):
            raise ValueError(f"Clip {self.name!r}: lr {tuple(self.lr.shape)} does not match hr "
                             f"{tuple(hr.shape)} in frames/channels")

    @property
    def num_frames(self) -> int:
        return int(self.hr.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """HR ``(H, W)``."""
        return int(self.hr.shape[-2]), int(self.hr.shape[-1])

    def __repr__(self) -> str:  # tensors would flood the console
        t, _, h, w = self.hr.shape
        lr = "" if self.lr is None else f", lr={self.degradation}"
        return f"Clip({self.name!r}, source={self.source!r}, T={t}, HR={h}x{w}{lr})"


@dataclass
class LazyClip:
    """A clip left on disk: frames are read only when a sampler asks for a window of them.

    Used for big folder datasets (REDS, Vimeo-90K) where loading every frame would not fit in
    memory. ``hr_files`` are the HR frame images in time order; ``lr_files`` (optional) the
    dataset's own LR frames of kind ``degradation``. HR frames are mod-cropped to ``scale``.
    """

    name: str
    source: str
    hr_files: list
    lr_files: list | None = None
    degradation: str | None = None
    scale: int = 4

    @property
    def num_frames(self) -> int:
        return len(self.hr_files)

    @property
    def size(self) -> tuple[int, int]:
        """HR ``(H, W)`` after mod-crop (reads the first frame once)."""
        if not hasattr(self, "_size"):
            h, w = read_image(self.hr_files[0]).shape[:2]
            self._size = (h - h % self.scale, w - w % self.scale)
        return self._size

    def read_hr(self, t0: int, t1: int) -> Tensor:
        """HR frames ``[t0, t1)`` as ``(t1-t0, 3, H, W)`` float32 in ``[0, 1]``."""
        frames = read_frames(self.hr_files[t0:t1])
        h, w = frames.shape[1:3]
        return to_tensor(frames[:, : h - h % self.scale, : w - w % self.scale])

    def read_lr(self, t0: int, t1: int) -> Tensor | None:
        """The dataset's own LR frames ``[t0, t1)``, or ``None`` when it ships none."""
        if self.lr_files is None:
            return None
        frames = read_frames(self.lr_files[t0:t1])
        want = (self.size[0] // self.scale, self.size[1] // self.scale)
        if frames.shape[1:3] != want:
            raise ValueError(f"LR frame {self.lr_files[t0]} is {frames.shape[2]}x{frames.shape[1]} but HR frame "
                             f"{self.hr_files[t0]} needs {want[1]}x{want[0]} (HR / {self.scale})")
        return to_tensor(frames)

    def load(self, max_frames: int | None = None) -> Clip:
        """Read the whole clip (or its first ``max_frames``) into a :class:`Clip`."""
        n = self.num_frames if max_frames is None else min(max_frames, self.num_frames)
        lr = self.read_lr(0, n)
        return Clip(self.name, self.source, self.read_hr(0, n), lr, self.degradation if lr is not None else None)

    def __repr__(self) -> str:
        return f"LazyClip({self.name!r}, source={self.source!r}, T={self.num_frames}, on disk)"
