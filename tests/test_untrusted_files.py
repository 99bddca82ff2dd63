"""A crafted ``.pt`` file never runs code: every path where nriqa loads a file from disk refuses a
pickle whose objects are not tensors, numbers and arrays (``nriqa.paths.load_torch_file``)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nriqa.paths import REPO_ROOT, UnsafeFileError, load_torch_file


class _Payload:
    """Unpickling this calls ``os.system``: what an attacker's checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def payload(tmp_path):
    """``plant(path, **keys)`` writes a dict with the keys a loader looks for plus the payload; the
    marker file exists afterwards only if some load ran it."""
    marker = tmp_path / "PAYLOAD-RAN"

    def plant(path: Path, **keys) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**keys, "x": _Payload(marker)}, path)
        return path
    plant.marker = marker
    return plant


def test_the_payload_would_run_under_a_plain_load(tmp_path, payload):
    """The positive control: the same file does run its payload when loaded unsafely."""
    path = payload(tmp_path / "p.pt", step=1)
    torch.load(path, weights_only=False)
    assert payload.marker.exists()


def test_the_shared_loader_refuses_it(tmp_path, payload):
    with pytest.raises(UnsafeFileError, match=r"refusing to load .*p\.pt: it names posix\.system|os\.system"):
        load_torch_file(payload(tmp_path / "p.pt", step=1))
    assert not payload.marker.exists()


def test_trainer_checkpoints_refuse_it(tmp_path, payload):
    from nriqa.errors import CheckpointError
    from nriqa.train.checkpoint import load_checkpoint, load_resume_checkpoint

    run = tmp_path / "run"
    payload(run / "checkpoints" / "latest.pt", step=3)
    with pytest.raises(CheckpointError, match="latest.pt"):
        load_checkpoint(run, "latest")
    with pytest.raises(CheckpointError, match="no intact checkpoint .* refusing to load"):
        load_resume_checkpoint(run)   # a resume refuses it too, and says how to restart
    assert not payload.marker.exists()


def test_kit_models_refuse_it_and_the_listings_never_run_it(tmp_path, payload, monkeypatch):
    from nriqa.quality.kit import KitCheckpointError, kit_dir, load_kit_model

    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))
    path = payload(kit_dir() / "cnniqa@embedded.pt", arch="cnniqa", state_dict={}, calibration={})
    with pytest.raises(KitCheckpointError, match="refusing to load"):
        load_kit_model(path)
    env = {**os.environ, "NRIQA_WEIGHTS": str(tmp_path / "weights")}
    for cmd in (["quality", "--json"], ["weights"]):
        out = subprocess.run([sys.executable, "-m", "nriqa", *cmd], env=env, capture_output=True, text=True,
                             timeout=300)
        assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert not payload.marker.exists()


def test_iqa_set_caches_refuse_it(tmp_path, payload):
    from nriqa.data.iqa_sets import _read_set_cache

    with pytest.warns(UserWarning, match="refusing to load"):
        assert _read_set_cache(payload(tmp_path / "set.pt", images=torch.zeros(1)), 96) is None
    assert not payload.marker.exists()


def test_iqa_training_init_and_resume_refuse_it(tmp_path, payload):
    from nriqa.iqa.iqa_training import _state_dict_of, train_iqa

    with pytest.raises(UnsafeFileError):
        _state_dict_of(payload(tmp_path / "init.pt", state_dict={}))
    run = tmp_path / "iqa-run"
    payload(run / "last.pt", model={}, step=1)
    with pytest.raises(UnsafeFileError, match="last.pt"):
        train_iqa("cnniqa", {"steps": 2, "batch_size": 2, "max_sources": 2}, run, progress=False, install=False)
    assert not payload.marker.exists()


def test_no_unsafe_load_in_the_package():
    """Every ``torch.load`` in nriqa/ passes ``weights_only=True`` (or goes through load_torch_file)."""
    bad = []
    for path in sorted((REPO_ROOT / "nriqa").rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in m.group(1):
                bad.append(f"{path.relative_to(REPO_ROOT)}: {m.group(0)}")
        bad += [f"{path.relative_to(REPO_ROOT)}: weights_only=False"
                for _ in re.finditer(r"weights_only\s*=\s*False", text)]
    assert not bad, bad
