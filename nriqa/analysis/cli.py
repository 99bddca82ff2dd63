"""``python -m nriqa eval RUN_DIR... [--panel demo] [--profile demo] [--baseline RUN_DIR] [--csv out.csv]``

Evaluates each run folder (EMA generator) on the profile's test set with a quality panel,
prints the mean score per run and measure (and the relative gain over ``--baseline`` when
given), and writes the tidy per-frame table to ``--csv``.  Scores are cached per run under
``RUN_DIR/eval/``, so evaluating again is free until the checkpoint changes.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd
import yaml

from nriqa import config, data
from nriqa.analysis.evaluation import check_panel_names, evaluate, resolve_panel
from nriqa.analysis.gain import gain_matrix, relative_gain
from nriqa.compute import resolve_device, use_job_numerics
from nriqa.paths import atomic_path


def _run_label(run_dir: Path) -> tuple[str, str]:
    """(run name, model name) of a run folder, from its config.yaml when readable."""
    model = "model"
    cfg_path = run_dir / "config.yaml"
    if cfg_path.exists():
        cfg = yaml.safe_load(cfg_path.read_text()) or {}
        model = cfg.get("model") or (cfg.get("models") or ["model"])[0]
    return run_dir.name, str(model)


def summary_tables(df: pd.DataFrame, baseline: str | None = None) -> dict[str, pd.DataFrame]:
    """``{"scores": run x measure mean raw scores, "gain": run x measure relative gain + average}``."""
    out = {"scores": df.pivot_table(index="run", columns="measure", values="score", aggfunc="mean", sort=False)}
    if baseline is not None and df["run"].nunique() > 1:
        out["gain"] = gain_matrix(relative_gain(df, baseline, by=("measure",)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nriqa eval",
                                     description=__doc__.split("\n\n")[1].replace("``", ""))
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders to evaluate")
    parser.add_argument("--panel", default="demo",
                        help=f"a profile's panel ({', '.join(config.available_profiles())}: measures whose "
                             "weights are missing are skipped and listed) or comma-separated measure names "
                             "(each required: a missing one is an error)")
    parser.add_argument("--profile", default="demo", help="profile whose data section defines the test set")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile value, e.g. --set data.test_max_frames=2")
    parser.add_argument("--baseline", type=Path, help="baseline run folder (added if not listed)")
    parser.add_argument("--csv", type=Path, help="write the tidy per-frame table here")
    parser.add_argument("--device", default="auto", help="auto (cuda when present, else cpu), cpu, cuda or cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    runs = list(dict.fromkeys([*([args.baseline] if args.baseline else []), *args.runs]))
    bad = [str(r) for r in runs if not ((r / "config.yaml").exists() or (r / "checkpoints").is_dir())]
    if bad:
        print(f"nriqa eval: not run folders (no config.yaml or checkpoints/): {bad}", file=sys.stderr)
        return 2
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        print(f"nriqa eval: run folder names must be distinct, got {names}", file=sys.stderr)
        return 2
    cfg = config.load_profile(args.profile, args.overrides)
    panel = resolve_panel(args.panel)
    if args.panel not in config.available_profiles():   # named measures are required, never skipped
        missing = check_panel_names(panel)
        if missing:
            print(f"nriqa eval: measure(s) {', '.join(missing)} cannot run: their weights are not on disk "
                  "(`python -m nriqa weights` says which file goes where; a kit model trains with "
                  "`python -m nriqa train-iqa <arch>`); a profile's panel (--panel demo) skips them instead",
                  file=sys.stderr)
            return 2
    device = resolve_device(args.device)
    use_job_numerics({**cfg, "device": device})  # the profile's threads: the same scores on any machine
    if cfg["data"].get("eval_sets"):
        test_sets = data.build_test_sets(cfg["data"])  # paper: {dataset: clips}, e.g. REDS4 + Vid4
    else:
        test_sets = {str(cfg["data"].get("source", "test")): data.build_test_set(cfg["data"])}

    tables = []
    for run_dir in runs:
        run, model = _run_label(run_dir)
        for dataset, test_set in test_sets.items():
            with warnings.catch_warnings():  # skipped measures are listed once below
                warnings.simplefilter("ignore", UserWarning)
                tables.append(evaluate(run_dir, test_set, panel, run=run, model=model, dataset=dataset,
                                       cache_dir=run_dir / "eval", device=device,
                                       progress=not args.no_progress))
    df = pd.concat(tables, ignore_index=True)
    skipped = sorted({s for t in tables for s in t.attrs.get("skipped", [])})

    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.precision", 4):
        tabs = summary_tables(df, args.baseline.name if args.baseline else None)
        sizes = ", ".join(f"{d}: {len(t)} clips" for d, t in test_sets.items())
        print(f"mean scores ({sizes})")
        print(tabs["scores"].to_string())
        if "gain" in tabs:
            print(f"\nrelative gain over {args.baseline.name} (positive = better)")
            print(tabs["gain"].to_string(float_format=lambda v: f"{100 * v:+.1f}%"))
    if skipped:
        print(f"\nskipped (weights missing): {', '.join(skipped)}")
    if args.csv:
        with atomic_path(args.csv) as tmp:
            df.to_csv(tmp, index=False)
        print(f"\nwrote {args.csv} ({len(df)} rows)")
    return 0
