"""Pixel fidelity loss: Charbonnier (a smooth L1)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from nriqa.losses._checks import LossInputError, check_rank, check_same_shape, check_values


class Charbonnier(nn.Module):
    """``mean(sqrt((pred - target)**2 + eps**2))`` over every element.

    Eps convention: ``eps`` is in intensity units and is *squared* inside the root, so a
    perfect prediction scores exactly ``eps`` and large errors approach ``|pred - target|``
    (default ``eps=1e-6``; BasicSR-style code that adds ``eps`` un-squared with ``1e-12``
    is the same loss).  Lower is better, ``>= eps``.

    Shapes: ``pred``/``target`` ``(N,C,H,W)`` or ``(B,T,C,H,W)``, same shape, any ``C``.
    ``target`` must be finite in ``[0, 1]``; ``pred`` must be finite (it may leave [0, 1]).
    """

    def __init__(self, eps: float = 1e-6, *, validate: bool = True) -> None:
        super().__init__()
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
            raise LossInputError(f"Charbonnier eps must be a number in (0, 1] (intensity units; "
                                 f"typical 1e-6 .. 1e-3), got {eps!r}")
        self.eps = float(eps)
        self.validate = validate

    def forward(self, pred: Tensor, target: Tensor | None = None) -> Tensor:
        if target is None:
            raise LossInputError("Charbonnier is a full-reference loss: target is required")
        if self.validate:
            check_rank(pred, "pred")
            check_rank(target, "target")
            check_same_shape(pred, target)
            check_values(pred, target)
        diff = pred.float() - target.float()  # float32 even under autocast
        return torch.sqrt(diff * diff + self.eps ** 2).mean()

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"
