"""The generator a run trains: build it from a config, load it trained from a run folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from nriqa.errors import ConfigError

from .checkpoint import load_checkpoint
from .run_files import model_name, read_config


def build_generator(cfg: Mapping[str, Any], *, pretrained: bool = True) -> nn.Module:
    """The generator a config names (``cfg["model"]`` or ``cfg["models"][0]``, ``cfg["model_size"]``);
    with ``pretrained``, its SpyNet starts from ``cfg["spynet_weights"]`` (a published checkpoint's
    name, see :mod:`nriqa.models.released`, or a path) when the config names one."""
    # imported here, not at the top: nriqa.models imports torchvision (seconds), which a run with its own model skips
    from nriqa import models
    from nriqa.models.released import spynet_file

    name, size = model_name(cfg)
    if name not in models.available():
        raise ConfigError(f"unknown generator model={name!r}; available: {models.available()} "
                          "(set it with --model NAME or --set model=NAME)")
    spynet = spynet_file(cfg.get("spynet_weights")) if pretrained else None
    try:
        return models.build(name, size, **({"spynet_path": str(spynet)} if spynet else {}))
    except ValueError as err:
        if "size" in str(err):  # an unknown model_size
            raise ConfigError(f"model_size={size!r}: {err}") from None
        raise




def load_generator(run_dir: str | Path, ema: bool = True, device: str | torch.device = "cpu", *,
                   which: str = "latest", model: nn.Module | None = None) -> nn.Module:
    """The trained generator of a run, in ``eval()`` mode on ``device``.

    ``ema=True`` loads the exponential moving average of the weights (``params_ema``: a warm-up
    EMA unless ``train.ema_warmup`` is false, see ``done.json``'s ``evaluated``), else the raw
    ``params``; ``which`` picks ``latest``, ``best`` or ``step_000100``. ``model`` loads into
    a module you built yourself instead of the one ``config.yaml`` names.
    """
    ckpt = load_checkpoint(Path(run_dir), which)
    if model is None:
        model = build_generator(read_config(run_dir), pretrained=False)   # the checkpoint has every weight
    key = "params_ema" if ema and ckpt.get("params_ema") is not None else "params"
    model.load_state_dict(ckpt[key])
    return model.to(device).eval()
