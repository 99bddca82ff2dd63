"""The one record every dataset returns: a named HR clip, optionally with the dataset's own LR frames."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


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
        if self.lr is not None:
            if self.lr.ndim != 4 or self.lr.shape[:2] != hr.shape[:2]:
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
