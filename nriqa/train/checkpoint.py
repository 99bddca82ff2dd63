"""Checkpoints: atomic ``torch.save`` files under ``run_dir/checkpoints/``.

Layout: ``step_000100.pt`` (the last ``keep_last`` are kept), ``latest.pt`` and ``best.pt``
(hard links to, or copies of, a step file). Every file is written to a temporary file, flushed to
the disk and renamed into place. A file that cannot be loaded (truncated, not a checkpoint) raises
:class:`~nriqa.errors.CheckpointError` naming it; a resume (:func:`load_resume_checkpoint`) then
falls back to the newest intact ``step_*.pt`` with a warning. A checkpoint is a dict with ``step`` (optimizer
steps completed), ``params``, ``params_ema``, ``optimizer``, ``scheduler``, ``rng`` (torch,
numpy, python, cuda) and trainer bookkeeping; runs with a discriminator add
``discriminator`` and ``d_optimizer`` (kept in the same file so that both nets always match).
"""
from __future__ import annotations

import os
import pickle
import random
import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nriqa.errors import CheckpointError, brief_error
from nriqa.paths import atomic_path, load_torch_file

from .lock import outside_stacklevel

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


def _why_unreadable(err: BaseException) -> str:
    text = brief_error(err)
    if isinstance(err, (EOFError, pickle.UnpicklingError, zipfile.BadZipFile)) or "zip archive" in text \
            or "central directory" in text or isinstance(err, OSError) and err.errno == 22:
        return f"truncated or not a checkpoint ({text})"
    return text


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """``torch.load`` one checkpoint file; :class:`CheckpointError` naming the file when it cannot be
    loaded (truncated by a crash or a full disk, overwritten, not a checkpoint dict)."""
    path = Path(path)
    try:
        ck = load_torch_file(path, map_location)
    except FileNotFoundError:
        raise
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - torch.load fails in many ways on a damaged file
        raise _unreadable(path, _why_unreadable(err)) from err
    if not isinstance(ck, dict) or "step" not in ck:
        raise _unreadable(path, f"it holds a {type(ck).__name__}, not a checkpoint dict with a 'step'")
    return ck


def _unreadable(path: Path, why: str) -> CheckpointError:
    others = sorted(p.stem for p in path.parent.glob("*.pt") if p.name != path.name)
    err = CheckpointError(f"checkpoint {path} cannot be loaded: {why}. Other checkpoints there: "
                          f"{', '.join(others) or 'none'} (a resumed run falls back to the newest intact step_*.pt)")
    err.reason = why
    return err


def load_checkpoint(run_dir: Path, which: str = "latest", map_location: str | torch.device = "cpu") -> dict:
    """Load ``latest``, ``best`` or ``step_000100`` from ``run_dir/checkpoints``."""
    path = checkpoint_dir(run_dir) / f"{which}.pt"
    if not path.exists():
        have = sorted(p.stem for p in checkpoint_dir(run_dir).glob("*.pt")) if checkpoint_dir(run_dir).is_dir() else []
        raise FileNotFoundError(f"no checkpoint {path}; this run has: {have or 'no checkpoints'}")
    return read_checkpoint(path, map_location)


def load_resume_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu") -> dict | None:
    """The checkpoint to resume ``run_dir`` from: ``latest.pt``, else the newest intact ``step_*.pt``
    (with a warning naming each file that could not be loaded, and why); ``None`` when the run has no
    checkpoint yet. :class:`CheckpointError` when checkpoints exist but none can be loaded."""
    folder = checkpoint_dir(run_dir)
    latest = folder / "latest.pt"
    candidates = ([latest] if latest.exists() else []) + \
        [folder / f"step_{s:06d}.pt" for s in reversed(step_checkpoints(run_dir))]
    if not candidates:
        return None
    bad: list[str] = []
    for path in candidates:
        try:
            ck = read_checkpoint(path, map_location)
        except CheckpointError as err:
            bad.append(f"{path.name} ({getattr(err, 'reason', err)})")
            continue
        if bad or path != latest:
            problem = f"{', '.join(bad)} could not be loaded" if bad else "latest.pt is missing"
            warnings.warn(f"{folder}: {problem}; resuming from {path.name} (step {int(ck['step'])}), "
                          "the newest intact checkpoint", stacklevel=outside_stacklevel())
        return ck
    raise CheckpointError(
        f"no intact checkpoint in {folder} to resume from: {'; '.join(bad)}. "
        f"To restart the run from step 0, delete {folder} (or the whole run folder {Path(run_dir)})")
