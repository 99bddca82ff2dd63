"""Tiny stand-ins for the trainer's own mechanics tests (resume, NaN guard, EMA, DDP, balancing).

Only the trainer's bookkeeping is under test with these; tests/test_train_real.py runs the real
generator, sampler and objective. This module holds no tests.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ToyVSR(nn.Module):
    """(B,T,3,h,w) -> (B,T,3,4h,4w): nearest upsampling plus a learned residual (optional dropout)."""

    def __init__(self, width: int = 8, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Conv2d(width, 3 * 16, 3, padding=1), nn.PixelShuffle(4))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        b, t = lr.shape[:2]
        x = lr.flatten(0, 1)
        y = F.interpolate(x, scale_factor=4, mode="nearest") + 0.1 * self.body(x)
        self.calls += 1
        return y.view(b, t, *y.shape[1:])


class ToySampler:
    """Deterministic in (seed, step): the same step always gives the same batch."""

    def __init__(self, batch_size: int = 4, num_frames: int = 2, lr_patch: int = 6, seed: int = 0):
        self.batch_size, self.num_frames, self.lr_patch, self.seed = batch_size, num_frames, lr_patch, seed

    def batch(self, step: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 100_003 + step)
        hr = torch.rand(self.batch_size, self.num_frames, 3, 4 * self.lr_patch, 4 * self.lr_patch, generator=g)
        lr = F.avg_pool2d(hr.flatten(0, 1), 4).view(self.batch_size, self.num_frames, 3, self.lr_patch, self.lr_patch)
        return {"lr": lr, "hr": hr}


class Crash(Exception):
    """Simulates a killed process in the middle of a run."""


class ToyObjective:
    """Charbonnier plus an optional 'bright' term (mean darkness of the output, a stand-in for an NR term).

    ``nan_steps``: calls of :meth:`terms` whose loss is NaN; ``nan_grad_steps``: calls whose loss is
    finite but whose gradient is NaN; ``crash_at``: the call that raises :class:`Crash`.
    """

    def __init__(self, spec: dict | None = None, *, nan_steps=(), nan_grad_steps=(), crash_at=None,
                 adversarial=None):
        spec = dict(spec or {"charbonnier": 1.0})
        self.balancing = spec.pop("weights", None)
        self.weights = {k: float(v) for k, v in spec.items()}
        self.nan_steps, self.nan_grad_steps, self.crash_at = set(nan_steps), set(nan_grad_steps), crash_at
        self.adversarial = adversarial
        self.calls = 0

    def terms(self, pred: torch.Tensor, target: torch.Tensor) -> dict:
        call, self.calls = self.calls, self.calls + 1
        if call == self.crash_at:
            raise Crash(f"simulated crash at call {call}")
        out = {}
        if "charbonnier" in self.weights:
            out["charbonnier"] = torch.sqrt((pred - target) ** 2 + 1e-6).mean()
        if "bright" in self.weights:
            out["bright"] = (1.0 - pred.clamp(0, 1)).mean()
        first = next(iter(out))
        if call in self.nan_steps:
            out[first] = out[first] * float("nan")
        if call in self.nan_grad_steps:  # value 0, gradient NaN (sqrt at 0)
            out[first] = out[first] + torch.sqrt((pred - pred.detach()).abs().sum())
        return out

    def __call__(self, pred, target):
        terms = self.terms(pred, target)
        return sum(self.weights[k] * v for k, v in terms.items()), terms


class ToyDiscriminator(nn.Module):
    """(N,3,H,W) -> patch logits (N,1,H/4,W/4)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(8, 1, 4, stride=2, padding=1))

    def forward(self, x):
        return self.net(x)


def toy_cfg(**train) -> dict:
    """A resolved-profile-shaped config for the doubles."""
    t = {"steps": 8, "objective": {"charbonnier": 1.0},
         "optimizer": {"name": "adam", "lr": 1e-3, "betas": [0.9, 0.99]},
         "schedule": {"name": "cosine_restarts", "periods": [4, 4], "restart_weights": [1.0, 0.5],
                      "eta_min": 1e-5, "warmup_steps": 2},
         "grad_clip": 1.0, "ema_decay": 0.9, "log_every": 2, "gradnorm_every": 3, "ckpt_every": 4,
         "keep_last": 2, "max_nonfinite": 3}
    t.update(train)
    return {"name": "toy", "seed": 0, "device": "cpu", "model": "toy", "data": {}, "train": t}
