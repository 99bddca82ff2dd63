"""Training NR-IQA models: the kit's own networks on IQA datasets.

- :func:`distortion_set` — the embedded KADID-style set (pseudo-score + level-rank labels)
- :func:`train_iqa` — train cnniqa / wadiqam / dbcnn / vitiqa (or ``disc-<kind>``), report
  SRCC / PLCC / KRCC on held-out content and install the checkpoint to ``weights_dir()/kit/``
- :func:`evaluate_iqa` — held-out metrics of a trained network
- :mod:`nriqa.iqa.nets` — ``stlpips-alex`` / ``stlpips-vgg`` heads on ST-LPIPS's trunk (and its trained state)
- :mod:`nriqa.iqa.transfer` — a GAN run's discriminator (kind, options, state) for ``disc-<kind>`` initialisation

The networks live in :mod:`nriqa.models.iqa_nets`; an installed checkpoint is the quality
measure ``<arch>@<dataset>`` (:mod:`nriqa.quality.kit`).
"""
from __future__ import annotations

from nriqa.data.iqa_sets import IQASet, embedded_distortion_set, load_iqa_dataset
from nriqa.iqa.iqa_training import evaluate_iqa, train_iqa


def distortion_set(split: str = "train", **kw) -> IQASet:
    """The embedded distortion set for ``split`` (see ``nriqa.data.iqa_sets.embedded_distortion_set``)."""
    return embedded_distortion_set(split, **kw)


__all__ = ["IQASet", "distortion_set", "evaluate_iqa", "load_iqa_dataset", "train_iqa"]
