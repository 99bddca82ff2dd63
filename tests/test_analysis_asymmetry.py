"""Assessment accuracy on a small synthetic IQA set of real photos, and the asymmetry table/plot."""
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from nriqa.analysis import assessment_accuracy, asymmetry_correlation, asymmetry_table
from nriqa.analysis.asymmetry import correlations, iqa_arrays
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
