"""nriqa.study.artifact_sources (notebook 03): which run shows an artifact most, the prose about it,
paper A's arms, pixel-optimisation settings, the crops and gallery figures."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from nriqa.study import artifact_sources as artifacts
from nriqa.study import verdicts


def _artifacts() -> pd.DataFrame:
    return pd.DataFrame({"chroma_noise": [0.1, 0.5, 0.3], "edge_artifacts": [0.9, 0.0, 0.0],
                         "blur": [0.2, 0.1, 0.4]}, index=["baseline", "x", "y"])


def test_worst_run_skips_the_baseline_unless_alone():
    arts = _artifacts()
    assert artifacts.worst_run(arts, "chroma_noise") == "x"
    assert artifacts.worst_run(arts, "edge_artifacts") == "x"        # baseline is highest but excluded
    assert artifacts.worst_run(arts.loc[["baseline"]], "blur") == "baseline"
    text = artifacts.describe_artifacts(arts).splitlines()
    assert text[2] == "blur (added blur): highest in 'y' (0.4, 2.0x the baseline's 0.2)"
    arts["edge_artifacts"] = 0.0
    arts.loc["y", "chroma_noise"] = 0.00021
    text = artifacts.describe_artifacts(arts).splitlines()
    assert text[1] == "edge_artifacts (dotted edges): all runs 0.000: none detected"
    assert text[0] == "chroma_noise (coloured dots): highest in 'x' (0.5, 5.0x the baseline's 0.1)"
    assert artifacts.own_measures({"x": {"niqe": 1, "lpips": 2}}) == {"x": ["niqe", "lpips"]}
    arts["edge_artifacts"] = [0.0002, 0.0009, 0.0]  # near zero: not "highest in x"
    arts["blur"] = [2.0, 2.01, 2.005]  # within 1 %: level
    text = artifacts.describe_artifacts(arts).splitlines()
    assert text[1] == "edge_artifacts (dotted edges): all runs below 0.001: none detected"
    assert text[2] == "blur (added blur): all runs 2 (spread 0.01): no run stands out"
    # a highest run level with the baseline is a non-result; a measure named as what it detects is said once
    arts = pd.DataFrame({"ringing": [0.018, 0.0182, 0.01], "eyes": [0.1, 0.3, 0.1]}, index=["baseline", "x", "y"])
    assert artifacts.describe_artifacts(arts).splitlines() == [
        "eyes (dark blobs): highest in 'x' (0.3, 3.0x the baseline's 0.1)",
        "ringing (oscillation across edges): none detected above the baseline's 0.018 (highest: 'x', 0.018)"]


def test_pixel_settings_reads_the_profile():
    s = artifacts.pixel_settings({"pixels": {"steps": 3, "terms": ["gmsd", "nosuch@embedded"]}})
    assert s["steps"] == 3 and s["terms"] == ["gmsd"] and s["start"] == ["bicubic", "baseline"]
    with pytest.raises(ValueError, match="start"):
        artifacts.pixel_settings({"pixels": {"start": ["noise"]}})


def test_crops_figure_picks_the_artifact_run_and_says_ties():
    g = torch.Generator().manual_seed(0)
    gt = {"c": (0.2 + 0.6 * torch.rand(2, 3, 40, 40, generator=g))}
    base = {"c": gt["c"].clone()}
    dotted = {"c": (gt["c"] + 0.4 * (torch.rand(2, 1, 40, 40, generator=g) < 0.05)
                    * torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1)).clamp(0, 1)}
    outputs = {"ground truth": gt, "baseline": base, "same": dict(base), "other": dict(base), "dots": dotted}
    from nriqa.study.judging import artifact_table

    arts = artifact_table(outputs)
    assert artifacts.runs_with_artifact(arts, "chroma_noise", 1) == ["dots"]  # not the first runs in order
    # only runs with more of it than the baseline are shown: "same" and "other" tie with it
    assert artifacts.runs_with_artifact(arts, "chroma_noise", 3) == ["dots"]
    fig = artifacts.crops_figure(outputs, arts, "chroma_noise", k_runs=2, size=16, zoom=2)
    labels = [a.get_xlabel() for a in fig.axes if a.get_xlabel()]
    assert any("\u2191" in t and "vs baseline" in t for t in labels)
    assert all(t.startswith("chroma_noise\n") for t in labels)  # the detector's name, not "dots"
    assert [a.get_title() for a in fig.axes if a.get_title()] == ["ground truth", "baseline", "dots"]
    rows = [a.get_ylabel() for a in fig.axes if a.get_ylabel()]
    assert rows == ["image", "difference to baseline,\namplified 4\u00d7"]  # not "x4", the upscaling factor


def test_no_crop_figure_where_no_run_has_more_than_the_baseline():
    """A run with less of an artifact than the baseline, or within the tie, is no reason for a crop
    figure: crops_figure returns None and the notebook prints one line instead; small values keep
    their significant digits."""
    arts = pd.DataFrame({"blur": [4.73, 4.72, 4.38], "eyes": [0.0005, 0.0009, 0.0004],
                         "ringing": [0.034, 0.0345, 0.058]}, index=["baseline", "gmsd", "brisque"])
    assert artifacts.runs_with_artifact(arts, "blur") == []          # both below the baseline
    assert artifacts.runs_with_artifact(arts, "eyes") == []          # +0.0004: within the 0.001 floor
    assert artifacts.runs_with_artifact(arts, "ringing") == ["brisque"]  # +0.0005 (gmsd) is within 1 %
    assert artifacts.crops_figure({}, arts, "blur") is None  # decided before any frame is read
    line = artifacts.no_crops_line("blur")
    assert line == "blur: none detected \u2014 no run has more than the baseline (no crop figure)"
    assert artifacts._sig(0.00123) == "0.00123" and artifacts._sig(0.0) == "0"


def test_paper_a_arms_are_found_in_the_grid():
    grid = {"niqe-kit": {"niqe-kit": 0.1}, "piqe": {"piqe": 0.2}, "gmsd": {"gmsd": 0.5},
            "lpips-vgg-randtrunk": {"lpips-vgg-randtrunk": 1.0},
            "piqe + lpips-vgg-randtrunk": {"piqe": 0.2, "lpips-vgg-randtrunk": 1.0}}
    assert artifacts.nr_terms(grid) == ["niqe-kit", "piqe"]
    cfg = {"finetune": {"extra_terms": {"niqe-kit": 0.1, "lpips-vgg-randtrunk": None},
                        "combos": [{"piqe": 0.2, "lpips-vgg-randtrunk": 1.0}]}}
    assert artifacts.lpips_term(cfg) == "lpips-vgg-randtrunk"
    assert artifacts.lpips_term({"finetune": {"extra_terms": {"niqe-kit": 0.1}}}) is None
    assert artifacts.nr_lpips_pairs(grid, "lpips-vgg-randtrunk") == [("piqe + lpips-vgg-randtrunk",
                                                                      "piqe")]
    assert verdicts.modes(["psnr", "niqe-kit"], "FR") == ["psnr"]


def test_margin_crops_show_each_detector_on_a_typical_clip_of_the_profile():
    from nriqa.analysis.margins import profile_margins
    from nriqa.config import load_profile

    cfg = load_profile("smoke")  # demo's margins over smoke's smaller clips
    crops = artifacts.margin_crops(cfg, size=16, zoom=2)
    margins = profile_margins(cfg)
    assert list(crops) == list(margins)
    for d, c in crops.items():
        assert c["clean"].shape == c["injected"].shape == (3, 32, 32)
        assert c["clean_value"] == 0 and c["value"] > 0 and c["margin"] == margins[d]
        assert not torch.equal(c["clean"], c["injected"]), d  # the artifact is in the window
