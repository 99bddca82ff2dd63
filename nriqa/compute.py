"""How a job computes: its device, its torch threads, deterministic kernels; and how many jobs run at once.

A float sum split over threads adds in another order, so a job's numbers depend on its thread count.
The numbers of a job (a training run, a kit IQA training, a pixel optimisation, an evaluation) must
not depend on the machine, so its threads come from the profile (``threads``, default 1) and never
from the machine's load. The load decides only *how many jobs run at once*
(:func:`concurrent_jobs`): the CPU budget (:func:`cpu_budget`: ``$NRIQA_THREADS``, else the cores
this process may use less the other tasks that want a CPU now) divided by the job's threads.

    use_job_numerics(cfg)          # torch threads = cfg["threads"]; deterministic kernels on the CPU
    concurrent_jobs(cfg, 2)        # 2 on an idle 2-core machine, 1 beside a busy process

The CPU's vector instructions change float results too (oneDNN's convolutions and MKL's BLAS pick
other kernels on an AVX-512 than on an AVX2 machine): :func:`pin_cpu_kernels`, run when ``nriqa`` is
imported, has torch use its AVX2 kernels on every x86-64 machine (``ATEN_CPU_CAPABILITY``,
``ONEDNN_MAX_CPU_ISA``, ``MKL_CBWR``; a value the user set stands).

On CUDA the job's threads still fix its CPU-side work, and ``torch.use_deterministic_algorithms``
stays off for speed: cuDNN's algorithm choice, ``grid_sample``/``index_add`` backward (atomic adds),
and bf16 autocast make CUDA runs reproducible only to within float rounding (docs/architecture.md).
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any, Mapping

from nriqa.errors import ConfigError

#: the profile's per-job thread count when it names none
DEFAULT_THREADS = 1
#: environment that makes torch's CPU kernels the same on every x86-64 machine with AVX2: ATen's
#: dispatch level, oneDNN's instruction set and MKL's conditional numerical reproducibility
CPU_KERNEL_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def pin_cpu_kernels() -> dict[str, str]:
    """Set :data:`CPU_KERNEL_PINS` in the environment where unset (x86-64 only; elsewhere nothing),
    before torch runs its first CPU kernel: torch, oneDNN and MKL read them once, at first use.
    Child processes (notebook kernels, pool workers) inherit them. Returns the pins in effect."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    for key, value in CPU_KERNEL_PINS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in CPU_KERNEL_PINS}


def resolve_device(device: str | None = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is present, else ``"cpu"``; other values pass through."""
    # torch is imported here, not at module top: reading profiles (the CLI, every subpackage)
    # must not pay for importing torch.
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but torch sees no CUDA device")
    return str(device)


def job_threads(cfg: Mapping[str, Any]) -> int:
    """The torch threads every job of ``cfg`` computes with: its ``threads`` (an int >= 1,
    default :data:`DEFAULT_THREADS`). Part of every run's key: other threads, other float sums."""
    raw = cfg.get("threads", DEFAULT_THREADS)
    if raw is None:
        return DEFAULT_THREADS
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigError(f"threads must be a whole number >= 1 (torch threads per job), got {raw!r}")
    return raw


def use_job_numerics(cfg: Mapping[str, Any]) -> int:
    """Make this process compute as every job of ``cfg`` does: ``torch.set_num_threads(job_threads)``
    and, on the CPU, ``torch.use_deterministic_algorithms(True, warn_only=True)`` (deterministic
    variants where torch has them, a warning where it has none). Returns the threads."""
    import torch

    n = job_threads(cfg)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if str(cfg.get("device", "cpu")).startswith("cpu"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    return n


def runnable_others(samples: int = 5, every: float = 0.01) -> float:
    """How many other tasks want a CPU right now: the median of the runnable count in
    ``/proc/loadavg`` (which counts this process too) over a few samples, less one, at least 0.
    Falls back to the 1-minute load average where ``/proc`` is missing. Instantaneous on purpose:
    the load average trails by a minute, so right after this kit's own busy work it would count that work."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, IndexError, ValueError):
            return float(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0.0
        if i + 1 < samples:
            time.sleep(every)
    return max(0.0, statistics.median(counts) - 1)


def usable_cores() -> int:
    """The CPU cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` where the
    platform has no affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def env_threads() -> int | None:
    """``$NRIQA_THREADS`` as an int >= 1, ``None`` when unset; any other value is a
    :class:`~nriqa.errors.ConfigError` naming it."""
    env = os.environ.get("NRIQA_THREADS", "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) < 1:
        raise ConfigError(f"NRIQA_THREADS must be a whole number >= 1 (the CPU cores nriqa may use), got {env!r}")
    return int(env)


def cpu_budget(*, cores: int | None = None, busy: float | None = None) -> int:
    """The CPU cores this kit may keep busy now: ``$NRIQA_THREADS`` when set; else the cores this
    process may run on less the other tasks that want a CPU now (``busy``, default
    :func:`runnable_others`), rounded, at least 1. It sets how many jobs run at once
    (:func:`concurrent_jobs`) and the threads of work outside a job (tests, listings); never a job's numbers."""
    env = env_threads()
    if env is not None:
        return env
    if cores is None:
        cores = usable_cores()
    if busy is None:
        busy = runnable_others()
    return max(1, min(cores, round(cores - busy)))


def concurrent_jobs(cfg: Mapping[str, Any], workers: int, *, budget: int | None = None) -> int:
    """How many of ``cfg``'s jobs run at once, at most ``workers``: on the CPU as many as the CPU
    budget (:func:`cpu_budget`) holds jobs of :func:`job_threads` threads, at least 1; on a GPU ``workers``."""
    if not str(cfg.get("device", "cpu")).startswith("cpu"):
        return max(1, workers)
    budget = cpu_budget() if budget is None else budget
    return max(1, min(workers, budget // job_threads(cfg)))


def set_cpu_threads() -> int:
    """The threads of this process outside any job: :func:`cpu_budget` (returned), unless
    ``OMP_NUM_THREADS`` was chosen by the user (then that count stands and is returned). Called
    when the CLI, the notebook runner's kernels and the test session start; a job then sets its
    own (:func:`use_job_numerics`). Before torch is imported it sets ``OMP_NUM_THREADS`` (torch
    reads it on import); after, ``torch.set_num_threads``."""
    budget = cpu_budget()   # checks $NRIQA_THREADS, whether or not OMP_NUM_THREADS is set
    chosen = os.environ.get("OMP_NUM_THREADS", "").strip()
    if chosen and not (chosen.isdigit() and int(chosen) >= 1):
        raise ConfigError(f"OMP_NUM_THREADS must be a whole number >= 1, got {chosen!r} (unset it to let nriqa "
                          "decide, or set NRIQA_THREADS)")
    if chosen and os.environ.get("_NRIQA_OMP_SET") != chosen:
        return int(chosen)
    n = budget
    os.environ["OMP_NUM_THREADS"] = os.environ["_NRIQA_OMP_SET"] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n
