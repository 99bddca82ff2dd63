"""Does ``torch.compile`` (inductor, CPU) pay for itself in the demo's short CPU runs?

    OMP_NUM_THREADS=1 python benchmarks/bench_compile_cpu.py
    python benchmarks/bench_compile_cpu.py --parts generator niqe-kit --steps 6

Parts, in one process, at the demo's shapes:

- ``generator``: one training step of tiny BasicVSR++ (batch 4 x 5 frames, 16 px LR -> 64 px HR,
  Charbonnier, Adam), eager vs ``torch.compile(model)`` (what ``train.compile`` does);
- a quality measure (``cnniqa@embedded`` — the CNNIQA architecture with random weights when the kit
  checkpoint is not trained here: same compute —, ``niqe-kit``, ``brisque``, ...): forward+backward
  of its loss on 64 px crops (4 x 5 frames), gradients to the input, eager vs ``torch.compile(measure)``.

Eager and compiled steps alternate (eager, compiled, eager, ...) so both see the same machine load.
The compile time is the first compiled call less the median compiled step. The last columns
count the whole cost of a demo fine-tune of ``--finetune`` steps: eager ``n * t_eager`` against
compiled ``compile + n * t_compiled``. ``graphs`` counts the graphs dynamo compiled for the part
(1 = no recompile). Prints a markdown section for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `import nriqa` resolves to this checkout

B, T, LR, SCALE = 4, 5, 16, 4


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def generator_steps():
    """(eager step, compiled step) callables of a tiny BasicVSR++ training step."""
    from nriqa.models import build

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(B, T, 3, LR, LR, generator=g)
    hr = torch.rand(B, T, 3, SCALE * LR, SCALE * LR, generator=g)
    eager = build("basicvsrpp", "tiny")
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin)

    def make(model, params):
        opt = torch.optim.Adam(params, lr=1e-4)

        def step():
            loss = torch.sqrt((model(lr) - hr) ** 2 + 1e-6).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step
    return make(eager, eager.parameters()), make(compiled, twin.parameters())


def measure_steps(name: str):
    """(eager step, compiled step, label) of a measure's loss forward+backward on 64 px crops."""
    from nriqa import quality

    label = name
    try:
        m = quality.create(name)
        card = m.card
    except (ValueError, FileNotFoundError):
        if "@" not in name:
            raise
        from nriqa.models.iqa_nets import build_arch

        arch = name.split("@")[0]
        net = build_arch(arch).eval().requires_grad_(False)
        m, card, label = net, None, f"{arch} (random weights)"
    size = max(64, int(getattr(card, "min_size", 0) or 0))
    x0 = torch.rand(B * T, 3, size, size, generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(m)

    def make(fn):
        def step():
            x = x0.clone().requires_grad_(True)
            s = fn(x)
            loss = quality.to_loss(s, card) if card is not None else s
            loss.float().mean().backward()
        return step
    return make(m), make(compiled), f"{label}, {B * T} x {size} px"


def bench(eager, compiled, steps: int) -> dict:
    eager()  # warm-up: allocations, caches
    g0 = _graphs()
    t = time.perf_counter()
    compiled()
    first = time.perf_counter() - t
    te, tc = [], []
    for _ in range(steps):
        for fn, out in ((eager, te), (compiled, tc)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    e, c = statistics.median(te), statistics.median(tc)
    return {"eager": e, "compiled": c, "compile": max(first - c, 0.0), "graphs": _graphs() - g0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["generator", "cnniqa@embedded", "niqe-kit", "brisque"])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per side (after the compile)")
    ap.add_argument("--finetune", type=int, default=30, help="steps of the demo fine-tune to cost")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    t_all = time.perf_counter()
    rows = []
    for part in args.parts:
        if part == "generator":
            eager, compiled = generator_steps()
            label = f"basicvsrpp tiny train step, {B} x {T} x {LR} px LR"
        else:
            eager, compiled, label = measure_steps(part)
        r = bench(eager, compiled, args.steps)
        r["label"] = label
        rows.append(r)
        print(f"[{part}] {r}", file=sys.stderr, flush=True)
    load1 = os.getloadavg()[0]
    n = args.finetune
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s), {args.steps} alternating "
          f"steps per side, load average {load0:.1f} at start / {load1:.1f} at end, "
          f"{time.perf_counter() - t_all:.0f} s in total\n")
    print(f"| part | eager s/step | compiled s/step | speed-up | compile s | graphs | "
          f"{n} steps eager s | {n} steps compiled s (incl. compile) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['eager']:.3f} | {r['compiled']:.3f} | {r['eager'] / r['compiled']:.2f}x | "
              f"{r['compile']:.1f} | {r['graphs']} | {n * r['eager']:.1f} | {r['compile'] + n * r['compiled']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
