"""Same commit, same profile, same numbers, whatever the machine's load: two executions of the smoke
study compared file by file.

``make test`` runs the smoke notebooks twice into two run roots: once under nbval with a CPU budget
of one core (``NRIQA_THREADS=1``, ``workers: 1``), once through ``python -m nriqa run`` with a
budget of two (``NRIQA_THREADS=2``, ``workers: 2``, tests/profiles/smoke_two_workers.yaml) beside a
busy process (tests/beside_busy.py). Then::

    NRIQA_REPRO_A=runs/smoke NRIQA_REPRO_B=runs/again/smoke pytest tests/test_reproducible.py

Skipped unless both are set. ``summary.json`` must be byte-identical (its verdict rows, findings and
manifest), and every trained tensor (generator runs: ``params``, ``params_ema``; kit and transfer
IQA models) bit-identical.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from nriqa.paths import load_torch_file

A, B = os.environ.get("NRIQA_REPRO_A", ""), os.environ.get("NRIQA_REPRO_B", "")
pytestmark = pytest.mark.skipif(not (A and B), reason="set NRIQA_REPRO_A and NRIQA_REPRO_B to two profile folders "
                                                      "of the same study (make test does)")


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    """The trained tensors of a checkpoint or model file, by dotted name (optimizer and RNG state aside)."""
    data = load_torch_file(path)
    if isinstance(data, dict) and "params" in data:       # a trainer checkpoint
        data = {"params": data["params"], "params_ema": data.get("params_ema") or {}}
    out: dict[str, torch.Tensor] = {}

    def walk(obj, name: str) -> None:
        if isinstance(obj, torch.Tensor):
            out[name] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{name}.{k}" if name else str(k))
    walk(data, "")
    return out


def _model_files(root: Path) -> list[Path]:
    """Relative paths of every generator checkpoint and IQA model trained under ``root``."""
    found = [*root.glob("*/checkpoints/latest.pt"), *root.glob("iqa*/*/model.pt"), *root.glob("weights/kit/*.pt")]
    return sorted(p.relative_to(root) for p in found)


def test_summary_json_is_byte_identical():
    a, b = (Path(x) / "summary.json" for x in (A, B))
    text_a, text_b = a.read_text(), b.read_text()
    if text_a != text_b:
        ja, jb = json.loads(text_a), json.loads(text_b)
        differing = sorted(s for s in set(ja) | set(jb) if ja.get(s) != jb.get(s))
        pytest.fail(f"{a} and {b} differ in sections {differing}")
    verdicts = [r for sec in json.loads(text_a).values() if isinstance(sec, dict)
                for v in sec.values() if isinstance(v, list) for r in v if isinstance(r, dict) and "verdict" in r]
    assert verdicts, "the smoke study recorded no verdict rows to compare"


def test_every_trained_tensor_is_bit_identical():
    files = _model_files(Path(A))
    assert files == _model_files(Path(B)), "the two runs trained different run folders"
    assert any(f.parts[0].startswith(("baseline-", "ft-")) for f in files) and any(f.parts[0] == "iqa" for f in files)
    for rel in files:
        ta, tb = _tensors(Path(A) / rel), _tensors(Path(B) / rel)
        assert ta.keys() == tb.keys() and ta, rel
        differing = [k for k in ta if not torch.equal(ta[k], tb[k])]
        assert not differing, f"{rel}: {len(differing)} of {len(ta)} tensors differ, e.g. {differing[:3]}"
