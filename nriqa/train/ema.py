"""Exponential moving average of the generator weights (updated on-device, no host sync)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from nriqa.errors import ConfigError

WARMUP_OFFSET = 10
"""Warm-up decay at update ``n`` is ``min(decay, (1 + n) / (WARMUP_OFFSET + n))``."""


class EMA:
    """``ema <- ema + w * (params - ema)`` with ``w = 1 - decay_n``.

    ``warmup=True`` (the trainer's default, ``train.ema_warmup``): ``decay_n = min(decay, (1 + n) /
    (10 + n))`` where ``n`` counts this run's applied updates, so a short run's EMA follows its
    weights (after 30 updates it has moved ~0.9 of the way from the start, not ~0.26 as plain
    ``decay = 0.99`` would); it reaches ``decay`` after ``(10 decay - 1) / (1 - decay)`` updates
    (881 for 0.99). ``warmup=False``: ``decay_n = decay``.

    ``update(model, ok)``: ``ok`` (a 0-dim bool tensor on the model's device, or ``None`` = True)
    lets a skipped (non-finite) step leave the weights *and* the counter bit-identical without the
    host looking at the flag. ``updates`` (the count ``n``) and ``start_weight`` (the weight the
    run's starting point still has in the average, ``prod decay_n``) are 0-dim tensors saved by
    :meth:`counters_state`. Buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = False):
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        device = next((p.device for p in self.module.parameters()), torch.device("cpu"))
        self.updates = torch.zeros((), dtype=torch.float64, device=device)
        self.start_weight = torch.ones((), dtype=torch.float64, device=device)

    def current_decay(self) -> torch.Tensor:
        """The decay the next update uses (0-dim float64 tensor on the EMA's device)."""
        d = torch.full_like(self.updates, self.decay)
        if not self.warmup:
            return d
        return torch.minimum(d, (1.0 + self.updates) / (WARMUP_OFFSET + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module, ok: torch.Tensor | bool | None = None) -> None:
        decay = self.current_decay()
        if ok is None or ok is True:
            w = 1.0 - decay
            ok_t = torch.ones_like(self.updates)
        else:
            ok_t = torch.as_tensor(ok, device=self.updates.device).to(self.updates.dtype)
            w = torch.where(ok_t > 0, 1.0 - decay, torch.zeros_like(decay))
        cast: dict = {}
        for e, p in zip(self.module.parameters(), model.parameters()):
            key = (e.device, e.dtype)
            if key not in cast:
                cast[key] = w.to(device=e.device, dtype=e.dtype)
            e.lerp_(p.detach().to(e.dtype), cast[key])
        for e, b in zip(self.module.buffers(), model.buffers()):
            e.copy_(b)
        self.start_weight = self.start_weight * torch.where(ok_t > 0, decay, torch.ones_like(decay))
        self.updates = self.updates + ok_t

    def state_dict(self) -> dict:
        """The averaged weights (a plain model state dict, as ``params_ema`` stores it)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)

    def counters_state(self) -> dict:
        """``{"updates", "start_weight"}`` (CPU tensors) for an exact resume."""
        return {"updates": self.updates.cpu(), "start_weight": self.start_weight.cpu()}

    def load_counters(self, state: dict | None) -> None:
        if state:
            self.updates = state["updates"].to(self.updates.device, self.updates.dtype)
            self.start_weight = state["start_weight"].to(self.start_weight.device, self.start_weight.dtype)

    def card(self) -> dict:
        """What the evaluated weights are (one host read; for ``done.json``): ``decay``, ``warmup``,
        ``updates``, ``final_decay`` (the decay of the last update) and ``start_weight``."""
        n = int(self.updates.item())
        last = None if n == 0 else self.decay if not self.warmup else min(self.decay, n / (WARMUP_OFFSET - 1 + n))
        return {"weights": "params_ema", "decay": self.decay, "warmup": self.warmup, "updates": n,
                "final_decay": last, "start_weight": float(self.start_weight.item())}
