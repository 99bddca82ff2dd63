"""Kit-trained NR-IQA models and IQA datasets (issue 10).

- :func:`distortion_set` — the embedded KADID-style set (pseudo-score + level-rank labels)
- :func:`train_iqa` — train cnniqa / wadiqam / dbcnn / vitiqa (or ``disc-<kind>``) and report
  SRCC / PLCC / KRCC on held-out content
- :func:`register_kit_models` — register ``weights_dir()/kit/*.pt`` as quality measures
  (``cnniqa@embedded`` ...); the quality registry calls it lazily.
"""
from __future__ import annotations

from nriqa.data.iqa_sets import IQASet, embedded_distortion_set, load_iqa_dataset
from nriqa.iqa.archs import ARCHS, build_arch, count_parameters
from nriqa.iqa.kit import load_kit_model, register_kit_models
from nriqa.iqa.train import evaluate_iqa, train_iqa


def distortion_set(split: str = "train", **kw) -> IQASet:
    """The embedded distortion set for ``split`` (see ``nriqa.data.iqa_sets.embedded_distortion_set``)."""
    return embedded_distortion_set(split, **kw)


__all__ = ["IQASet", "ARCHS", "build_arch", "count_parameters", "distortion_set", "evaluate_iqa",
           "load_iqa_dataset", "load_kit_model", "register_kit_models", "train_iqa"]
