"""Adversarial losses on discriminator logits, and the AdversarialTerm used by the trainer.

Logits are raw discriminator outputs of any shape (``(N,1)`` global, ``(N,1,h,w)`` patch or
pixel maps); every loss averages over all elements.  ``softplus(-z) = BCE-with-logits(z, 1)``
and ``softplus(z) = BCE-with-logits(z, 0)``.  All losses are lower-is-better for the side
that minimises them:

============== ===================================================== ==========================================
loss           discriminator loss                                    generator loss
============== ===================================================== ==========================================
vanilla        softplus(-real) + softplus(fake)                      softplus(-fake)  (non-saturating)
lsgan          (real - 1)^2 + fake^2                                 (fake - 1)^2
hinge          relu(1 - real) + relu(1 + fake)                       -fake
relativistic   softplus(-(real - mean fake)) + softplus(fake - mean   (softplus(-(fake - mean real)) +
(RaGAN, avg)   real), halved                                          softplus(real - mean fake)) / 2
============== ===================================================== ==========================================

(each term is a mean over elements; "mean fake" / "mean real" is the mean logit over the
whole batch, as in the relativistic average GAN.)
"""
from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nriqa.losses._checks import LossInputError, check_in_unit_range, check_rank, frames

LOSSES = ("vanilla", "lsgan", "hinge", "relativistic")
_ALIASES = {"bce": "vanilla", "gan": "vanilla", "ls": "lsgan", "ragan": "relativistic",
            "relativistic_average": "relativistic"}


def canonical_loss(kind: str) -> str:
    """Canonical adversarial loss name (accepts a few aliases: bce, ls, ragan)."""
    key = str(kind).lower()
    key = _ALIASES.get(key, key)
    if key not in LOSSES:
        close = difflib.get_close_matches(key, LOSSES + tuple(_ALIASES), n=2, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown adversarial loss {kind!r}{hint} (known: {', '.join(LOSSES)})")
    return key


def _need(real: Tensor | None, kind: str) -> Tensor:
    if real is None:
        raise ValueError(f"the {kind} loss needs real_logits")
    return real


def discriminator_loss(fake_logits: Tensor, real_logits: Tensor, kind: str = "hinge") -> Tensor:
    """Discriminator loss (scalar): decreases as real logits rise and fake logits fall."""
    kind = canonical_loss(kind)
    fake, real = fake_logits.float(), _need(real_logits, kind).float()
    if kind == "vanilla":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        return (real - 1).pow(2).mean() + fake.pow(2).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return 0.5 * (F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean())


def generator_loss(fake_logits: Tensor, real_logits: Tensor | None = None, kind: str = "hinge") -> Tensor:
    """Generator loss (scalar): decreases as fake logits rise (``real_logits`` only for relativistic)."""
    kind = canonical_loss(kind)
    fake = fake_logits.float()
    if kind == "vanilla":
        return F.softplus(-fake).mean()
    if kind == "lsgan":
        return (fake - 1).pow(2).mean()
    if kind == "hinge":
        return -fake.mean()
    real = _need(real_logits, kind).float()
    return 0.5 * (F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean())


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on every parameter of ``module`` (restored after)."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class AdversarialTerm:
    """A discriminator plus an adversarial loss, on images ``(N,3,H,W)`` or video ``(B,T,3,H,W)``.

    Video is flattened to frames.  Both methods return *unweighted* scalars (like
    :meth:`Objective.terms`); multiply by :attr:`weight` for the generator objective.

    - :meth:`generator_loss` runs D with its parameters frozen (``requires_grad=False`` for the
      duration of the forward, then restored), so ``backward()`` reaches the generator only and
      never writes ``.grad`` of D; real images (relativistic only) are scored under ``no_grad``.
    - :meth:`discriminator_loss` detaches ``fake``, so it never reaches the generator.

    ``fake`` is scored as given (not clamped: out-of-range pixels are for D to notice).
    D's train/eval mode is left to the caller (the trainer).
    """

    def __init__(self, discriminator: nn.Module, loss: str = "hinge", weight: float = 0.01,
                 kind: str | None = None) -> None:
        if not isinstance(discriminator, nn.Module):
            raise TypeError(f"discriminator must be an nn.Module, got {type(discriminator).__name__}")
        self.discriminator = discriminator
        self.loss = canonical_loss(loss)
        self.weight = float(weight)
        self.kind = kind or getattr(discriminator, "kind", type(discriminator).__name__)

    def __repr__(self) -> str:
        return f"AdversarialTerm(kind={self.kind!r}, loss={self.loss!r}, weight={self.weight:g})"

    def to(self, device: str | torch.device) -> AdversarialTerm:
        self.discriminator.to(device)
        return self

    def parameters(self):
        """The discriminator's parameters (for its optimizer)."""
        return self.discriminator.parameters()

    @staticmethod
    def _images(x: Tensor, what: str, check_range: bool) -> Tensor:
        check_rank(x, what, channels=3)
        if check_range:
            check_in_unit_range(x, what)
        return frames(x)

    def generator_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        """Unweighted generator loss; gradients flow to ``fake`` only, never into D's ``.grad``."""
        fake = self._images(fake, "fake", check_range=False)
        real_logits = None
        if self.loss == "relativistic":
            if real is None:
                raise LossInputError("the relativistic loss needs real images for the generator step")
            real = self._images(real, "real", check_range=True)
            with torch.no_grad():
                real_logits = self.discriminator(real)
        elif real is not None:
            self._images(real, "real", check_range=False)
        with frozen(self.discriminator):
            fake_logits = self.discriminator(fake)
        return generator_loss(fake_logits, real_logits, self.loss)

    def discriminator_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """Unweighted discriminator loss; ``fake`` is detached (no gradient to the generator)."""
        fake = self._images(fake, "fake", check_range=False).detach()
        real = self._images(real, "real", check_range=True)
        if fake.shape != real.shape:
            raise LossInputError(f"fake and real must have the same shape, got {tuple(fake.shape)} "
                                 f"and {tuple(real.shape)}")
        return discriminator_loss(self.discriminator(fake), self.discriminator(real), self.loss)

