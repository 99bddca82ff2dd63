"""ColorVideoVDP through the ``cvvdp`` wheel: the kit's measure is the package's own prediction on the
same frames, identical clips score the package's value (10 JOD), a stronger distortion scores lower,
the loss is differentiable, and the card says what the measure is (and which files it rests on)."""
from __future__ import annotations

import importlib.metadata
import json
import sys

import pycvvdp
import pytest
import torch

from nriqa import quality as q
from nriqa.quality import base
from nriqa.quality import cvvdp_measure as cv


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    """A real 4-frame 64x64 clip ``(1, 4, 3, 64, 64)``: a window panning 1 px per frame over a photo."""
    import skimage.data

    photo = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1).float() / 255
    return torch.stack([photo[:, 120:184, 200 + t:264 + t] for t in range(4)])[None].contiguous()


def noisy(x: torch.Tensor, sigma: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def measure() -> q.Measure:
    return q.create("cvvdp")


@pytest.fixture(scope="module")
def package_metric():
    return pycvvdp.cvvdp(display_name="standard_4k", device=torch.device("cpu"), quiet=True)


def package_jod(metric, test: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    jod, _ = metric.predict(test, ref, dim_order="BFCHW", frames_per_second=cv.FPS)
    return jod.reshape(-1)


def test_the_measure_is_the_packages_prediction(measure, package_metric, clip):
    test = noisy(clip, 0.03)
    both = torch.cat([test, noisy(clip, 0.1)])
    ours = measure(both, clip.expand_as(both))
    theirs = torch.cat([package_jod(package_metric, b[None], clip) for b in both])
    assert ours.shape == (2,)
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0), (ours, theirs)
    assert 0 < float(ours[1]) < float(ours[0]) < 10   # (c): the stronger noise scores lower


def test_identical_clips_score_what_the_package_gives_them(measure, package_metric, clip):
    same = measure(clip, clip)
    assert float(same) == pytest.approx(float(package_jod(package_metric, clip, clip)), abs=1e-6)
    assert float(same) == pytest.approx(cv.JOD_MAX, abs=1e-6)


def test_a_stronger_blur_scores_lower(measure, clip):
    from nriqa.data.degradations import gaussian_blur

    frames = clip[0]
    mild, strong = (gaussian_blur(frames, sigma=s, size=2 * int(3 * s + 0.999) + 1).clamp(0, 1)[None]
                    for s in (0.6, 2.0))
    assert float(measure(mild, clip)) > float(measure(strong, clip))


def test_the_loss_is_differentiable_and_lower_for_the_better_clip(measure, package_metric, clip):
    from nriqa.losses import QualityLoss

    loss = QualityLoss("cvvdp")
    values = []
    for sigma in (0.03, 0.1):
        x = noisy(clip, sigma).requires_grad_(True)
        value = loss(x, clip)
        value.backward()
        assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
        # the kit's loss is the package's own loss() divided by 10
        assert float(value) == pytest.approx(float(package_metric.loss(x.detach(), clip, dim_order="BFCHW",
                                                                       frames_per_second=cv.FPS)) / 10, abs=1e-5)
        values.append(float(value))
    assert 0 < values[0] < values[1]
    assert q.loss_mapping(q.card("cvvdp")) == "(10 - s) / 10"


def test_the_card_full_reference_video_higher_better_offline():
    c = q.card("cvvdp")
    assert (c.mode, c.video, c.higher_better, c.differentiable, c.backend) == ("FR", True, True, True, "cvvdp")
    assert c.score_range == (0, 10) and c.min_size == cv.MIN_SIZE
    assert c.present and "cvvdp" in q.offline_names(differentiable=True)
    for w in c.weights:   # the files inside the installed wheel, checked by size and sha256
        assert w.root == "package:cvvdp" and w.url == f"pip install cvvdp=={cv.VERSION}"
        assert w.path == importlib.metadata.distribution("cvvdp").locate_file(f"{w.subdir}/{w.filename}")
        assert base.verified_path(w) == w.path
    assert importlib.metadata.version("cvvdp") == cv.VERSION
    for words in ("SIGGRAPH 2024", "JOD", "standard_4k", "sRGB", "30 fps", "(10 - JOD) / 10", "cvvdp 0.5.7"):
        assert words in c.description, words


def test_the_card_states_the_packages_display(package_metric):
    display = json.loads(cv.DISPLAYS_FILE.path.read_text())[cv.DISPLAY]
    d = q.card("cvvdp").description
    w, h = display["resolution"]
    assert f"{w}x{h}" in d and f"{display['diagonal_size_inches']}-inch" in d
    assert f"{display['max_luminance']} cd/m^2" in d and f"{display['contrast']}:1" in d
    assert f"{display['E_ambient']} lux" in d and f"{display['viewing_distance_meters']} m" in d
    assert f"{package_metric.pix_per_deg:.1f} px/degree" in d
    assert package_metric.display_photometry.EOTF == "sRGB"


def test_the_card_is_listed_as_runnable_offline(capsys):
    from nriqa.quality.cli import quality_main

    assert quality_main(["--offline", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "cvvdp")
    assert row["present"] and row["video"] and row["loss"] == "(10 - s) / 10"


def test_frames_below_the_minimum_size_are_refused_and_at_it_scored(measure):
    x = torch.rand(1, 2, 3, cv.MIN_SIZE, cv.MIN_SIZE + 3, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(measure(x, (x + 0.05).clamp(0, 1))).all()
    small = x[..., : cv.MIN_SIZE - 1, :]
    with pytest.raises(q.MeasureInputError, match=rf"at least {cv.MIN_SIZE}x{cv.MIN_SIZE}"):
        measure(small, small)
    with pytest.raises(q.MeasureInputError, match="video measure"):
        measure(x[0], x[0])


def test_missing_wheel_files_one_error_naming_pip_before_build(no_wheels, monkeypatch):
    c, _ = base._REGISTRY["cvvdp"]

    def must_not_build(*a, **k):
        raise AssertionError("builder ran although a file is missing")

    monkeypatch.setitem(base._REGISTRY, "cvvdp", (c, must_not_build))
    assert "cvvdp" not in q.offline_names()
    with pytest.raises(q.WeightsMissingError, match=r"pip install cvvdp==0\.5\.7") as e:
        q.create("cvvdp")
    assert all(w.filename in str(e.value) for w in c.weights)


def test_without_the_package_a_clear_error_naming_pip(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycvvdp", None)   # `import pycvvdp` raises ImportError
    with pytest.raises(ImportError, match=r"pip install cvvdp==0\.5\.7"):
        cv.ColorVideoVDP()
