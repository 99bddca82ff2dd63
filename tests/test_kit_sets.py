"""Kit IQA models are keyed by what trained them: a smoke run never replaces the demo's models."""
from __future__ import annotations

import hashlib

from nriqa import quality
from nriqa.iqa.iqa_training import kit_set_key
from nriqa.quality.kit import active_kit_set, kit_dir
from nriqa.study import runs


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_smoke_run_after_a_demo_run_leaves_the_demo_kit_models_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "weights"))
    small = ["iqa.models=[cnniqa@embedded-a]", "iqa.per_arch.cnniqa.steps=3"]   # the demo's kit training, cut short
    demo = runs.profile("demo", device="cpu", run_root=str(tmp_path / "runs"), overrides=small)
    runs.ensure_kit_iqa(demo, progress=False)
    demo_file = kit_dir() / "cnniqa@embedded-a.pt"
    before = _sha(demo_file)
    assert active_kit_set() == kit_set_key(demo) and kit_set_key(demo) in str(demo_file)
    assert kit_set_key(demo) in quality.card("cnniqa@embedded-a").description     # the card names its set

    smoke = runs.profile("smoke", device="cpu", run_root=str(tmp_path / "runs"))
    runs.ensure_kit_iqa(smoke, progress=False)
    smoke_file = kit_dir() / "cnniqa@embedded-a.pt"
    assert kit_set_key(smoke) != kit_set_key(demo) and smoke_file != demo_file and smoke_file.exists()
    assert _sha(demo_file) == before                                          # untouched

    runs.profile("demo", device="cpu", run_root=str(tmp_path / "runs"), overrides=small)
    weight = quality.card("cnniqa@embedded-a").weights[0]
    assert weight.path == demo_file                                           # the demo measures with its own
