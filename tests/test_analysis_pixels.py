"""Pixel optimization against a loss term (Ding et al. 2021's idea), its gallery figure, and the
captions with arrows."""
import pandas as pd
import pytest
import torch

from nriqa.analysis import pixel_optimization as P
from nriqa.study import artifact_sources as S
from nriqa.viz.plots import difference_tile, tile_grid, zoom_tile


@pytest.fixture(scope="module")
def frames():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(1, 3, 48, 48, generator=g).clamp(0.1, 0.9)
    start = torch.nn.functional.avg_pool2d(gt, 3, 1, 1)  # a blurred start
    return start, gt


def test_optimize_pixels_lowers_the_loss_and_stays_in_range(frames):
    start, gt = frames
    fn = P.pixel_loss("gmsd", gt=gt, start=start)
    res = P.optimize_pixels(start, fn, steps=15, lr=0.02)
    assert res.image.shape == start.shape and 0 <= res.image.min() and res.image.max() <= 1
    assert res.losses[-1] < 0.8 * res.losses[0], res.losses
    assert torch.equal(P.optimize_pixels(start, fn, steps=0).image, start)
    with pytest.raises(ValueError, match="start"):
        P.optimize_pixels(start[:, :2], fn)
    with pytest.raises(ValueError, match="anchor"):
        P.pixel_loss("gmsd", gt=gt, start=start, with_="niqe-kit")


def test_anchor_keeps_the_result_closer_to_the_start(frames):
    start, gt = frames
    alone = P.optimize_pixels(start, P.pixel_loss("gmsd", gt=gt, start=start), steps=15, lr=0.02).image
    held = P.optimize_pixels(start, P.pixel_loss("gmsd", gt=gt, start=start, with_="charbonnier",
                                                 anchor_weight=5.0), steps=15, lr=0.02).image
    assert (held - start).abs().mean() < (alone - start).abs().mean()


def test_gallery_scores_figure_and_inheritance(frames):
    start, gt = frames
    g = P.pixel_gallery({"baseline": start}, gt, ["gmsd"], variants=["alone", "charbonnier"], steps=3)
    assert set(g.images) == {("baseline", v, t) for v in ("alone", "charbonnier") for t in ("start", "gmsd")}
    assert list(g.scores.columns) == list(P.FRAME_DETECTORS) and g.seconds > 0
    fig = S.gallery_figure(g, window=24, zoom=2)
    assert len([a for a in fig.axes if a.images]) == 4
    assert "\u2191" in fig.texts[-1].get_text() or "arrows" in fig.texts[-1].get_text()
    arts = pd.DataFrame({d: [0.0, 0.5] for d in P.FRAME_DETECTORS}, index=["baseline", "gmsd"])
    inh = S.inheritance(g.scores, arts)
    assert set(inh["term"]) == {"gmsd"} and len(inh) == len(P.FRAME_DETECTORS)
    assert (inh["finetune"] == 0.5).all()
    assert "gmsd:" in S.describe_inheritance(inh)
    assert "nothing to compare" in S.describe_inheritance(inh.iloc[:0])


def test_change_caption_arrows_and_ties():
    text = P.change_caption({"blur": 1.0, "eyes": 0.5, "ringing": 0.2}, {"blur": 0.5, "eyes": 0.9, "ringing": 0.21},
                            short=P.SHORT_NAMES).splitlines()
    assert text == ["blur 0.50 \u2193-0.50", "eyes 0.90 \u2191+0.40", "ring 0.21 ="]


def test_tiles_zoom_difference_and_grid():
    x = torch.rand(3, 20, 20)
    z = zoom_tile(x, y=2, x0=3, size=5, zoom=3)
    assert z.shape == (3, 15, 15) and torch.equal(z[:, :3, :3], x[:, 2:3, 3:4].expand(3, 3, 3))
    d = difference_tile(x, x)
    assert torch.allclose(d, torch.full_like(d, 0.5))
    fig = tile_grid({"r1": {"a": z, "b": z}, "r2": {"a": z}}, captions={"r1": {"a": "s 1.0 \u2191"}})
    assert sum(1 for a in fig.axes if a.images) == 3
    with pytest.raises(ValueError, match="empty"):
        tile_grid({})


def test_pixel_settings_reads_the_profile():
    s = S.pixel_settings({"pixels": {"steps": 3, "terms": ["gmsd", "nosuch@embedded"]}})
    assert s["steps"] == 3 and s["terms"] == ["gmsd"] and s["start"] == ["bicubic", "baseline"]
    with pytest.raises(ValueError, match="start"):
        S.pixel_settings({"pixels": {"start": ["noise"]}})


def test_crops_figure_picks_the_artifact_run_and_says_ties():
    g = torch.Generator().manual_seed(0)
    gt = {"c": (0.2 + 0.6 * torch.rand(2, 3, 40, 40, generator=g))}
    base = {"c": gt["c"].clone()}
    dotted = {"c": (gt["c"] + 0.4 * (torch.rand(2, 1, 40, 40, generator=g) < 0.05)
                    * torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1)).clamp(0, 1)}
    outputs = {"ground truth": gt, "baseline": base, "same": dict(base), "other": dict(base), "dots": dotted}
    from nriqa.study.judging import artifact_table

    arts = artifact_table(outputs)
    assert S.runs_with_artifact(arts, "chroma_noise", 1) == ["dots"]  # not the first runs in order
    fig = S.crops_figure(outputs, arts, "chroma_noise", k_runs=2, size=16, zoom=2)
    labels = [a.get_xlabel() for a in fig.axes if a.get_xlabel()]
    assert any("\u2191" in t for t in labels) and any("= baseline" in t for t in labels)
    assert [a.get_title() for a in fig.axes if a.get_title()][:3] == ["ground truth", "baseline", "dots"]
