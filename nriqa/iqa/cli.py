"""``python -m nriqa train-iqa ARCH[@DATASET] [--profile demo] [--steps N] [--dataset D] [--root DIR]``

Trains a kit NR-IQA model (cnniqa | wadiqam | dbcnn | vitiqa, optionally @embedded-a | @embedded-b |
@embedded | @<published set>; or all: the profile's iqa.models), caches the run under
``runs/<profile>/iqa/<arch>@<dataset>-<kit set>/``, installs the checkpoint to the profile's kit set and
prints held-out SRCC / PLCC / KRCC, training time and parameter count.
"""
from __future__ import annotations

import argparse
import json
import sys

from nriqa.config import load_profile
from nriqa.errors import ConfigError
from nriqa.iqa.iqa_training import iqa_config, kit_models, kit_name, kit_set_key, split_model, train_iqa
from nriqa.models.iqa_nets import ARCHS
from nriqa.paths import runs_dir
from nriqa.quality.kit import use_kit_set


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nriqa train-iqa",
                                 description=__doc__.split("\n\n")[1].replace("``", ""))
    ap.add_argument("arch", help=f"one of {list(ARCHS)} or 'disc-<kind>', optionally @<dataset> (e.g. "
                                 "cnniqa@embedded-a), or 'all' (the profile's iqa.models)")
    ap.add_argument("--profile", default="demo", help="bundled profile name (demo, smoke, paper) or a YAML path")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the profile's iqa steps)")
    ap.add_argument("--dataset", default=None,
                    help="dataset of an ARCH without @DATASET: embedded-a | embedded-b (halves of the embedded "
                         "set) | embedded (whole) | koniq10k | kadid10k | live | csiq | tid2013 | pipal | spaq | "
                         "live-challenge (default: the profile's iqa.dataset)")
    ap.add_argument("--root", default=None, help="dataset folder in its published layout")
    ap.add_argument("--run-dir", default=None, help="default runs/<profile>/iqa/<arch>@<dataset>")
    ap.add_argument("--init-from", default=None, help="state dict / discriminator checkpoint to initialise from")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="profile override, e.g. iqa.lr=5e-4")
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = ap.parse_args(argv)

    cfg = load_profile(args.profile, args.set)
    iqa = cfg.setdefault("iqa", {})
    if args.steps is not None:   # an explicit --steps wins over per-arch step counts too
        iqa["steps"] = args.steps
        for over in (iqa.get("per_arch") or {}).values():
            over.pop("steps", None)
    if args.dataset is not None:
        iqa["dataset"] = args.dataset
    if args.root is not None:
        iqa["root"] = args.root
    archs = list(iqa.get("models", ARCHS)) if args.arch == "all" else [args.arch]
    try:
        kit_models({"iqa": {**iqa, "models": archs}})   # every entry: a known arch and dataset, no name twice
    except ConfigError as err:
        print(f"train-iqa: {err}", file=sys.stderr)
        return 2

    key = kit_set_key(cfg)
    use_kit_set(key)   # installed in the kit set of this config (the study's, for an unchanged profile)
    rows = []
    for arch in archs:
        name = kit_name(split_model(arch)[0], iqa_config(cfg, arch)["dataset"])
        run_dir = args.run_dir if (args.run_dir and len(archs) == 1) \
            else runs_dir() / cfg["name"] / "iqa" / f"{name}-{key}"
        m = train_iqa(arch, cfg, run_dir, init_from=args.init_from, progress=not args.no_progress)
        o = m["held_out"]["overall"]
        rows.append({"name": m["name"], "srcc": round(o["srcc"], 4), "plcc": round(o["plcc"], 4),
                     "krcc": round(o["krcc"], 4), "rank_acc": round(o.get("rank_acc", float("nan")), 4),
                     "train_s": m["train_seconds"], "train_cpu_s": m.get("train_cpu_seconds"),
                     "params": m["params"], "run_dir": str(run_dir)})
    for r in rows:
        print(json.dumps(r))
    return 0
