"""Independent fine-tunes: one at a time with T torch threads vs W worker processes of T/W threads,
side by side in one invocation (``nriqa.study.runs.train_jobs``, the study's own code path).

    python benchmarks/bench_parallel_runs.py                        # demo shape, 4 runs x 10 steps
    python benchmarks/bench_parallel_runs.py --runs 6 --steps 30 --rounds 2

The runs are the demo's fine-tune shape: BasicVSR++ tiny, the demo profile's data settings
(embedded clips, batch 4 x 5 frames, 16 px LR crops) and ``finetune`` trainer knobs, objective
Charbonnier + ``--term`` (default GMSD 0.5, which needs no trained weights), each with its own
seed, from random initialisation (a baseline's weights cost the same per step). A control arm
(C) trains serially with the parallel run's threads per process, to tell the effect of the
processes from that of the thread count. Serial and
parallel rounds alternate (A B C, then C B A, ...) so load on a shared machine hits both alike; the
load average (``os.getloadavg``) is printed beside every time, and so is the CPU time (this
process and its workers), which a crowded machine inflates less than the wall time. The parallel
time includes starting the worker processes (spawn, imports), as the study pays it.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

import torch

from nriqa.study import runs


def jobs(run_root: str, n: int, steps: int, term: str, weight: float) -> list[tuple[dict, None]]:
    cfg = runs.profile("demo", device="cpu", run_root=run_root)
    cfg["finetune"] = {**cfg["finetune"], "steps": steps,
                       "schedule": {**cfg["finetune"]["schedule"], "periods": [steps]},
                       "log_every": steps, "ckpt_every": 0}
    return [(runs.finetune_config(runs.with_seed(cfg, seed), "basicvsrpp", {term: weight}), None) for seed in range(n)]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its reaped children (the pool's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(n: int, steps: int, term: str, weight: float, workers: int, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of training ``n`` fine-tunes with ``workers`` processes."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        todo = jobs(tmp, n, steps, term, weight)
        c0, t0 = cpu_seconds(), time.perf_counter()
        folders = runs.train_jobs(todo, n_workers=workers, progress=False)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        assert all(runs.run_is_done(f) for f in folders)
    return seconds, cpu


def load() -> str:
    return "load " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=4, help="independent fine-tunes per round")
    ap.add_argument("--steps", type=int, default=10, help="steps per fine-tune (the demo's: 30)")
    ap.add_argument("--rounds", type=int, default=2, help="serial/parallel pairs, alternating in order")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all (serial: all for one run)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-control", dest="control", action="store_false",
                    help="leave out the control: one process with the parallel run's threads per process")
    ap.add_argument("--term", default="gmsd")
    ap.add_argument("--weight", type=float, default=0.5)
    a = ap.parse_args(argv)
    print(f"{a.runs} fine-tunes x {a.steps} steps (basicvsrpp tiny, demo data, charbonnier + {a.term} {a.weight:g}); "
          f"serial: 1 process x {a.threads} threads; parallel: {a.workers} processes x "
          f"{max(1, a.threads // a.workers)} thread(s); {os.cpu_count()} CPUs; {load()}", flush=True)
    timed(1, 2, a.term, a.weight, 1, a.threads)  # warm-up: imports, first-call costs of the serial process
    one = max(1, a.threads // a.workers)
    kinds = {"serial": (1, a.threads), "parallel": (a.workers, a.threads)}  # name -> (workers, threads in all)
    if a.control and one != a.threads:
        kinds[f"serial {one}t"] = (1, one)  # the control: is it the processes, or the thread count?
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(a.rounds):
        order = list(kinds) if r % 2 == 0 else list(reversed(kinds))
        for kind in order:
            w, threads = kinds[kind]
            s, cpu = timed(a.runs, a.steps, a.term, a.weight, w, threads)
            times[kind].append(s)
            print(f"round {r + 1} {kind:10s}: {s:7.1f} s wall ({s / a.runs:5.1f} s per fine-tune), "
                  f"{cpu:7.1f} CPU s ({cpu / a.runs:5.1f} per fine-tune)  {load()}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("median wall: " + ", ".join(f"{k} {v:.1f} s ({v / a.runs:.1f} s per fine-tune)" for k, v in med.items())
          + f"; serial / parallel = {med['serial'] / med['parallel']:.2f}x"
          + "".join(f"; {k} / parallel = {v / med['parallel']:.2f}x" for k, v in med.items() if k.endswith("t"))
          + f"; {load()}")


if __name__ == "__main__":
    main()
