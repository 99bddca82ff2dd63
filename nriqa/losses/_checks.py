"""Input checks shared by every loss: clear errors before any compute.

Images are ``(N, C, H, W)`` and video ``(B, T, C, H, W)``, float RGB in ``[0, 1]``.
Value checks (finite, range) cost one device sync per call, so callers that check a
batch once (e.g. :class:`nriqa.losses.Objective`) build their terms with ``validate=False``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from nriqa.errors import UserError

#: slack allowed around [0, 1] for *targets* (data loaders and bicubic resizing overshoot a little)
RANGE_TOL = 1e-3


class LossInputError(UserError):
    """A loss received input of the wrong rank, shape, dtype, range or with non-finite values."""


class UnknownNameError(KeyError, UserError):
    """An objective term, measure or loss name that is not registered (message names the closest)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_rank(x: Tensor, what: str, channels: int | None = None) -> None:
    """``x`` must be a floating tensor of rank 4 ``(N,C,H,W)`` or 5 ``(B,T,C,H,W)``."""
    if not isinstance(x, Tensor):
        raise LossInputError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (4, 5):
        raise LossInputError(
            f"{what} must be images (N,C,H,W) or video (B,T,C,H,W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise LossInputError(f"{what} must be a floating tensor in [0, 1], got dtype {x.dtype}")
    if channels is not None and x.shape[-3] != channels:
        raise LossInputError(
            f"{what} must have {channels} channels at dim -3, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise LossInputError(f"{what} is empty (shape {tuple(x.shape)})")


def check_same_shape(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise LossInputError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")


def check_values(pred: Tensor | None, target: Tensor | None) -> None:
    """``pred`` must be finite; ``target`` finite and within ``[0, 1]`` (+- RANGE_TOL).

    ``pred`` may leave ``[0, 1]`` (generators are not clamped while training); quality
    losses clamp it before scoring.  One device sync for both tensors.
    """
    stats = []
    if pred is not None:
        stats.append(torch.isfinite(pred.detach()).all().float())
    if target is not None:
        t = target.detach()
        stats += [torch.isfinite(t).all().float(), t.amin().float(), t.amax().float()]
    if not stats:
        return
    values = torch.stack([s.to(stats[0].device) for s in stats]).tolist()
    if pred is not None:
        if values.pop(0) < 1:
            raise LossInputError("pred contains NaN or Inf values")
    if target is not None:
        finite, lo, hi = values
        if finite < 1:
            raise LossInputError("target contains NaN or Inf values")
        if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
            raise LossInputError(f"target must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")


def check_in_unit_range(x: Tensor, what: str) -> None:
    """``x`` finite and within ``[0, 1]`` (+- RANGE_TOL); one device sync."""
    t = x.detach()
    finite, lo, hi = torch.stack(
        [torch.isfinite(t).all().float(), t.amin().float(), t.amax().float()]).tolist()
    if finite < 1:
        raise LossInputError(f"{what} contains NaN or Inf values")
    if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
        raise LossInputError(f"{what} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")


def frames(x: Tensor) -> Tensor:
    """Flatten video ``(B,T,C,H,W)`` to frames ``(B*T,C,H,W)``; images pass through."""
    return x.flatten(0, 1) if x.dim() == 5 else x
