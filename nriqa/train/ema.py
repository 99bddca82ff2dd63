"""Exponential moving average of the generator weights (updated on-device, no host sync)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from nriqa.errors import ConfigError


class EMA:
    """``ema <- ema + w * (params - ema)`` with ``w = 1 - decay`` (``w = 0`` leaves it bit-identical).

    ``weight`` may be a 0-dim tensor on the model's device, so a skipped (non-finite) step can
    pass ``w = 0`` without the host ever looking at the flag. Buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, weight: torch.Tensor | float | None = None) -> None:
        w = (1.0 - self.decay) if weight is None else weight
        for e, p in zip(self.module.parameters(), model.parameters()):
            e.lerp_(p.detach().to(e.dtype), w)
        for e, b in zip(self.module.buffers(), model.buffers()):
            e.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
