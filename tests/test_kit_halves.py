"""The kit NR-IQA models used as loss terms and those used as judges train on disjoint halves of the
embedded distortion set (sources and kinds), their cards say so, and the study refuses a judge that
shares training data with a loss term of the run it judges."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from nriqa import quality
from nriqa.config import load_profile
from nriqa.data.distortions import DISTORTIONS
from nriqa.data.embedded import TEST_SOURCES, embedded_clips
from nriqa.data.iqa_sets import CONTENT, HALVES, embedded_half_set, half_of_source, load_iqa_dataset
from nriqa.errors import ConfigError
from nriqa.iqa import train_iqa
from nriqa.iqa.iqa_training import iqa_config, kit_models, kit_name, kit_set_key
from nriqa.quality.kit import kit_card, recreate_hint
from nriqa.study import verdicts as vt

SMALL = {"crop": 32, "max_sources": 8, "progress": False}


@pytest.fixture(scope="module")
def halves():
    """Both halves of the embedded set, train and test, built from the real frames (small crops)."""
    return {(h, split): embedded_half_set(h, split, **SMALL) for h in HALVES for split in ("train", "test")}


def _content(ds) -> set[str]:
    return {ds.meta[CONTENT][s] for s in ds.sources}


def test_the_halves_share_no_source_no_kind_and_no_image(halves):
    a, b = halves["a", "train"], halves["b", "train"]
    assert _content(a) and _content(b) and not _content(a) & _content(b)          # disjoint clip sources
    kinds = {h: set(halves[h, "train"].kinds) - {"pristine"} for h in HALVES}
    assert kinds["a"] and kinds["b"] and not kinds["a"] & kinds["b"]               # disjoint distortion kinds
    assert kinds["a"] | kinds["b"] == set(DISTORTIONS)                              # every kind used once
    assert not set(a.sources) & set(b.sources)                                     # no pristine frame in both
    for h in HALVES:
        assert _content(halves[h, "train"]) <= set(HALVES[h].sources)
        assert set(halves[h, "test"].kinds) - {"pristine"} == kinds[h]             # tested on its own kinds
        assert _content(halves[h, "test"]) <= TEST_SOURCES                         # on held-out content
    whole = load_iqa_dataset("embedded", None, "train", **SMALL)
    assert len(a) + len(b) < len(whole)                                            # the cross kinds are left out


def test_every_training_source_has_one_half_and_each_half_has_video_and_photo():
    train = {c.source for c in embedded_clips("train", progress=False)}
    assert {half_of_source(s) for s in train} == {"a", "b"}
    for h in HALVES.values():
        mine = {s for s in train if half_of_source(s) == h.name}
        assert mine == set(h.sources) & train
        assert any(s.startswith("photo-") for s in mine) and any(not s.startswith("photo-") for s in mine)
    with pytest.raises(ValueError, match="half"):
        embedded_half_set("c", "train", **SMALL)


def test_the_study_refuses_a_judge_sharing_training_data_with_a_loss_term():
    with pytest.raises(ConfigError, match=r"'cnniqa@embedded-a'.*\['embedded-a'\].*'dbcnn@embedded-a'"):
        vt.check_independent_judges(["psnr", "cnniqa@embedded-a"], ["charbonnier", "dbcnn@embedded-a"])
    with pytest.raises(ConfigError, match="its own score"):
        vt.check_independent_judges(["niqe"], ["niqe"])
    with pytest.raises(ConfigError, match="koniq10k"):   # two models fitted on KonIQ-10k
        vt.check_independent_judges(["dbcnn"], ["maniqa"])
    # the verdict path refuses before it computes anything (this table would not do)
    with pytest.raises(ConfigError, match="cnniqa@embedded-a"):
        vt.standardised_effects(pd.DataFrame(), ["vitiqa@embedded-b", "cnniqa@embedded-a"], pd.Series(dtype=float),
                                terms=["dbcnn@embedded-a"])


def test_judges_of_the_other_half_pass_and_held_out_judges_leave_the_rest_out():
    judges = ["psnr", "niqe", "brisque", "vitiqa@embedded-b", "cnniqa@embedded-b"]
    vt.check_independent_judges(judges, ["charbonnier", "cnniqa@embedded-a", "st-lpips-alex"])
    assert vt.shared_training_data("cnniqa@embedded-b", ["dbcnn@embedded-a"]) == set()
    assert vt.shared_training_data("cnniqa@embedded", ["dbcnn@embedded-b"]) == {"embedded-b"}   # whole set
    panel = ["psnr", "niqe", "cnniqa@embedded-a", "vitiqa@embedded-b", "niqe-kit", "dbcnn@embedded-a"]
    assert vt.held_out_judges(panel, ["dbcnn@embedded-a"]) == ["psnr", "niqe", "vitiqa@embedded-b"]
    assert vt.held_out_judges(["dbcnn", "nima", "niqe"], ["maniqa"]) == ["nima", "niqe"]


def test_cards_state_their_training_data():
    a = kit_card("cnniqa@embedded-a")
    assert a.training_data == ("embedded-a",)
    assert all(s in a.description for s in HALVES["a"].sources + HALVES["a"].kinds)
    assert kit_card("vitiqa@embedded-b").training_data == ("embedded-b",)
    assert kit_card("cnniqa@embedded").training_data == ("embedded-a", "embedded-b")
    assert kit_card("dbcnn@kadid10k").training_data == ("kadid10k",)
    expected = {"niqe": ("niqe-pristine",), "brisque": ("live",), "st-lpips-alex": ("bapps",),
                "lpips-vgg": ("bapps",), "dbcnn": ("koniq10k",), "nima": ("ava",), "psnr": (), "gmsd": (),
                "niqe-kit": ("embedded-a", "embedded-b")}
    for name, data in expected.items():
        assert quality.card(name).training_data == data, name
    with pytest.raises(ValueError, match="training_data"):
        quality.Card(name="x", mode="NR", higher_better=True, score_range=None, differentiable=False, min_size=1,
                     video=False, training_data="koniq10k")


def test_kit_model_names_carry_their_half():
    cfg = {"iqa": {"models": ["cnniqa@embedded-a", "cnniqa@Embedded-B", "dbcnn"], "per_arch": {"cnniqa": {"steps": 7}}}}
    assert kit_models(cfg) == ["cnniqa@embedded-a", "cnniqa@embedded-b", "dbcnn@embedded"]
    assert iqa_config(cfg, "cnniqa@embedded-b")["dataset"] == "embedded-b"
    assert iqa_config(cfg, "cnniqa@embedded-b")["steps"] == 7                      # per_arch by the arch
    assert kit_name("cnniqa", "embedded-a") == "cnniqa@embedded-a" and kit_name("x", "KADID-10k") == "x@kadid10k"
    for bad in (["cnniqa@embedded-c"], ["cnniqa@embedded-a", "cnniqa@embedded-a"], ["resnet@embedded-a"]):
        with pytest.raises(ConfigError, match="iqa.models"):
            kit_models({"iqa": {"models": bad}})
    # the split's definition keys the kit set: other halves would be other models
    assert kit_set_key(cfg) != kit_set_key({"iqa": {**cfg["iqa"], "models": ["cnniqa", "cnniqa@embedded-b", "dbcnn"]}})
    assert "train-iqa cnniqa@embedded-b --profile demo" in recreate_hint("x/cnniqa@embedded-b.pt")


def test_profiles_judge_half_a_terms_with_half_b_models():
    for name in ("demo", "smoke"):
        cfg = load_profile(name)
        kit = kit_models(cfg)
        terms = {t for t, w in cfg["finetune"]["extra_terms"].items() if w is not None}
        terms |= {t for combo in cfg["finetune"]["combos"] for t in combo}
        assert all(t.endswith("@embedded-a") for t in terms if "@" in t) and any("@" in t for t in terms)
        judges = [m for m in cfg["panel"] if m not in terms]
        assert [m for m in cfg["panel"] if "@" in m] and all(m in kit for m in cfg["panel"] if "@" in m)
        vt.check_independent_judges(judges, sorted(terms))


def test_a_kit_model_trains_on_its_half_and_is_scored_on_the_other_half(tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "w"))
    cfg = {"iqa": {"steps": 2, "batch_size": 2, "patch": 32, "eval_crop": 32, "crop": 32, "max_sources": 8}}
    m = train_iqa("cnniqa@embedded-a", cfg, tmp_path / "run", progress=False)
    assert m["name"] == "cnniqa@embedded-a" and m["dataset"] == "embedded-a" and m["training_data"] == ["embedded-a"]
    assert set(m["held_out"]["per_kind"]) == set(HALVES["a"].kinds)
    assert set(m["held_out_other_half"]["per_kind"]) == set(HALVES["b"].kinds)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n_train"] == m["n_train"]
    card = quality.card("cnniqa@embedded-a")
    assert card.present and card.training_data == ("embedded-a",)
