"""What a trained GAN run hands to an IQA model: its discriminator's kind, construction options
and trained state, read from the run folder (``config.yaml`` and ``checkpoints/latest.pt``).

The IQA backbone is then built as ``disc-<kind>`` with the same options (same size and overrides as
the run's ``train.objective.gan`` spec), so that its backbone loads whole
(:func:`nriqa.iqa.iqa_training.load_init` refuses less than 95 % of the backbone tensors).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nriqa.errors import CheckpointError, ConfigError
from nriqa.train.checkpoint import load_checkpoint
from nriqa.train.run_files import read_config

_TERM_KEYS = ("weight", "discriminator", "loss")  # the GAN spec's keys that do not build the network


@dataclass
class GanDiscriminator:
    """``kind`` ("patchgan", ...), ``options`` (``size`` and constructor overrides), ``state`` (its state dict)."""

    kind: str
    options: dict
    state: dict[str, torch.Tensor]

    @property
    def arch(self) -> str:
        return f"disc-{self.kind}"


def discriminator_spec(run_dir: str | Path) -> tuple[str, dict]:
    """``(kind, options)`` of the GAN run ``run_dir``'s discriminator, from its ``config.yaml``
    alone (no checkpoint is read): what the IQA backbone ``disc-<kind>`` is built with."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    spec = ((cfg.get("train") or {}).get("objective") or {}).get("gan")
    if not isinstance(spec, dict):
        raise ConfigError(f"{run_dir / 'config.yaml'}: train.objective has no 'gan' term; "
                          "is this a GAN fine-tune's run folder?")
    options = {k: v for k, v in spec.items() if k not in _TERM_KEYS}
    options.setdefault("size", "tiny")
    return str(spec.get("discriminator", "patchgan")), options


def gan_discriminator(run_dir: str | Path) -> GanDiscriminator:
    """The trained discriminator of the GAN run ``run_dir``, with the options it was built with."""
    run_dir = Path(run_dir)
    kind, options = discriminator_spec(run_dir)
    ckpt = load_checkpoint(run_dir)
    state = ckpt.get("discriminator")
    if not isinstance(state, dict):
        raise CheckpointError(f"{run_dir}/checkpoints/latest.pt holds no 'discriminator' state; "
                              "re-run the GAN fine-tune to write one")
    return GanDiscriminator(kind, options, state)
