"""What the demo profile's quality measures cost at the demo's shapes, in wall and process-CPU time.

    OMP_NUM_THREADS=1 python benchmarks/bench_demo_terms.py step charbonnier st-lpips-alex brisque niqe
    OMP_NUM_THREADS=1 python benchmarks/bench_demo_terms.py eval niqe brisque st-lpips-vgg
    OMP_NUM_THREADS=1 python benchmarks/bench_demo_terms.py generator

- ``step``: one loss term's forward+backward on a fine-tune batch, (4, 5, 3, 64, 64) output frames
  against their ground truth (``niqe`` with ``upsample_small``, as the demo profile trains it);
- ``eval``: one panel judge's forward (no grad) on the demo test set's shape, 3 clips x 4 frames of
  256 px (LR 64 px x4), reported per frame;
- ``generator``: forward+backward of the tiny BasicVSR++ on (4, 5, 3, 16, 16) LR frames, the rest
  of a fine-tune step, for scale.

Median of ``--repeats`` calls after one warm-up; on a shared machine the process-CPU column is the
steadier number.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `import nriqa` resolves to this checkout


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU milliseconds of ``fn()`` over ``repeats`` calls after one warm-up."""
    wall, cpu = [], []
    for i in range(1 + repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        if i:
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def main(argv: list[str] | None = None) -> None:
    from nriqa import quality
    from nriqa.losses import Objective
    from nriqa.models import build

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["step", "eval", "generator"])
    ap.add_argument("measures", nargs="*")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    print(f"torch threads {torch.get_num_threads()}")
    if a.what == "generator":
        model, lr = build("basicvsrpp", "tiny"), torch.rand(4, 5, 3, 16, 16, generator=g)
        w, c = timed(lambda: model(lr).mean().backward(), a.repeats)
        print(f"basicvsrpp tiny forward+backward (4, 5, 3, 16, 16): wall {w:.0f} ms, CPU {c:.0f} ms")
        return
    if a.what == "eval":
        x = torch.rand(12, 3, 256, 256, generator=g)
        ref = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        print("| judge | wall ms / frame | CPU ms / frame |\n|---|---|---|")
        for name in a.measures:
            m = quality.create(name)
            r = ref if m.card.mode == "FR" else None
            with torch.no_grad():
                w, c = timed(lambda: m(x, r), a.repeats)
            print(f"| {name} | {w / 12:.0f} | {c / 12:.0f} |", flush=True)
        return
    hr = torch.rand(4, 5, 3, 64, 64, generator=g)
    pred0 = (hr + 0.05 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    print("| term | wall ms / step | CPU ms / step |\n|---|---|---|")
    for name in a.measures:
        objective = Objective({name: {"weight": 1.0, "upsample_small": True} if name == "niqe" else 1.0})

        def step():
            pred = pred0.clone().requires_grad_(True)
            objective(pred, hr)[0].backward()
            if not torch.isfinite(pred.grad).all():
                raise RuntimeError(f"{name}: non-finite gradient")

        w, c = timed(step, a.repeats)
        print(f"| {name} | {w:.0f} | {c:.0f} |", flush=True)


if __name__ == "__main__":
    main()
