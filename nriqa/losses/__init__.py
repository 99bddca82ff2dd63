"""Lower-is-better objectives built from quality measures, pixel and adversarial terms.

- :class:`Charbonnier`    smooth L1 pixel loss, ``mean(sqrt((p - t)^2 + eps^2))``
- :class:`QualityLoss`    any differentiable :mod:`nriqa.quality` measure as a loss
- :class:`Objective`      weighted sum of named terms from a spec dict (plus an optional GAN term)
- :class:`TrainingObjective`  what the trainer reads of an objective (a Protocol :class:`Objective` satisfies)
- :mod:`nriqa.losses.adversarial`  vanilla / lsgan / hinge / relativistic losses, AdversarialTerm

Shapes: images ``(N,3,H,W)`` or video ``(B,T,3,H,W)`` (flattened to frames), RGB in ``[0, 1]``.
"""
from nriqa.losses._checks import LossInputError, UnknownNameError
from nriqa.losses.adversarial import LOSSES as ADVERSARIAL_LOSSES
from nriqa.losses.adversarial import AdversarialTerm, discriminator_loss, generator_loss
from nriqa.losses.objective import Objective, TrainingObjective, build_adversarial, check_training_objective
from nriqa.losses.pixel import Charbonnier
from nriqa.losses.quality_loss import QualityLoss

__all__ = ["ADVERSARIAL_LOSSES", "AdversarialTerm", "Charbonnier", "LossInputError", "Objective",
           "QualityLoss", "TrainingObjective", "UnknownNameError", "build_adversarial", "check_training_objective",
           "discriminator_loss", "generator_loss"]
