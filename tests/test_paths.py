"""Atomic writes: all or nothing, with ordinary file permissions."""
from __future__ import annotations

import os

import pytest

from nriqa.paths import atomic_path, atomic_write_text


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "table.csv"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temp file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask
