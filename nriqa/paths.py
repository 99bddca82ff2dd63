"""Where nriqa keeps things on disk, and how it writes them safely.

- cache:   ``$NRIQA_CACHE`` or ``~/.cache/nriqa`` (decoded embedded frames, built datasets)
- weights: ``$NRIQA_WEIGHTS`` or ``<cache>/weights`` (metric and model weight files)
- runs:    ``$NRIQA_RUNS`` or ``<repo>/runs`` (``./runs`` outside a source checkout; one folder per
           profile/experiment)
- figures: ``$NRIQA_FIGURES`` or ``<repo>/figures``
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from nriqa.errors import UserError

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


def _repo_or_cwd(folder: str) -> Path:
    """``<repo>/<folder>`` in a source checkout (wherever the shell or kernel stands), else ``./<folder>``."""
    return REPO_ROOT / folder if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd() / folder


def runs_dir() -> Path:
    """Root of run folders ``<root>/<profile>/<experiment>/``: the notebooks, ``nriqa run``, a direct
    papermill call and the ``train`` commands share it from any folder."""
    return Path(os.environ.get("NRIQA_RUNS", _repo_or_cwd("runs"))).expanduser()


def figures_dir() -> Path:
    """Folder figures are saved to (created on demand)."""
    p = Path(os.environ.get("NRIQA_FIGURES", _repo_or_cwd("figures"))).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


#: a temporary file whose writer cannot be identified (another host, an older nriqa) counts as
#: orphaned once it has not been modified for this long
STALE_TMP_SECONDS = 3600.0

# ``.<target name>.<host>.<pid>.<random>.tmp``: who is writing it, so that an orphan can be told
# from a file another process is still writing
_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def host_name() -> str:
    """This machine's name as it appears in temporary-file and lock names (letters, digits, ``-``)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname() or "localhost")[:40] or "localhost"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (``True`` when that cannot be told)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate the process there; stay on the safe side
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def stale_tmp_files(folder: str | os.PathLike, target_name: str | None = None, *,
                    max_age_s: float = STALE_TMP_SECONDS) -> list[Path]:
    """Temporary files of interrupted :func:`atomic_path` writes in ``folder`` (of ``target_name`` only,
    when given): those written by a process of this machine that is gone, and those of unknown writers
    (another host, an older nriqa) not modified for ``max_age_s`` seconds."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    here, now, out = host_name(), time.time(), []
    prefix = f".{target_name}." if target_name is not None else "."
    for p in folder.iterdir():
        if not (p.name.startswith(prefix) and p.name.endswith(".tmp")) or not p.is_file():
            continue
        m = _TMP_NAME.match(p.name)
        if m and m["host"] == here:
            stale = int(m["pid"]) != os.getpid() and not pid_alive(int(m["pid"]))
        else:
            try:
                stale = now - p.stat().st_mtime >= max_age_s
            except FileNotFoundError:  # its writer just renamed it into place
                continue
        if stale:
            out.append(p)
    return sorted(out)


def remove_stale_tmp(folder: str | os.PathLike, target_name: str | None = None, *,
                     max_age_s: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete what :func:`stale_tmp_files` finds; returns the files removed."""
    removed = []
    for p in stale_tmp_files(folder, target_name, max_age_s=max_age_s):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path``'s data to the disk."""
    try:
        fd = os.open(path, os.O_RDWR)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush ``folder``'s entries (a rename in it) to the disk, where the OS allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StorageError(UserError):
    """A file or folder cannot be written: the disk is full, the file system read-only, or the
    folder not writable. One line naming the path; what was there before is untouched."""


_DISK_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


def storage_problem(err: BaseException, folder: str | os.PathLike) -> str | None:
    """Why ``err`` (raised while writing into ``folder``) is the disk's fault, or None: an OSError
    of a full, read-only or forbidden disk anywhere in its chain, or any failure (torch's writer
    reports a full disk as "unexpected pos") while ``folder``'s disk has under 1 MiB free."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_ERRNOS:
            return _DISK_ERRNOS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    try:
        if shutil.disk_usage(folder).free < 1 << 20:
            return "no space left on device"
    except OSError:
        pass
    return None


def storage_error(what: str, path: str | os.PathLike, err: BaseException) -> StorageError | None:
    """A :class:`StorageError` for ``err`` when :func:`storage_problem` blames the disk, else None."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    why = storage_problem(err, folder)
    if why is None:
        return None
    return StorageError(f"cannot write {what} {path}: {why}; anything written there before is untouched "
                        "(make room or choose a writable folder, then run again: a training run resumes)")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only on success.

    Nothing half-written is ever left at ``target``: on an exception the temporary file is
    removed and any previous ``target`` is untouched. ``durable``: the file's data reach the disk
    before the rename, and the rename itself after it (so a power cut leaves the old or the new
    file, never an empty one). Temporary files that interrupted writes of ``target`` left behind
    (their process is gone) are removed first.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(target.parent, target.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{host_name()}.{os.getpid()}.", suffix=".tmp",
                                   dir=target.parent)
    except OSError as err:
        raise (storage_error("the file", target, err) or err) from err
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if durable:
            fsync_file(tmp_path)
        os.replace(tmp_path, target)
        if durable:
            fsync_dir(target.parent)
    except (OSError, RuntimeError) as err:   # torch.save reports a full disk as a RuntimeError
        disk = storage_error("the file", target, err)
        if disk is None:
            raise
        raise disk from err
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class UnsafeFileError(UserError):
    """A file that torch's weights-only unpickler refuses: it names Python objects other than tensors,
    containers, numbers, strings and numpy arrays, which a crafted file uses to run code."""


def _numpy_globals() -> list:
    """The numpy names a kit file may hold (RNG states and scores as arrays, metrics as scalars):
    array and scalar reconstruction of plain numeric dtypes only."""
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core
    kinds = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
             "float16", "float32", "float64")
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            *{type(np.dtype(k)) for k in kinds}]


def load_torch_file(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists, tuples, numbers, strings and
    plain numeric numpy arrays/scalars come back; a file naming any other Python object is refused
    with :class:`UnsafeFileError` (one line naming the file) and nothing in it runs. Every file nriqa
    reads from disk (checkpoints, kit IQA models, IQA set caches, ``init_from`` files) goes through
    here: run and weight folders are what researchers share."""
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err))))
        if "Weights only load failed" not in str(err) or not names:   # garbage or truncated, not a payload
            raise
        raise UnsafeFileError(f"refusing to load {path}: it names {', '.join(names)}, not only tensors, numbers "
                              "and arrays, so loading it could run code (nriqa never writes such a file; "
                              "use one you made with nriqa, or load it yourself if you trust it)") from None
