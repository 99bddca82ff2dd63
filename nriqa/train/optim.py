"""Optimizers: fused Adam/AdamW on every device, and the on-device skip of a non-finite step.

A skipped step must leave the parameters *and* the optimizer state (moments, step count) as they
were, without the host ever reading the "was it finite?" flag. The fused Adam/AdamW kernels take
a ``found_inf`` tensor (the hook ``torch.amp.GradScaler`` uses): when it is 1 they neither move
the parameters nor the moments, and they undo their step-count increment. ``step_unless_nonfinite``
sets that attribute; ``tests/test_train_optim.py`` fails if a torch release changes the protocol.
Fused Adam on the CPU arrived in torch 2.4, hence :data:`FUSED_MIN_TORCH`.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

#: first torch release with fused Adam/AdamW on the CPU as well as on CUDA
FUSED_MIN_TORCH = (2, 4)


def require_fused_adam(version: str | None = None) -> None:
    """Raise a clear error on a torch older than :data:`FUSED_MIN_TORCH` (``version``: for tests)."""
    version = str(version or torch.__version__)
    found = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", version).groups())
    if found < FUSED_MIN_TORCH:
        need = ".".join(map(str, FUSED_MIN_TORCH))
        raise RuntimeError(f"nriqa.train needs torch >= {need} (fused Adam/AdamW on every device skips a "
                           f"non-finite step without a host sync); this is torch {version}. "
                           f"Install a newer one, e.g. pip install 'torch>={need}'.")


def build_optimizer(opt_cfg: Mapping, groups: list[dict]) -> torch.optim.Optimizer:
    """``{name: adam | adamw, lr, betas, eps, weight_decay}`` -> a fused Adam/AdamW over ``groups``."""
    require_fused_adam()
    name = str(opt_cfg.get("name", "adam")).lower()
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    kw = dict(lr=float(opt_cfg.get("lr", 1e-3)), betas=tuple(float(b) for b in opt_cfg.get("betas", (0.9, 0.999))),
              eps=float(opt_cfg.get("eps", 1e-8)), weight_decay=float(opt_cfg.get("weight_decay", 0.0)))
    return cls(groups, fused=True, **kw)


def step_unless_nonfinite(opt: torch.optim.Optimizer, finite: torch.Tensor) -> None:
    """``opt.step()``, a no-op on parameters and state when the 0-dim bool ``finite`` is False (no host sync)."""
    opt.found_inf = (~finite).float()
    opt.step()
