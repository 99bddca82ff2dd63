"""A state_dict file becomes a finished run folder: the core of ``import-checkpoint`` (published
checkpoints in their authors' key layouts, converted by :func:`nriqa.models.convert.convert_state_dict`,
or the kit's own releases, already in nriqa's layout).

The run holds ``config.yaml`` (the given config), one checkpoint (``params`` = ``params_ema`` = the
weights, step 0) and ``done.json`` recording the source file and its sha256. A model the file leaves
without a flow network (RBPN: it used pyflow) gets SpyNet from the config's ``spynet_weights``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import torch

from nriqa.config import dump as dump_config
from nriqa.errors import CheckpointError, ConfigError
from nriqa.models import load_spynet_weights
from nriqa.models.convert import convert_state_dict
from nriqa.models.released import RELEASED, spynet_file
from nriqa.paths import atomic_write_text, file_sha256

from .checkpoint import save_checkpoint
from .generators import build_generator
from .run_files import CONFIG_FILE, DONE_FILE, config_hash

#: reference keys that are not weights of the generator (MMEditing's iteration counter)
IGNORED_KEYS = ("step_counter",)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} not found (`python -m nriqa weights fetch NAME` "
                                f"downloads a published one: {', '.join(RELEASED)})")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load fails in many ways on a foreign file
        raise CheckpointError(f"checkpoint {path} cannot be loaded as a state_dict: "
                              f"{' '.join(str(err).split())[:200]}") from err
    if not isinstance(sd, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(sd).__name__}, not a state_dict")
    return sd


def write_imported_run(bcfg: Mapping[str, Any], folder: Path, file: str | Path) -> Path:
    """Write the weights of ``file`` as the finished run ``folder`` of config ``bcfg`` (its ``model``
    and ``model_size`` set); returns ``folder``. Errors before anything is written: a missing or
    unreadable file, weights that do not fit the model at that size (names the first mismatched keys)."""
    model = bcfg["model"]
    path = Path(file).expanduser()
    sd = _read_state_dict(path)
    net = build_generator(bcfg, pretrained=False)
    expected = net.state_dict()
    # the kit's own releases (nriqa.study.kit_release) are in nriqa's key layout already
    ours = sd if set(sd) == set(expected) else convert_state_dict(model, sd)
    ours = {k: v for k, v in ours.items() if k not in IGNORED_KEYS}
    buffers = {k for k, _ in net.named_buffers()}
    unexpected = sorted(set(ours) - set(expected))
    missing = sorted(set(expected) - set(ours) - buffers)
    flow_from = None
    if missing and all(k.startswith("spynet.") for k in missing):
        flow_from = spynet_file(bcfg.get("spynet_weights"))
        if flow_from is None:
            raise ConfigError(f"{path} has no flow network weights ({len(missing)} spynet.* keys); set the "
                              "profile's spynet_weights (e.g. --set spynet_weights=spynet) to add SpyNet's")
        load_spynet_weights(net.spynet, flow_from)
        ours.update({k: v for k, v in net.state_dict().items() if k.startswith("spynet.")})
        missing = []
    wrong = [k for k in ours if k in expected and ours[k].shape != expected[k].shape]
    if unexpected or missing or wrong:
        detail = "; ".join(f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for what, keys in (("unexpected keys", unexpected), ("missing keys", missing),
                                              ("other shapes", [f"{k} {tuple(ours[k].shape)} vs "
                                                                f"{tuple(expected[k].shape)}" for k in wrong]))
                           if keys)
        raise CheckpointError(f"{path} does not fit {model} at model_size={bcfg['model_size']!r} ({detail}); "
                              "released checkpoints are paper-size: use --profile paper")
    net.load_state_dict(ours, strict=False)   # buffers (SpyNet mean/std, VRT's indices) are recomputed
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}
    source = {"file": str(path.resolve()), "sha256": file_sha256(path), "model": model,
              "spynet_from": str(flow_from) if flow_from else None}
    chash = config_hash(bcfg)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder, {"step": 0, "params": params, "params_ema": params, "config_hash": chash,
                             "model": bcfg["model"], "model_size": bcfg["model_size"], "imported_from": source},
                    keep_last=1, is_best=True)
    atomic_write_text(folder / CONFIG_FILE, dump_config({**bcfg, "config_hash": chash}))
    done = {"step": 0, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config_hash": chash, "best_step": 0, "best_by": "imported", "imported_from": source}
    atomic_write_text(folder / DONE_FILE, json.dumps(done, indent=2))
    return folder
