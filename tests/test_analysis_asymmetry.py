"""nriqa.analysis.asymmetry: assessment accuracy on a small synthetic IQA set of real photos, the
asymmetry table/plot, and the assessment labels with known answers: the level order (primary) and the
FR pseudo-score with the assessed measure left out."""
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from doubles import MeanMeasure

from nriqa.analysis import asymmetry_correlation, asymmetry_table
from nriqa.analysis.asymmetry import (
    assessment_accuracy,
    assessment_frame,
    correlations,
    iqa_arrays,
    level_order_srcc,
    pseudo_labels,
)
from nriqa.data.iqa_sets import IQASet
from nriqa.viz.plots import asymmetry_scatter


def photo(name, size=48):
    a = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1).float() / 255
    return F.interpolate(a[None], size=(size, size), mode="area")[0]


class NoiseSet:
    """Photos with Gaussian noise of 5 levels; label = 5 - level (higher = better)."""

    def __init__(self, with_refs=True):
        g = torch.Generator().manual_seed(0)
        refs, imgs, labels = [], [], []
        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            ref = photo(name)
            for level in range(1, 6):
                imgs.append((ref + 0.03 * level * torch.randn(ref.shape, generator=g)).clamp(0, 1))
                refs.append(ref)
                labels.append(5.0 - level + 0.1 * torch.rand(1, generator=g).item())
        self._arrays = (torch.stack(imgs), torch.stack(refs) if with_refs else None, torch.tensor(labels))

    def arrays(self):
        return self._arrays


class PSNR(torch.nn.Module):
    card = SimpleNamespace(name="psnr", mode="FR", higher_better=True)

    def forward(self, x, ref):
        return -10 * torch.log10((x - ref).pow(2).mean((1, 2, 3)).clamp_min(1e-10))


class Roughness(torch.nn.Module):  # NR, lower is better: energy of the image's Laplacian
    card = SimpleNamespace(name="rough", mode="NR", higher_better=False)

    def forward(self, x):
        lap = 4 * x[..., 1:-1, 1:-1] - x[..., 2:, 1:-1] - x[..., :-2, 1:-1] - x[..., 1:-1, 2:] - x[..., 1:-1, :-2]
        return lap.pow(2).mean((1, 2, 3))


class Constant(torch.nn.Module):  # a useless measure: random scores
    card = SimpleNamespace(name="random", mode="NR", higher_better=True)

    def forward(self, x):
        return torch.rand(x.shape[0], generator=torch.Generator().manual_seed(x.shape[0]))


def test_good_measures_correlate_positively_bad_one_does_not():
    iqa = NoiseSet()
    fr = assessment_accuracy(PSNR(), iqa, batch_size=7)
    nr = assessment_accuracy(Roughness(), iqa)  # lower-better: sign flipped, so positive
    rnd = assessment_accuracy(Constant(), iqa)
    assert fr["n"] == 20 and fr["srcc"] > 0.8 and fr["plcc"] > 0.8 and fr["krcc"] > 0.6
    assert nr["srcc"] > 0.5
    assert abs(rnd["srcc"]) < 0.6 and rnd["srcc"] < fr["srcc"]


def test_fr_without_refs_is_an_error():
    with pytest.raises(ValueError, match="full-reference"):
        assessment_accuracy(PSNR(), NoiseSet(with_refs=False))
    with pytest.raises(TypeError, match="arrays"):
        assessment_accuracy(PSNR(), object())


def test_correlations_sign_and_validation():
    y = np.arange(10.0)
    assert correlations(y, y)["srcc"] == pytest.approx(1.0)
    assert correlations(-y, y, higher_better=False)["srcc"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal length"):
        correlations(y[:5], y)


def test_iqaset_adapter_uses_pristine_reference():
    ref = (photo("coffee", 16) * 255).to(torch.uint8)
    noisy = (ref.float() + 20).clamp(0, 255).to(torch.uint8)
    s = IQASet("t", torch.stack([ref, noisy]), np.array([4.0, 2.0]), ["a", "a"], ["pristine", "noise"],
               np.array([0, 3]), "dmos", higher_better=False)
    images, refs, labels = iqa_arrays(s)
    assert torch.equal(refs[1], images[0]) and labels.tolist() == [-4.0, -2.0]


def test_asymmetry_table_and_scatter():
    assess = {m: {"srcc": s, "plcc": s, "krcc": s} for m, s in
              [("a", 0.9), ("b", 0.8), ("c", 0.5), ("d", 0.3), ("e", 0.1)]}
    optimize = {"a": -0.2, "b": -0.1, "c": 0.0, "d": 0.1, "e": 0.3, "zz": 1.0}
    t = asymmetry_table(assess, optimize)
    assert list(t["measure"]) == ["a", "b", "c", "d", "e"]  # sorted by SRCC, intersection only
    rho, p = asymmetry_correlation(t)
    assert rho == pytest.approx(-1.0) and p < 0.05
    fig = asymmetry_scatter(t)
    ax = fig.axes[0]
    assert {tx.get_text() for tx in ax.texts} == set("abcde")
    assert "rho = -1.00" in ax.get_title()
    with pytest.raises(ValueError, match="share no measure"):
        asymmetry_table(assess, {"q": 1.0})


# ----------------------------------------------------- assessment labels: level order, FR pseudo-score

def _levels_set():
    """2 sources x 2 kinds x levels 0..3; pixel value encodes the level (image = level / 10)."""
    imgs, sources, kinds, levels = [], [], [], []
    for s in ("a", "b"):
        imgs.append(torch.zeros(3, 8, 8, dtype=torch.uint8))
        sources.append(s), kinds.append("pristine"), levels.append(0)
        for k in ("blur", "noise"):
            for lv in (1, 2, 3):
                imgs.append(torch.full((3, 8, 8), 20 * lv + (5 if k == "noise" else 0), dtype=torch.uint8))
                sources.append(s), kinds.append(k), levels.append(lv)
    n = len(imgs)
    return IQASet("t", torch.stack(imgs), np.zeros(n), sources, kinds, np.array(levels), "pseudo")


def test_a_measure_equal_to_the_level_orders_perfectly():
    ds = _levels_set()
    scores = ds.levels.astype(float)
    assert level_order_srcc(scores, ds.sources, ds.kinds, ds.levels, higher_better=False)["srcc"] == 1.0
    assert level_order_srcc(scores, ds.sources, ds.kinds, ds.levels, higher_better=True)["srcc"] == -1.0
    flat = level_order_srcc(np.ones(len(scores)), ds.sources, ds.kinds, ds.levels)
    assert flat == {"srcc": 0.0, "krcc": 0.0, "groups": 4}
    pseudo = {"psnr": np.zeros(len(ds)), "ssim": np.zeros(len(ds)), "gmsd": np.zeros(len(ds))}
    darker = -ds.images.float().mean((1, 2, 3)).numpy()   # a pseudo-label that orders as the measure does
    level = MeanMeasure("level", higher_better=False)   # NR, lower is better: the mean pixel = the level
    acc = assessment_accuracy(level, ds, pseudo={**pseudo, "psnr": darker})
    assert (acc["label"], acc["mode"], acc["srcc"], acc["groups"]) == ("level order", "NR", 1.0, 4)
    assert acc["srcc_fr_pseudo"] == pytest.approx(1.0) and acc["fr_pseudo_terms"] == "psnr+ssim+gmsd"


def test_level_order_srcc_equals_scipy_per_group():
    """The array form gives scipy's Spearman rho and Kendall tau-b of every group, averaged: groups
    of several sizes, tied scores, a flat group (0), a group with one level >= 1 (left out)."""
    from scipy import stats as sps
    rng = np.random.default_rng(0)
    sources, kinds, levels, scores = [], [], [], []
    for g, n in enumerate([5, 5, 3, 4, 5, 2]):
        lv = rng.permutation(np.arange(1, n + 1))
        if g == 4:
            lv[:2] = lv[2]                                    # tied levels
        sc = rng.integers(0, 3, n).astype(float) if g != 3 else np.full(n, 0.7)   # ties; group 3 flat
        sources += [f"s{g}"] * (n + 1)
        kinds += ["blur"] * (n + 1)
        levels += [0, *lv]
        scores += [9.0, *sc]
    sources += ["lone", "lone"]
    kinds += ["noise", "noise"]
    levels += [0, 1]
    scores += [1.0, 2.0]
    s, lv = np.array(scores), np.array(levels)
    rhos, taus = [], []
    for g in sorted(set(sources) - {"lone"}):
        idx = [i for i, src in enumerate(sources) if src == g and levels[i] >= 1]
        x, y = s[idx], -lv[idx].astype(float)
        flat = np.ptp(x) == 0
        rhos.append(0.0 if flat else sps.spearmanr(x, y)[0])
        taus.append(0.0 if flat else sps.kendalltau(x, y)[0])
    got = level_order_srcc(s, sources, kinds, lv)
    assert got["groups"] == 6
    assert got["srcc"] == pytest.approx(np.mean(rhos), abs=1e-12)
    assert got["krcc"] == pytest.approx(np.mean(taus), abs=1e-12)


def test_leave_one_out_pseudo_label_excludes_the_measure():
    terms = {"psnr": np.array([1.0, 0.0]), "ssim": np.array([0.0, 1.0]), "gmsd": np.array([0.5, 0.5])}
    labels, used = pseudo_labels(terms, leave_out="gmsd")
    assert used == ["psnr", "ssim"] and labels.tolist() == [0.5, 0.5]
    labels, used = pseudo_labels(terms, leave_out="psnr")
    assert used == ["ssim", "gmsd"] and labels.tolist() == [0.25, 0.75]
    assert pseudo_labels(terms, leave_out="niqe")[1] == ["psnr", "ssim", "gmsd"]

    gmsd = MeanMeasure("gmsd", higher_better=False)
    acc = assessment_accuracy(gmsd, _levels_set(), pseudo={k: np.arange(14.0) for k in terms})
    assert acc["fr_pseudo_terms"] == "psnr+ssim"


def test_frame_keeps_fr_and_nr_apart():
    assess = {"a": {"mode": "NR", "label": "level order", "srcc": 0.2}, "b": {"mode": "FR", "srcc": 0.1},
              "c": {"mode": "NR", "srcc": 0.9}}
    assert list(assessment_frame(assess).index) == ["b", "c", "a"]
