"""nriqa.study.assess_vs_optimize (notebook 06): human-rated sets wired through the profile, seed
ranges of the optimisation gains, the asymmetry sentence."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from doubles import MeanMeasure, flat_image

from nriqa.errors import ConfigError
from nriqa.study import assess_vs_optimize as study


def test_describe_asymmetry_without_enough_measures_for_a_correlation():
    table = pd.DataFrame({"measure": ["psnr", "niqe"], "srcc": [0.9, 0.3], "gain": [-0.01, 0.02]})
    text = study.describe_asymmetry(table)
    assert text.startswith("Best assessor: psnr (SRCC 0.900); best objective: niqe (held-out effect +0.02 SD).")
    assert "No rank correlation" in text


def test_scatter_draws_each_measures_seed_range():
    from nriqa.viz.plots import asymmetry_scatter

    t = pd.DataFrame({"run": ["a"] * 4 + ["b"] * 4 + ["c"] * 2, "seed": [0, 0, 1, 1] * 2 + [0, 0],
                      "clip": ["x", "y"] * 5, "gain": [0.0, 0.2, 0.4, 0.6, -0.1, -0.1, 0.1, 0.3, 0.5, 0.5]})
    spread = study.seed_range(t)
    assert spread.round(6).to_dict("list") == {"measure": ["a", "b", "c"], "gain_seed_min": [0.1, -0.1, 0.5],
                                               "gain_seed_max": [0.5, 0.2, 0.5]}
    table = pd.DataFrame({"measure": ["a", "b", "c"], "srcc": [0.9, 0.5, 0.1],
                          "gain": list(study.optimization_values({}, t).values())}).merge(spread, on="measure")
    fig = asymmetry_scatter(table, spread=("gain_seed_min", "gain_seed_max"))
    bars = [c for c in fig.axes[0].collections if hasattr(c, "get_segments") and len(c.get_segments()) == 3]
    assert len(bars) == 1
    assert [tuple(np.round(seg[:, 1], 6)) for seg in bars[0].get_segments()] == [(0.1, 0.5), (-0.1, 0.2), (0.5, 0.5)]


def _fake_tid(root):
    """TID2013 layout (mos_with_names.txt, distorted_images/, reference_images/): MOS falls with level."""
    lines = []
    for r in (1, 2):
        flat_image(root / "reference_images" / f"I{r:02d}.BMP", 100)
        for lv in (1, 2, 3):
            name = f"i{r:02d}_01_{lv}.bmp"
            flat_image(root / "distorted_images" / name, 100 + 30 * lv)
            lines.append(f"{6 - lv:.3f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")


def _fake_koniq(root):
    """KonIQ-10k layout: brighter image = higher MOS."""
    rows = []
    for i in range(5):
        flat_image(root / "1024x768" / f"{i}.jpg", 40 * i + 20)
        rows.append(f"{i}.jpg,1,{1 + i},0.5\n")
    (root / "koniq10k_scores_and_distributions.csv").write_text("image_name,c1,MOS,SD\n" + "".join(rows))


def test_profile_iqa_sets_assess_fr_on_fr_sets_and_nr_on_nr_sets(tmp_path, monkeypatch):
    _fake_tid(tmp_path / "tid")
    _fake_koniq(tmp_path / "koniq")
    cfg = {"asymmetry": {"measures": ["psnr", "brightness"],
                         "iqa_sets": {"fr": [{"name": "tid2013", "root": str(tmp_path / "tid")}],
                                      "nr": [{"name": "koniq10k", "root": str(tmp_path / "koniq")}]}}}
    sets = study.human_rated_sets(cfg)
    assert [d.name for d in sets["fr"]] == ["tid2013"] and [d.name for d in sets["nr"]] == ["koniq10k"]
    assert sets["fr"][0].refs is not None and sets["nr"][0].refs is None

    cards = {"psnr": SimpleNamespace(mode="FR", present=True), "brightness": SimpleNamespace(mode="NR", present=True)}
    monkeypatch.setattr(study.quality, "card", lambda n: cards[n])
    real_create = study.quality.create
    bright = MeanMeasure("brightness", higher_better=True)     # NR: a brighter image = a higher MOS
    monkeypatch.setattr("nriqa.quality.create", lambda n, **k: bright if n == "brightness" else real_create(n, **k))
    acc = study.assessment_accuracies(cfg)
    assert acc["psnr"]["mode"] == "FR" and acc["psnr"]["label"] == "mos" and acc["psnr"]["n"] == 6
    assert acc["psnr"]["srcc"] == pytest.approx(1.0) and acc["psnr"]["srcc_tid2013"] == pytest.approx(1.0)
    assert acc["brightness"]["srcc_koniq10k"] == pytest.approx(1.0) and acc["brightness"]["n"] == 5
    with pytest.raises(ConfigError, match="unknown IQA dataset"):
        study.human_rated_sets({"asymmetry": {"iqa_sets": {"nr": [{"name": "nope", "root": "x"}]}}})
    assert study.human_rated_sets({"asymmetry": {"iqa_sets": None}}) == {}


def test_published_accuracy_takes_the_first_human_rated_set_each_measure_has():
    from nriqa.quality.published import published_srcc

    cfg = {"asymmetry": {"measures": ["psnr", "st-lpips-vgg", "cnniqa@embedded"],
                         "published": {"datasets": ["tid2013", "msu-srqa"]}}}
    acc = study.assessment_accuracies(cfg)
    assert set(acc) == {"psnr", "st-lpips-vgg"}                       # the kit model has no human-rated SRCC
    assert acc["psnr"]["srcc"] == pytest.approx(published_srcc("psnr", ["tid2013"]))
    assert acc["psnr"]["dataset"] == "tid2013" and acc["st-lpips-vgg"]["dataset"] == "msu-srqa"
    assert "IQA-PyTorch" in acc["psnr"]["source"] and acc["psnr"]["label"] == "published SRCC (tid2013)"
    assert study.left_out(cfg, acc) == ["cnniqa@embedded"]
    with pytest.raises(ConfigError, match="pixels' or 'finetune'"):
        study.optimization_gains({"asymmetry": {"optimization": "dreams", "measures": ["psnr"]}})


def test_pixel_gains_are_the_median_other_judge_in_seed_sd_units():
    """Two judges: j1 (higher better) rises by 2 seed-SDs for measure 'a', j2 (lower better) falls by
    4 SDs (an improvement); 'a' itself is left out of its own judges."""
    rows = []
    for seed, base in enumerate([0.0, 1.0, 2.0]):               # start images: SD 1 over seeds in every clip
        for clip in ("c0", "c1"):
            for run, (j1, j2, a) in {"start": (base, 10 + base, 5.0), "a": (base + 2, 10 + base - 4, 9.0)}.items():
                for measure, score, hb in (("j1", j1, True), ("j2", j2, False), ("a", a, True)):
                    rows.append({"run": run, "seed": seed, "model": "m", "dataset": "d", "clip": clip,
                                 "measure": measure, "score": score, "higher_better": hb})
    gains = study.pixel_optimization_gains(pd.DataFrame(rows))
    assert list(gains.columns) == ["run", "seed", "model", "dataset", "clip", "gain"]
    assert len(gains) == 6 and set(gains["run"]) == {"a"}
    assert gains["gain"].to_numpy() == pytest.approx(np.full(6, 3.0))    # median of +2 and +4


def test_b1_judges_score_an_optimized_crop_with_a_video_judge_too():
    import torch

    from nriqa import quality
    from nriqa.study.assess_vs_optimize import _judge

    g = torch.Generator().manual_seed(0)
    gt = torch.rand(1, 3, 64, 64, generator=g)
    scores = _judge({"cvvdp": quality.create("cvvdp"), "psnr": quality.create("psnr")}, gt.clone(), gt)
    assert scores["cvvdp"] == pytest.approx(10.0, abs=1e-3) and scores["psnr"] > 60
