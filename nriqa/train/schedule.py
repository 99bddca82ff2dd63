"""Learning-rate schedule: linear warm-up, then cosine annealing with warm restarts.

The schedule is a pure function of the step index, so resuming needs only the step.
``periods`` are the lengths (in steps, counted after warm-up) of the successive cosine
cycles; cycle ``i`` starts at ``base_lr * restart_weights[i]`` and decays to ``eta_min``.
After the last cycle the rate stays at ``eta_min``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from nriqa.errors import ConfigError


@dataclass
class CosineRestarts:
    """``lr(step) -> float`` for the base parameter group (other groups scale it)."""

    base_lr: float
    periods: list[int]
    restart_weights: list[float] = field(default_factory=list)
    eta_min: float = 0.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if not self.periods or any(int(p) <= 0 for p in self.periods):
            raise ConfigError(f"schedule.periods must be a non-empty list of positive step counts, "
                              f"got {self.periods!r}")
        self.periods = [int(p) for p in self.periods]
        if not self.restart_weights:
            self.restart_weights = [1.0] * len(self.periods)
        if len(self.restart_weights) != len(self.periods):
            raise ConfigError(f"schedule.restart_weights ({len(self.restart_weights)} values) must match "
                              f"schedule.periods ({len(self.periods)} values)")
        if self.warmup_steps < 0 or self.eta_min < 0 or self.base_lr <= 0:
            raise ConfigError("schedule needs base_lr > 0, eta_min >= 0 and warmup_steps >= 0")

    def cosine(self, t: int) -> float:
        """Rate at step ``t`` counted from the end of warm-up."""
        for period, weight in zip(self.periods, self.restart_weights):
            if t < period:
                top = self.base_lr * weight
                return self.eta_min + (top - self.eta_min) * 0.5 * (1.0 + math.cos(math.pi * t / period))
            t -= period
        return self.eta_min

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.cosine(0) * (step + 1) / self.warmup_steps
        return self.cosine(step - self.warmup_steps)


def build_schedule(schedule_cfg: dict | None, base_lr: float, total_steps: int) -> CosineRestarts:
    """From ``cfg["train"]["schedule"]``: ``{name: cosine_restarts | constant, periods, restart_weights,
    eta_min, warmup_steps}``; ``periods`` defaults to one cycle over ``total_steps``."""
    cfg = dict(schedule_cfg or {})
    name = cfg.get("name", "cosine_restarts")
    if name == "constant":
        return CosineRestarts(base_lr, [max(1, total_steps)], eta_min=base_lr,
                              warmup_steps=int(cfg.get("warmup_steps", 0)))
    if name != "cosine_restarts":
        raise ConfigError(f"train.schedule.name must be 'cosine_restarts' or 'constant', got {name!r}")
    return CosineRestarts(
        base_lr=float(base_lr),
        periods=list(cfg.get("periods") or [max(1, total_steps)]),
        restart_weights=[float(w) for w in cfg.get("restart_weights") or []],
        eta_min=float(cfg.get("eta_min", 0.0)),
        warmup_steps=int(cfg.get("warmup_steps", 0)),
    )
