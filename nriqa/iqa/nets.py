"""IQA networks the trainer can build: the kit's own (:func:`nriqa.models.iqa_nets.build_arch`)
plus heads on ST-LPIPS's perceptually trained trunk (needs the quality layer, so it lives here).

- ``stlpips-alex`` / ``stlpips-vgg``: :class:`nriqa.models.iqa_nets.TrunkIQA` on the shift-tolerant
  AlexNet / VGG-16 trunk of ST-LPIPS (five pooled taps, linear head), *randomly initialised*;
  :func:`stlpips_trunk_state` is the trained trunk (from the stlpips-pytorch wheel's file, loaded
  by :func:`nriqa.quality.stlpips_measure.build_stlpips`) to pass as ``init_from``.
  Input: ``x`` in [0, 1] -> ``2x - 1`` -> ST-LPIPS's per-channel scaling (buffers, filled by the init).
"""
from __future__ import annotations

import torch
from torch import nn

from nriqa.models.iqa_nets import ARCHS, TrunkIQA, build_arch
from nriqa.quality import stlpips_measure as st

TRUNK_ARCHS = ("stlpips-alex", "stlpips-vgg")


class _ToSigned(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1


def _stlpips_net(arch: str) -> str:
    return arch.split("-", 1)[1]


def known_arch(arch: object) -> bool:
    """Whether :func:`build_iqa_net` builds ``arch``."""
    return isinstance(arch, str) and (arch in ARCHS or arch in TRUNK_ARCHS or arch.startswith("disc-"))


def build_iqa_net(arch: str, **options) -> nn.Module:
    """An untrained IQA network ``arch``: one of ``models.iqa_nets.ARCHS``, ``disc-<kind>``
    (``options``: the discriminator's ``size`` and overrides) or :data:`TRUNK_ARCHS`."""
    if arch in TRUNK_ARCHS:
        if options:
            raise ValueError(f"IQA arch {arch!r} takes no options, got {sorted(options)}")
        layers, cuts, channels = st.alex_layers() if arch == "stlpips-alex" else st.vgg_layers()
        return TrunkIQA(st.Trunk(layers, cuts), channels, prepare=nn.Sequential(_ToSigned(), st.Scaling()))
    return build_arch(arch, **options)


def stlpips_trunk_state(arch: str = "stlpips-alex") -> dict[str, torch.Tensor]:
    """ST-LPIPS's trained trunk and input scaling as a state dict of :func:`build_iqa_net` ``(arch)``
    (keys ``trunk.*``, ``prepare.1.*``). Raises ``WeightsMissingError`` (the ``pip install``
    command) when the stlpips-pytorch wheel's file is absent."""
    if arch not in TRUNK_ARCHS:
        raise ValueError(f"no ST-LPIPS trunk for IQA arch {arch!r}; choose one of {TRUNK_ARCHS}")
    model = st.build_stlpips(_stlpips_net(arch))
    state = {f"trunk.{k}": v.clone() for k, v in model.net.state_dict().items()}
    state.update({f"prepare.1.{k}": v.clone() for k, v in model.scaling_layer.state_dict().items()})
    return state
