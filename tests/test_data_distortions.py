"""nriqa.data.distortions: every kind degrades monotonically, deterministically, within range."""
import numpy as np
import pytest
import torch
from skimage import data as skdata

from nriqa.data.distortions import DISTORTIONS, distort


def _crop(name, top, left, size=96):
    img = getattr(skdata, name)()[top:top + size, left:left + size]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0


IMAGES = [_crop("astronaut", 100, 100), _crop("coffee", 150, 250)]


def _psnr(a, b):
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def test_at_least_ten_kinds():
    assert len(DISTORTIONS) >= 10
    assert {"gaussian_blur", "motion_blur", "bicubic_downup", "white_noise", "jpeg", "saturation", "contrast",
            "oversharpen", "chroma_noise", "pixelate"} <= set(DISTORTIONS)


@pytest.mark.parametrize("kind", DISTORTIONS)
def test_psnr_decreases_with_level(kind):
    for img in IMAGES:
        psnrs = [_psnr(distort(img, kind, lv), img) for lv in range(1, 6)]
        assert all(np.diff(psnrs) < 0), (kind, psnrs)
        assert psnrs[0] < 60, "level 1 must change the image"


@pytest.mark.parametrize("kind", DISTORTIONS)
def test_deterministic_shape_and_range(kind):
    img = IMAGES[0]
    a, b = distort(img, kind, 3), distort(img.clone(), kind, 3)
    assert torch.equal(a, b)
    assert a.shape == img.shape and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_non_square_and_input_untouched():
    img = IMAGES[0][:, :64, :80].clone()
    before = img.clone()
    out = distort(img, "pixelate", 5)
    assert out.shape == (3, 64, 80)
    assert torch.equal(img, before)


@pytest.mark.parametrize("args,match", [
    (("blurr", 1), "unknown"),
    (("jpeg", 0), "1..5"),
    (("jpeg", 6), "1..5"),
    (("jpeg", 2.5), "1..5"),
])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        distort(IMAGES[0], *args)


def test_bad_image_shape():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        distort(IMAGES[0][None], "jpeg", 1)
