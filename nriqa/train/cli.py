"""``python -m nriqa train PROFILE_OR_YAML [--set key=value ...] [--model NAME] [--run-dir DIR] [--init-from DIR]``

Trains (or resumes, or fine-tunes from a baseline run) the generator a profile names and
prints the run folder. Default run folder: ``runs/<profile>/<model>_<objective terms>``.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from nriqa import config as nconfig
from nriqa.paths import runs_dir

from .trainer import train


def _default_run_dir(cfg: dict) -> Path:
    terms = "+".join(k for k in cfg["train"]["objective"] if k not in {"weights", "gan"})
    model = cfg.get("model") or (cfg.get("models") or ["model"])[0]
    name = re.sub(r"[^A-Za-z0-9_.+@-]", "_", f"{model}_{terms}")
    return runs_dir() / str(cfg.get("name", "run")) / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nriqa train",
                                     description=__doc__.split("\n\n")[1].replace("``", ""))
    parser.add_argument("profile", help="bundled profile name (demo, smoke, paper) or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.steps=50 (repeatable)")
    parser.add_argument("--model", help="generator name (default: the profile's model or models[0])")
    parser.add_argument("--run-dir", type=Path, help="run folder (default: runs/<profile>/<model>_<terms>)")
    parser.add_argument("--init-from", type=Path, help="baseline run folder to fine-tune from")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    cfg = nconfig.load_profile(args.profile, args.overrides)
    if args.model:
        cfg["model"] = args.model
    run_dir = args.run_dir or _default_run_dir(cfg)
    out = train(cfg, run_dir, init_from=args.init_from, progress=not args.no_progress)
    print(out)
    return 0
