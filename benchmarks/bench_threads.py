"""Torch threads on a busy machine: N training steps of tiny BasicVSR++ (the clip, model and
optimizer of ``tests/test_models.py::test_tiny_basicvsrpp_overfits_one_clip``) with 2 and
with 1 thread while one extra busy loop runs, each row in a fresh process, alternating.

    python benchmarks/bench_threads.py --steps 15 --rounds 2

Prints a markdown table: wall and process CPU seconds per row, the 1-minute load average.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import os, sys, time, torch
n, steps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(n)
from tests.test_models import _clip
from nriqa.models import build
torch.manual_seed(0)
lr, hr = _clip()
model = build("basicvsrpp", "tiny")
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(steps):
    loss = torch.sqrt((model(lr) - hr) ** 2 + 1e-6).mean()
    opt.zero_grad(); loss.backward(); opt.step()
print(f"| {n} | {time.perf_counter() - t0:.1f} | {time.process_time() - c0:.1f} | {os.getloadavg()[0]:.1f} |")
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--no-busy-loop", action="store_true", help="measure without the extra busy process")
    args = ap.parse_args(argv)
    busy = None if args.no_busy_loop else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    print(f"| torch threads | wall s ({args.steps} steps) | process CPU s | 1-min load average at the end |")
    print("|---|---|---|---|", flush=True)
    try:
        for _ in range(args.rounds):
            for n in args.threads:
                env = {**os.environ, "OMP_NUM_THREADS": str(n), "NRIQA_THREADS": str(n),
                       "PYTHONPATH": str(REPO)}
                subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.steps)], cwd=REPO, env=env, check=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
