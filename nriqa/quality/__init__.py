"""Every image/video quality measure behind one registry.

>>> from nriqa import quality
>>> m = quality.create("ssim")            # frozen Measure; raw scores, card.higher_better
>>> s = m(pred, ref=gt)                   # (N,) per image / (B*T,) per frame
>>> loss = quality.to_loss(s, m.card)     # lower is better, ~[0, 1]

``quality.cards()`` lists name, FR/NR, direction, range, differentiable, min size and the
weight files each measure needs (``card.present``). Nothing downloads implicitly:
``python -m nriqa weights fetch NAME`` is the only thing that does.

Layout: :mod:`~nriqa.quality.base` (Card, WeightFile, register), one module per backend
(``niqe``, ``brisque_measure``, ``lpips_measure``, ``stlpips_measure``, ``mdtvsfa``, ``dists_family``,
``pyiqa_measures``, ``kit``),
:mod:`~nriqa.quality.registry` (imports the backends; lookup, create, to_loss).
"""
from nriqa.quality.base import Card, WeightFile, WeightsMissingError, register, torch_hub_dir
from nriqa.quality.kit import KitCheckpointError, register_kit_models
from nriqa.quality.registry import (
    Measure,
    MeasureInputError,
    UndefinedScoreError,
    card,
    cards,
    create,
    loss_mapping,
    names,
    offline_names,
    to_loss,
)

__all__ = [
    "Card", "KitCheckpointError", "Measure", "MeasureInputError", "UndefinedScoreError", "WeightFile",
    "WeightsMissingError", "card", "cards", "create", "loss_mapping", "names", "offline_names", "register",
    "register_kit_models", "to_loss", "torch_hub_dir",
]
