"""nriqa.analysis.pixel_optimization: pixel optimization against a loss term (Ding et al. 2021's
idea), its gallery figure, and the captions with arrows."""
import pandas as pd
import pytest
import torch

from nriqa.analysis import pixel_optimization as P
from nriqa.study import artifact_sources as S


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
    tiles = [a for a in fig.axes if a.images and a.images[0].get_array().shape[:2] == (48, 48)]  # 24 px x zoom 2
    scores = [a for a in fig.axes if a.images and a.images[0].get_array().shape[1] == 1]        # a score column each
    assert len(tiles) == 4 and len(scores) == 4
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


def test_a_video_measure_optimizes_images_as_one_frame_clips(frames):
    start, gt = frames
    fn = P.pixel_loss("cvvdp", gt=gt, start=start, with_="charbonnier")
    res = P.optimize_pixels(start, fn, steps=5, lr=0.02)
    assert res.image.shape == start.shape and res.losses[-1] < res.losses[0], res.losses
