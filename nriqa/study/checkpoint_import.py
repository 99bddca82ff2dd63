"""Baselines from released checkpoints: ``python -m nriqa import-checkpoint MODEL FILE``.

The authors' files (paper profile) and the kit's own releases (``nriqa/models/kit_releases/``, written
by :mod:`nriqa.study.kit_release`; a profile with ``baselines: release`` imports them) take this path.

:func:`import_checkpoint` converts a published state_dict (BasicVSR++, VRT, VRT-16, iSeeBetter/RBPN;
the key layouts :func:`nriqa.models.convert.convert_state_dict` reads) into a *finished* baseline run
in the folder the study looks in (``run_dir(baseline_config(cfg, model))``), so every notebook
fine-tunes and judges it as it would a baseline it trained. The run holds ``config.yaml`` (the
baseline's config), one checkpoint (``params`` = ``params_ema`` = the converted weights, step 0) and
``done.json`` recording the source file and its sha256. A model the file leaves without a flow
network (RBPN: it used pyflow) gets SpyNet from the profile's ``spynet_weights``.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import torch

from nriqa.errors import CheckpointError, ConfigError, UserError
from nriqa.models import available, load_spynet_weights
from nriqa.models.convert import convert_state_dict
from nriqa.models.released import RELEASED, spynet_file
from nriqa.paths import atomic_write_text, file_sha256
from nriqa.train.checkpoint import save_checkpoint
from nriqa.train.generators import build_generator
from nriqa.train.run_files import CONFIG_FILE, DONE_FILE, config_hash, model_name, run_is_done

from .runs import baseline_config, profile, run_dir

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


def import_checkpoint(cfg: Mapping[str, Any], model: str, file: str | Path) -> Path:
    """Turn the released checkpoint ``file`` of generator ``model`` into the finished baseline run of
    ``cfg`` (a profile resolved by :func:`nriqa.study.runs.profile`); returns its folder.

    Errors, before anything is written: an unknown model, a missing or unreadable file, weights that
    do not fit the profile's ``model_size`` (names the first mismatched keys), an existing run."""
    if model not in available():
        raise ConfigError(f"unknown generator {model!r}; available: {', '.join(available())}")
    bcfg = baseline_config(cfg, model)
    bcfg["model"], bcfg["model_size"] = model_name(bcfg)
    folder = run_dir(bcfg)
    if run_is_done(folder) or (folder / CONFIG_FILE).exists():
        raise UserError(f"{folder} already holds a baseline run; move it away to import {file} in its place")
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
    from nriqa import config as nconfig

    atomic_write_text(folder / CONFIG_FILE, nconfig.dump({**bcfg, "config_hash": chash}))
    done = {"step": 0, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config_hash": chash, "best_step": 0, "best_by": "imported", "imported_from": source}
    atomic_write_text(folder / DONE_FILE, json.dumps(done, indent=2))
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nriqa import-checkpoint",
                                 description="Make a released checkpoint the finished baseline run of a profile.")
    ap.add_argument("model", help=f"generator: {', '.join(available())}")
    ap.add_argument("file", help="the authors' .pth (python -m nriqa weights fetch MODEL downloads it)")
    ap.add_argument("--profile", default="paper", help="profile whose baseline run the file becomes (default: paper)")
    ap.add_argument("--run-root", default=None, help="runs folder (default: nriqa.paths.runs_dir())")
    ap.add_argument("--seed", type=int, default=None, help="seed of the baseline run (default: the profile's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="profile override")
    a = ap.parse_args(argv)
    from nriqa.config import parse_overrides

    cfg = profile(a.profile, parse_overrides(a.set) or None, seed=a.seed, run_root=a.run_root)
    folder = import_checkpoint(cfg, a.model, a.file)
    print(folder)
    return 0
