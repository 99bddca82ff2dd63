"""Test session set-up: no test reads or writes the user's weight folder, no figure window opens.

Weight files (kit-trained IQA checkpoints, fetched metric weights) go to a fresh temporary
folder for the whole session, so the suite behaves the same on a developer's machine as on a
clean CI machine. The decoded-frame cache (``NRIQA_CACHE``) stays shared: it only speeds up.
"""
from __future__ import annotations

import os
import tempfile

os.environ["NRIQA_WEIGHTS"] = tempfile.mkdtemp(prefix="nriqa-test-weights-")
os.environ["NRIQA_STATIC"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
