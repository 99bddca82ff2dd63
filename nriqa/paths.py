"""Where nriqa keeps things on disk, and how it writes them safely.

- cache:   ``$NRIQA_CACHE`` or ``~/.cache/nriqa`` (decoded embedded frames, built datasets)
- weights: ``$NRIQA_WEIGHTS`` or ``<cache>/weights`` (metric and model weight files)
- runs:    ``$NRIQA_RUNS`` or ``./runs`` (one folder per profile/experiment)
- figures: ``$NRIQA_FIGURES`` or ``<repo>/figures``
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Root cache folder (created on demand)."""
    p = Path(os.environ.get("NRIQA_CACHE", Path.home() / ".cache" / "nriqa")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def weights_dir() -> Path:
    """Folder where weight files for measures and models are looked up."""
    p = Path(os.environ.get("NRIQA_WEIGHTS", cache_dir() / "weights")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def runs_dir() -> Path:
    """Root of run folders: ``runs/<profile>/<experiment>/``."""
    return Path(os.environ.get("NRIQA_RUNS", Path.cwd() / "runs")).expanduser()


def figures_dir() -> Path:
    """Folder figures are saved to (created on demand)."""
    default = REPO_ROOT / "figures" if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd() / "figures"
    p = Path(os.environ.get("NRIQA_FIGURES", default)).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only on success.

    Nothing half-written is ever left at ``target``: on an exception the temporary file is
    removed and any previous ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
