"""Test session set-up: no test reads or writes the user's weight folder, no figure window opens.

Weight files (kit-trained IQA checkpoints, fetched metric weights) go to a fresh temporary
folder for the whole session, so the suite behaves the same on a developer's machine as on a
clean CI machine. The decoded-frame cache (``NRIQA_CACHE``) stays shared: it only speeds up.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time

import pytest

os.environ["NRIQA_WEIGHTS"] = tempfile.mkdtemp(prefix="nriqa-test-weights-")
atexit.register(shutil.rmtree, os.environ["NRIQA_WEIGHTS"], ignore_errors=True)  # removed after the session
os.environ["NRIQA_STATIC"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one process per core already: one thread each
    os.environ.setdefault("NRIQA_THREADS", "1")

from nriqa.compute import set_cpu_threads  # noqa: E402 - after the environment above

set_cpu_threads()  # torch threads = free cores (OMP_NUM_THREADS, when set, stands)
_threads_checked = [time.monotonic()]


def pytest_runtest_setup(item):
    """Re-decide the torch threads every 30 s: the other work on a shared machine comes and goes."""
    if time.monotonic() - _threads_checked[0] > 30:
        _threads_checked[0] = time.monotonic()
        set_cpu_threads()


#: the Tensor methods that read a value back to the host (a device sync on CUDA)
HOST_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__")


@pytest.fixture
def host_reads(monkeypatch):
    """``start()`` makes every :data:`HOST_READS` call on any tensor append its name to the list
    it returns, until ``monkeypatch.undo()`` or the end of the test."""
    import torch

    def start() -> list[str]:
        seen: list[str] = []
        for attr in HOST_READS:
            original = getattr(torch.Tensor, attr)

            def guarded(self, *a, _name=attr, _original=original, **kw):
                seen.append(_name)
                return _original(self, *a, **kw)
            monkeypatch.setattr(torch.Tensor, attr, guarded)
        return seen
    return start


@pytest.fixture(autouse=True)
def _no_kit_set_leaks():
    """A test that loads a study profile activates its kit set ($NRIQA_KIT_SET); the next test starts
    without one again."""
    yield
    from nriqa.quality.kit import active_kit_set, use_kit_set

    if active_kit_set() is not None:
        use_kit_set(None)


@pytest.fixture()
def offline_home(tmp_path, monkeypatch):
    """Empty TORCH_HOME / NRIQA_WEIGHTS in tmp, and any network connection raises."""
    import socket

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))

    def no_network(*a, **k):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    return tmp_path


@pytest.fixture()
def no_wheels(tmp_path, monkeypatch):
    """Every package file is looked up under an empty folder, as if the wheels were not installed."""
    from nriqa.quality import base

    monkeypatch.setattr(base, "package_dir", lambda dist: tmp_path / "site-packages")
    return tmp_path / "site-packages"
