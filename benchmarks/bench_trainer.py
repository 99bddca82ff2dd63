"""Trainer speed: steps/s of the baseline objective vs the baseline plus an NR-IQA (or LPIPS) term,
and the extra cost of gradient balancing and conflict projection, side by side in one run.

    python benchmarks/bench_trainer.py                      # demo data, basicvsrpp tiny, CPU
    python benchmarks/bench_trainer.py --steps 20 --repeats 3 --device cuda

Every variant runs the real trainer (``nriqa.train.train``) on the same model, data and seed;
the speed of a variant is the median over its steady-state log intervals (the first interval,
with warm-up and first-call validation, is dropped) and over ``--repeats`` rounds, which are
interleaved so that load on a shared machine hits all variants alike.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from nriqa.compute import resolve_device
from nriqa.config import load_profile
from nriqa.train import read_log, train

BASE = {"charbonnier": 1.0}


def variants(nr_term: str, nr_weight: float, ref_term: str, ref_weight: float) -> dict[str, dict]:
    """name -> cfg["train"] overrides."""
    plus_nr = {**BASE, nr_term: nr_weight}
    return {
        "charbonnier": {"objective": BASE},
        f"+{nr_term}": {"objective": plus_nr},
        f"+{ref_term}": {"objective": {**BASE, ref_term: ref_weight}},
        f"+{nr_term} gradnorm every step": {
            "objective": {**plus_nr, "weights": "gradnorm"}, "gradnorm_every": 1,
            "balance": {"reference": "charbonnier", "shares": 0.1, "every": 1, "ema": 0.9}},
        f"+{nr_term} project_conflicts": {"objective": plus_nr, "project_conflicts": True},
    }


def run_variant(cfg: dict, overrides: dict, steps: int, warmup: int) -> list[float]:
    """Frames/s of each steady-state log interval."""
    cfg = {**cfg, "train": {**cfg["train"], **overrides, "steps": warmup + steps, "log_every": warmup,
                            "ckpt_every": 0, "gradnorm_every": overrides.get("gradnorm_every", 0)}}
    if steps % warmup:
        raise SystemExit("--steps must be a multiple of --warmup")
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, Path(tmp) / "run", progress=False)
        df = read_log(run)
    return df["frames_per_s"].iloc[1:].tolist()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--model", default="basicvsrpp")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed first steps (also the log interval)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--num-frames", type=int, default=3)
    ap.add_argument("--lr-patch", type=int, default=24, help="LR crop; niqe needs HR frames >= 96 px")
    ap.add_argument("--nr-term", default="niqe-kit")
    ap.add_argument("--nr-weight", type=float, default=0.02)
    ap.add_argument("--ref-term", default="lpips-vgg-randtrunk")
    ap.add_argument("--ref-weight", type=float, default=0.1)
    args = ap.parse_args(argv)

    cfg = load_profile(args.profile, [f"device={args.device}", f"data.batch_size={args.batch_size}",
                                      f"data.num_frames={args.num_frames}", f"data.lr_patch={args.lr_patch}"])
    cfg["model"], cfg["device"] = args.model, resolve_device(args.device)
    table = variants(args.nr_term, args.nr_weight, args.ref_term, args.ref_weight)
    speeds: dict[str, list[float]] = {name: [] for name in table}
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        for name, overrides in table.items():
            speeds[name] += run_variant(cfg, overrides, args.steps, args.warmup)
    frames_per_step = args.batch_size * args.num_frames
    base = statistics.median(speeds["charbonnier"])
    print(f"# {args.model} {cfg.get('model_size')} | batch {args.batch_size} x {args.num_frames} frames, LR "
          f"{args.lr_patch}px | device {cfg['device']} | torch {torch.__version__} | threads "
          f"{torch.get_num_threads()} | {args.repeats} rounds x {args.steps} timed steps | "
          f"{time.perf_counter() - t0:.0f} s total")
    print("| variant | frames/s | steps/s | time per step vs charbonnier |")
    print("|---|---|---|---|")
    for name, values in speeds.items():
        fps = statistics.median(values)
        print(f"| {name} | {fps:.2f} | {fps / frames_per_step:.3f} | {base / fps:.2f}x |")


if __name__ == "__main__":
    main()
