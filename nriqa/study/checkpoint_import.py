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
from pathlib import Path
from typing import Any, Mapping

from nriqa.errors import ConfigError, UserError
from nriqa.models import available
from nriqa.train.imported_run import write_imported_run
from nriqa.train.run_files import CONFIG_FILE, model_name, run_is_done

from .runs import baseline_config, profile, run_dir


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
    return write_imported_run(bcfg, folder, file)


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
