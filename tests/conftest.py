"""Test session set-up: no test reads or writes the user's weight folder, no figure window opens.

Weight files (kit-trained IQA checkpoints, fetched metric weights) go to a fresh temporary
folder for the whole session, so the suite behaves the same on a developer's machine as on a
clean CI machine. The decoded-frame cache (``NRIQA_CACHE``) stays shared: it only speeds up.
"""
from __future__ import annotations

import os
import tempfile
import time

os.environ["NRIQA_WEIGHTS"] = tempfile.mkdtemp(prefix="nriqa-test-weights-")
os.environ["NRIQA_STATIC"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one process per core already: one thread each
    os.environ.setdefault("NRIQA_THREADS", "1")

from nriqa.config import set_cpu_threads  # noqa: E402 - after the environment above

set_cpu_threads()  # torch threads = free cores (OMP_NUM_THREADS, when set, stands)
_threads_checked = [time.monotonic()]


def pytest_runtest_setup(item):
    """Re-decide the torch threads every 30 s: the other work on a shared machine comes and goes."""
    if time.monotonic() - _threads_checked[0] > 30:
        _threads_checked[0] = time.monotonic()
        set_cpu_threads()
