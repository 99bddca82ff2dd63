"""Forward+backward time of quality measures used as loss terms.

    OMP_NUM_THREADS=1 python benchmarks/bench_measures.py
    python benchmarks/bench_measures.py --measures st-lpips-alex st-lpips-vgg --shape 4 3 96 96 --repeats 7

For each measure: build it (frozen, eval), then time ``to_loss(m(x[, ref])).sum().backward()``
with gradients to ``x`` (what a loss term costs the trainer), after ``--warmup`` untimed calls;
reports the median and the minimum wall time in ms over ``--repeats`` calls. Inputs are random
frames in [0, 1] from a fixed seed; FR measures compare ``x`` with a noisy copy.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `import nriqa` resolves to this checkout

DEFAULT = ["st-lpips-alex", "st-lpips-vgg", "lpips-vgg-randtrunk", "brisque", "niqe", "niqe-kit"]


def time_measure(name: str, shape: tuple[int, ...], repeats: int, warmup: int, device: str) -> dict:
    from nriqa import quality

    m = quality.create(name, device=device)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(shape, generator=g).to(device)
    ref = (x0 + 0.05 * torch.randn(shape, generator=g).to(device)).clamp(0, 1) if m.card.mode == "FR" else None
    times = []
    for i in range(warmup + repeats):
        x = x0.clone().requires_grad_(True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        quality.to_loss(m(x, ref), m.card).sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return {"measure": name, "median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measures", nargs="+", default=DEFAULT)
    ap.add_argument("--shape", nargs=4, type=int, default=[4, 3, 96, 96], metavar=("N", "C", "H", "W"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    print(f"forward+backward, input {tuple(a.shape)}, device {a.device}, torch threads {torch.get_num_threads()}")
    print("| measure | median ms | min ms |\n|---|---|---|")
    for name in a.measures:
        r = time_measure(name, tuple(a.shape), a.repeats, a.warmup, a.device)
        print(f"| {r['measure']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
