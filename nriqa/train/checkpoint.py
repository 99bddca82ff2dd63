"""Checkpoints: atomic ``torch.save`` files under ``run_dir/checkpoints/``.

Layout: ``step_000100.pt`` (the last ``keep_last`` are kept), ``latest.pt`` and ``best.pt``
(hard links to, or copies of, a step file). A checkpoint is a dict with ``step`` (optimizer
steps completed), ``params``, ``params_ema``, ``optimizer``, ``scheduler``, ``rng`` (torch,
numpy, python, cuda) and trainer bookkeeping; runs with a discriminator add
``discriminator`` and ``d_optimizer`` (kept in the same file so that both nets always match).
"""
from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nriqa.paths import atomic_path

STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def rng_state() -> dict[str, Any]:
    """Every RNG the training step may touch."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def seed_all(seed: int) -> None:
    """Seed torch (every device), numpy and python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _link_atomically(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to (or copy of) ``source`` without a half-written moment."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def save_checkpoint(run_dir: Path, state: dict[str, Any], *, keep_last: int = 2, is_best: bool = False) -> Path:
    """Write ``step_XXXXXX.pt`` atomically, point ``latest.pt`` (and ``best.pt``) at it, prune old steps."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{int(state['step']):06d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    _link_atomically(path, folder / "latest.pt")
    if is_best:
        _link_atomically(path, folder / "best.pt")
    steps = sorted(step_checkpoints(run_dir))
    for old in steps[: max(0, len(steps) - max(1, int(keep_last)))]:
        (folder / f"step_{old:06d}.pt").unlink(missing_ok=True)
    return path


def step_checkpoints(run_dir: Path) -> list[int]:
    """Steps of the ``step_*.pt`` files present, ascending."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := STEP_FILE.match(p.name)))


def load_checkpoint(run_dir: Path, which: str = "latest", map_location: str | torch.device = "cpu") -> dict:
    """Load ``latest``, ``best`` or ``step_000100`` from ``run_dir/checkpoints``."""
    path = checkpoint_dir(run_dir) / f"{which}.pt"
    if not path.exists():
        have = sorted(p.stem for p in checkpoint_dir(run_dir).glob("*.pt")) if checkpoint_dir(run_dir).is_dir() else []
        raise FileNotFoundError(f"no checkpoint {path}; this run has: {have or 'no checkpoints'}")
    return torch.load(path, map_location=map_location, weights_only=False)
