"""Artifact detectors validated by injection into real video frames (nriqa.data.embedded):
each detector grows with its own artifact's strength, is 0 on clean frames, and stays small on
every other artifact kind (thresholds below; no overlaps are allowed)."""
import pytest
import torch

from nriqa.analysis import artifacts as A
from nriqa.analysis import inject as I
from nriqa.data.embedded import embedded_clips

STRENGTHS = (0.25, 0.5, 1.0)
OWN_MIN = 0.1          # a detector's mean score on its own artifact at strength 0.25 is at least this
OFF_MAX = 0.2          # ... and every other kind scores below OFF_MAX x its own score, at every strength


def _crop(x, s=96):
    h, w = x.shape[-2:]
    return x[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


@pytest.fixture(scope="module")
def clips():
    named = {c.name: c for c in embedded_clips("test", progress=False)}
    return [_crop(named[n].hr[:4]) for n in ("bikes-shot3/00", "carphone/00")]  # real video frames


@pytest.fixture(scope="module")
def tables(clips):
    return {s: I.confusion_table(clips, strength=s) for s in STRENGTHS}


def test_injectors_are_pure_repeatable_and_bounded(clips):
    x = clips[0]
    for kind in I.INJECTORS:
        y = I.inject(x, kind, 0.7, seed=3)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1, kind
        assert torch.equal(y, I.inject(x, kind, 0.7, seed=3)), kind
        assert (y - x).abs().max() > 0.02, kind  # it does change the frames
        assert torch.allclose(I.inject(x, kind, 0.0), x, atol=1e-6), kind  # strength 0: unchanged
    with pytest.raises(ValueError, match="strength"):
        I.coloured_dots(x, 1.5)
    with pytest.raises(ValueError, match="unknown artifact kind"):
        I.inject(x, "smudge", 0.5)
    with pytest.raises(ValueError, match=r"\(T,3,H,W\)"):
        I.blur(x[:, :2], 0.5)


def test_every_detector_has_an_injected_kind():
    assert set(I.DETECTS) == set(A.MEASURES) and set(I.DETECTS.values()) == set(I.INJECTORS)


@pytest.mark.parametrize("detector", list(I.DETECTS))
def test_detector_is_monotone_in_its_artifact(tables, detector):
    kind = I.DETECTS[detector]
    vals = [tables[s].loc[detector, kind] for s in STRENGTHS]
    assert vals[0] >= OWN_MIN, (detector, vals)
    assert vals[0] < vals[1] < vals[2], (detector, vals)


def test_clean_frames_score_zero(tables):
    assert (tables[0.5]["clean"].abs() < 1e-6).all(), tables[0.5]["clean"]


@pytest.mark.parametrize("detector", list(I.DETECTS))
def test_detector_stays_small_on_other_kinds(tables, detector):
    for s, t in tables.items():
        own = t.loc[detector, I.DETECTS[detector]]
        for kind in I.INJECTORS:
            if kind != I.DETECTS[detector]:
                assert t.loc[detector, kind] < OFF_MAX * own, (detector, kind, s, t.loc[detector, kind], own)


def test_dotted_edges_are_found_under_frame_wide_noise(clips):
    # fine-tunes add texture everywhere; that must neither read as dotted edges nor hide them
    g = torch.Generator().manual_seed(0)
    noise = [0.02 * torch.randn(c.shape, generator=g) for c in clips]
    alone = A.edge_artifacts(torch.cat([I.dotted_edges(c, 0.5) for c in clips]), torch.cat(clips)).scores.mean()
    noisy = torch.cat([(I.dotted_edges(c, 0.5) + n).clamp(0, 1) for c, n in zip(clips, noise)])
    assert A.edge_artifacts(noisy, torch.cat(clips)).scores.mean() > 0.5 * alone
    only_noise = torch.cat([(c + n).clamp(0, 1) for c, n in zip(clips, noise)])
    assert A.edge_artifacts(only_noise, torch.cat(clips)).scores.mean() < 0.05 * alone
