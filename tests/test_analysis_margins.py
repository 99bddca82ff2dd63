"""nriqa.analysis.margins: one artifact margin per detector, from injected artifacts a person can see."""
from __future__ import annotations

import pytest
import torch
import yaml

from nriqa.analysis import margins as mg
from nriqa.analysis.artifacts import MEASURES, measure_artifacts
from nriqa.analysis.inject import DETECTS, inject
from nriqa.config import load_profile
from nriqa.errors import ConfigError


def _clip(seed: int, t: int = 3, size: int = 48) -> torch.Tensor:
    """A small deterministic clip ``(t,3,size,size)``: coloured blocks moving 2 px a frame, light noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    frames = []
    for k in range(t):
        base = 0.25 + 0.5 * (((xx + 2 * k) // 12 + yy // 12) % 2).float()
        rgb = torch.stack([base, 0.8 * base + 0.1, 0.6 * base + 0.2])
        frames.append((rgb + 0.02 * torch.randn(3, size, size, generator=g)).clamp(0, 1))
    return torch.stack(frames)


CLIPS = {"a": _clip(0), "b": _clip(1)}


def test_a_margin_is_the_mean_over_clips_of_the_injected_value_minus_the_clean_one():
    got = mg.artifact_margins(CLIPS, mg.VISIBLE)
    assert list(got) == list(MEASURES)
    for d, m in got.items():
        kind, s = DETECTS[d], mg.VISIBLE[DETECTS[d]]
        by_hand = [float(measure_artifacts(inject(c, kind, s), c, [d])[d].mean())
                   - float(measure_artifacts(c, c, [d])[d].mean()) for c in CLIPS.values()]
        assert m == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-6, abs=1e-9)
        assert m > 0, f"{d}: its own artifact at a visible strength must raise it"
    assert mg.artifact_margins(CLIPS, mg.VISIBLE) == got  # seeded: the same numbers again


def test_a_detector_on_clean_frames_changes_by_zero():
    table = mg.margin_table(CLIPS, {k: 0.0 for k in DETECTS.values()})
    assert len(table) == len(MEASURES) * len(CLIPS)
    assert (table["clean"] == 0).all() and (table["change"] == 0).all()
    assert set(mg.artifact_margins(list(CLIPS.values()), {k: 0.0 for k in DETECTS.values()}).values()) == {0.0}


def test_strengths_name_the_kinds_the_detectors_find():
    assert mg.artifact_margins(CLIPS, {"blur": 0.2}).keys() == {"blur"}
    with pytest.raises(ValueError, match="no strength for the kind"):
        mg.margin_table(CLIPS, {"blur": 0.2}, detectors=["eyes"])
    with pytest.raises(ValueError, match="empty"):
        mg.margin_table({}, mg.VISIBLE)


def test_every_detector_of_the_demo_profile_has_a_margin_a_strength_and_a_source():
    cfg = load_profile("demo")
    margins = mg.profile_margins(cfg)
    assert set(margins) == set(MEASURES) and all(m > 0 for m in margins.values())
    for d, e in cfg["artifact_margins"].items():
        assert e["kind"] == DETECTS[d] and 0 < e["strength"] <= 1
        assert e["source"].startswith(f"inject {e['kind']} at strength {e['strength']:g} on the demo's")
    assert mg.profile_strengths(cfg) == {DETECTS[d]: e["strength"] for d, e in cfg["artifact_margins"].items()}


def test_recomputing_the_demo_margins_reproduces_the_profile():
    """The numbers in demo.yaml come from the command, not from a keyboard (about 3 s on the 3 clips)."""
    cfg = load_profile("demo")
    got = mg.artifact_margins(mg.clean_clips(cfg), mg.profile_strengths(cfg))
    want = mg.profile_margins(cfg)
    assert got.keys() == want.keys()
    for d in want:
        assert got[d] == pytest.approx(want[d], rel=1e-6), d


def _with(section) -> dict:
    return {"name": "t", "artifact_margins": section}


def test_a_missing_or_wrong_margin_is_a_config_error():
    good = load_profile("demo")["artifact_margins"]
    with pytest.raises(ConfigError, match=r"no margin for detector 'eyes'.*python -m nriqa.analysis.margins"):
        mg.profile_margins(_with({d: e for d, e in good.items() if d != "eyes"}))
    with pytest.raises(ConfigError, match="no margin for detector"):
        mg.profile_margins({"name": "paper-like"})
    with pytest.raises(ConfigError, match=r"artifact_margins.blur.margin must be a number"):
        mg.profile_margins(_with({**good, "blur": {**good["blur"], "margin": "small"}}))
    with pytest.raises(ConfigError, match=r"artifact_margins.blur.kind must be 'blur'"):
        mg.profile_margins(_with({**good, "blur": {**good["blur"], "kind": "eyes"}}))
    assert mg.profile_margins(_with(good), ["blur"]) == {"blur": good["blur"]["margin"]}


def test_the_printed_block_is_a_section_a_profile_accepts(tmp_path):
    block = mg.margins_block({"name": "demo"}, mg.VISIBLE, clips=CLIPS)
    assert block.startswith("# printed by `python -m nriqa.analysis.margins --profile demo`")
    section = yaml.safe_load(block)["artifact_margins"]
    assert list(section) == list(MEASURES)
    path = tmp_path / "mine.yaml"
    path.write_text("base: demo\nname: mine\n" + block)
    cfg = load_profile(path)
    assert mg.profile_margins(cfg) == pytest.approx(mg.artifact_margins(CLIPS, mg.VISIBLE), rel=1e-6)
    assert "on the demo's 2 test clips" in cfg["artifact_margins"]["eyes"]["source"]
