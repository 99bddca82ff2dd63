"""One trainer per run folder: ``run_dir/train.lock``.

The lock file holds who took it (``pid``, ``host``, ``started``, ``command``) and is held with an
OS lock (``fcntl.flock``) for as long as the trainer runs, so a second trainer on the same folder
stops at once with :class:`~nriqa.errors.RunLockedError` naming the holder. The OS lock goes away
with its process, however that process ends; the file stays behind only after a crash. A left-over
file whose holder was a process of this machine that is gone is taken over with a warning; one
from another machine is not (that trainer may still run there): the message says which file to
delete once that run is over. Without ``fcntl`` (Windows) the file itself is the lock
(created exclusively).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from nriqa.errors import RunLockedError
from nriqa.paths import host_name, pid_alive, remove_stale_tmp, storage_error

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = "train.lock"


def _holder_info() -> dict:
    return {"pid": os.getpid(), "host": host_name(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300]}


def read_holder(path: Path) -> dict:
    """What a lock file says about its holder (``{}`` when it is empty or unreadable)."""
    try:
        data = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict) -> str:
    if not holder:
        return "an unknown process (the lock file is empty)"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
            + (f" ({holder['command']})" if holder.get("command") else ""))


def _busy(run_dir: Path, path: Path, holder: dict, why: str) -> RunLockedError:
    return RunLockedError(f"run folder {run_dir} is in use by another trainer: {_describe(holder)}{why}. "
                          f"Wait for it to finish or stop it; if it is no longer running, delete {path}")


def _stale(holder: dict) -> bool:
    """The holder was a process of this machine that is gone."""
    try:
        pid = int(holder.get("pid", 0))
    except (TypeError, ValueError):
        return False
    return holder.get("host") == host_name() and pid != os.getpid() and not pid_alive(pid)


def outside_stacklevel() -> int:
    """The ``stacklevel`` (for a ``warnings.warn`` in the caller of this function) of the first frame
    outside ``nriqa/train`` and ``contextlib``: where the user called into the trainer."""
    here, frame, level = Path(__file__).parent, sys._getframe(1), 1
    while frame is not None and (Path(frame.f_code.co_filename).parent == here
                                 or frame.f_code.co_filename == contextlib.__file__):
        frame, level = frame.f_back, level + 1
    return level


def _take_over_warning(path: Path, holder: dict) -> None:
    warnings.warn(f"taking over the stale lock {path} of {_describe(holder)}: that process is gone "
                  "(it ended without releasing the lock)", stacklevel=outside_stacklevel())


def _write(fd: int, info: dict) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(info) + "\n").encode())
    os.fsync(fd)


def _acquire_flock(run_dir: Path, path: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = read_holder(path)
            os.close(fd)
            raise _busy(run_dir, path, holder, "") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file between our open and our lock: try again
            os.close(fd)
            continue
        holder = read_holder(path)
        if holder and holder.get("pid") != os.getpid():
            if holder.get("host") not in (None, host_name()):
                # the OS lock may not reach across machines: that trainer could still run there
                os.close(fd)
                raise _busy(run_dir, path, holder, " (another machine: its lock cannot be checked from here)")
            _take_over_warning(path, holder)
        _write(fd, _holder_info())
        return fd


def _acquire_exclusive(run_dir: Path, path: Path) -> int:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = read_holder(path)
            if not _stale(holder):
                raise _busy(run_dir, path, holder, "") from None
            _take_over_warning(path, holder)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        _write(fd, _holder_info())
        return fd
    raise _busy(run_dir, path, read_holder(path), "")


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``run_dir/train.lock`` for the duration of the block (the folder is created when missing,
    and removed again when it is still empty at the end); :class:`RunLockedError` naming the holder
    when another trainer holds it."""
    run_dir = Path(run_dir)
    created = [d for d in (run_dir, *run_dir.parents) if not d.exists()]  # innermost first
    path = run_dir / LOCK_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = _acquire_flock(run_dir, path) if fcntl is not None else _acquire_exclusive(run_dir, path)
    except OSError as err:   # a read-only or full disk: one line naming the folder
        _remove_empty(created)
        raise (storage_error("the run folder's lock", path, err) or err) from err
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before the OS lock goes: a waiting trainer then sees a new file (see the inode check)
        os.close(fd)
        _remove_empty(created)  # a run that failed before writing anything leaves no empty folders behind


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) while they are empty."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            return



@contextlib.contextmanager
def claim_run_folder(run_dir: str | os.PathLike) -> Iterator[Path]:
    """:func:`run_lock`, then remove the temporary files that interrupted writes left in the run folder
    and its ``checkpoints/`` (the lock makes this trainer their only writer)."""
    with run_lock(run_dir) as path:
        for folder in (Path(run_dir), Path(run_dir) / "checkpoints"):
            remove_stale_tmp(folder, max_age_s=0)
        yield path
