"""A full or read-only disk ends in one line naming the path, and the previous file survives."""
from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple

import pytest
import torch

from nriqa.paths import StorageError, atomic_path, storage_problem
from nriqa.train.checkpoint import load_checkpoint, save_checkpoint
from nriqa.train.lock import run_lock

Usage = namedtuple("Usage", "total used free")


def test_a_full_disk_during_a_checkpoint_write_names_it_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    save_checkpoint(run, {"step": 1, "params": {"w": torch.ones(3)}})
    real_save = torch.save

    def full_disk(obj, f, *a, **kw):   # what torch.save does when the disk fills mid-write
        real_save(obj, f, *a, **kw)
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 3096192 vs 3096080")
    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 << 30, 10 << 30, 0))
    with pytest.raises(StorageError, match=r"cannot write the file .*step_000002\.pt: no space left on device"):
        save_checkpoint(run, {"step": 2, "params": {"w": torch.zeros(3)}})
    monkeypatch.undo()
    assert load_checkpoint(run, "latest")["step"] == 1                       # intact, still the latest
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_other_failures_are_not_blamed_on_the_disk(tmp_path):
    with pytest.raises(RuntimeError, match="not the disk"):
        with atomic_path(tmp_path / "x.pt"):
            raise RuntimeError("not the disk")
    assert storage_problem(RuntimeError("x"), tmp_path) is None
    assert storage_problem(OSError(errno.ENOSPC, "No space left on device"), tmp_path) == "no space left on device"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the errno path is tested below")
def test_a_read_only_run_root_is_one_line(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StorageError, match="permission denied"):
            with run_lock(tmp_path / "run"):
                pass
    finally:
        tmp_path.chmod(0o700)


def test_a_read_only_file_system_at_the_lock_is_one_line(tmp_path, monkeypatch):
    def read_only(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(StorageError, match=r"cannot write the run folder's lock .*train\.lock: read-only file system"):
        with run_lock(tmp_path / "run"):
            pass
