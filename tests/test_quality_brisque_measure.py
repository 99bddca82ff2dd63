"""BRISQUE in torch: the wheel's libsvm model parsed here, agreement and ranking against the
``brisque`` package's own scoring on five scikit-image photos (the wheel's grey image), MATLAB's
8-bit grey image by default, direction, gradients, shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nriqa import quality as q
from nriqa.quality import brisque_measure as B

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket")


def photo_uint8(name: str) -> np.ndarray:
    """A scikit-image photo as (H, W, 3) uint8 (grey photos repeated over RGB)."""
    from skimage import data as skd

    a = getattr(skd, name)()
    return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def m() -> q.Measure:
    return q.create("brisque")


def package_score(a: np.ndarray) -> float:
    """The ``brisque`` package's ``BRISQUE().score(a)``, step by step.

    ``score()`` itself stops on numpy 2 (a float() of a shape-(1,) array inside its feature code);
    this runs the same methods in the same order and turns each feature into a plain float before
    the package's own scaling and libsvm prediction.
    """
    import cv2
    import skimage.color
    from brisque import BRISQUE

    b = BRISQUE(url=False)
    g = skimage.color.rgb2gray(b.remove_alpha_channel(a))
    f1 = b.calculate_brisque_features(g, kernel_size=7, sigma=7 / 6)
    half = cv2.resize(g, None, fx=1 / 2, fy=1 / 2, interpolation=cv2.INTER_CUBIC)
    f2 = b.calculate_brisque_features(half, kernel_size=7, sigma=7 / 6)
    feats = np.array([np.asarray(v, dtype=float).item() for v in np.concatenate((f1, f2))])
    return float(b.calculate_image_quality_score(feats))


def test_libsvm_model_parsed():
    model = B.published_model()
    assert model["gamma"] == 0.05 and model["rho"] == -155.845
    assert model["coef"].shape == (770,) and model["sv"].shape == (770, 36)
    assert np.abs(model["sv"]).max() <= 1.0 + 1e-9                 # scaled to [-1, 1]
    assert model["lo"].shape == (36,) and (model["hi"] > model["lo"]).all()


def test_libsvm_reader_sparse_rows_and_errors(tmp_path):
    f = tmp_path / "m.txt"
    f.write_text("svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\nnr_class 2\ntotal_sv 2\nrho -1.5\nSV\n"
                 "0.25 1:0.5 3:-1 \n-0.75 2:1 \n")
    got = B.read_libsvm_model(f)
    assert got["gamma"] == 0.5 and got["rho"] == -1.5 and np.array_equal(got["coef"], [0.25, -0.75])
    assert np.array_equal(got["sv"], [[0.5, 0, -1], [0, 1, 0]])     # absent indices are 0
    f.write_text("svm_type c_svc\nkernel_type rbf\nSV\n")
    with pytest.raises(ValueError, match="regression"):
        B.read_libsvm_model(f)
    f.write_text("svm_type epsilon_svr\nkernel_type rbf\ntotal_sv 3\nrho 0\nSV\n1 1:0\n")
    with pytest.raises(ValueError, match="3 support vectors"):
        B.read_libsvm_model(f)


def test_scaling_file_refuses_objects(tmp_path):
    import pickle

    f = tmp_path / "s.pickle"
    f.write_bytes(pickle.dumps({"min_": [0.0] * 36, "max_": [1.0] * 36}))
    lo, hi = B.read_scaling(f)
    assert lo.shape == hi.shape == (36,)
    f.write_bytes(pickle.dumps({"min_": np.zeros(36), "max_": np.ones(36)}))   # references numpy: refused
    with pytest.raises(pickle.UnpicklingError):
        B.read_scaling(f)


def test_svr_reproduces_the_package_on_its_own_features():
    """The SVR in torch equals libsvm's prediction for the same features (the package's own)."""
    import cv2
    import skimage.color
    from brisque import BRISQUE

    net = B.BRISQUE(B.published_model())
    b = BRISQUE(url=False)
    g = skimage.color.rgb2gray(photo_uint8("chelsea"))
    half = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    f = np.array([np.asarray(v, dtype=float).item() for v in
                  np.concatenate((b.calculate_brisque_features(g), b.calculate_brisque_features(half)))])
    assert float(net.svr(torch.from_numpy(f)[None])) == pytest.approx(b.calculate_image_quality_score(f), abs=1e-6)


def test_halving_matches_opencv_bicubic():
    import cv2

    g = np.random.default_rng(0).random((39, 51))
    for a in (g, g[:37, :50], g[:38, :49]):          # odd sides: OpenCV rounds the half to even
        ref = cv2.resize(a, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        got = B.halve(torch.from_numpy(a)[None, None])[0, 0].numpy()
        assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-12


def test_wheel_grey_reproduces_the_brisque_package():
    """With the wheel's grey image nriqa computes the package's own score (same order, within 0.05)."""
    net = B.BRISQUE(B.published_model(), grey_image="wheel")
    rows = []
    for name in PHOTOS:
        a = photo_uint8(name)
        with torch.no_grad():
            rows.append((name, float(net(to_tensor(a))), package_score(a)))
    table = "\n".join(f"{n:10s} nriqa {x:8.3f}  brisque package {y:8.3f}" for n, x, y in rows)
    ours = sorted(PHOTOS, key={n: x for n, x, _ in rows}.get)
    theirs = sorted(PHOTOS, key={n: y for n, _, y in rows}.get)
    assert ours == theirs, table
    assert all(abs(x - y) < 0.05 for _, x, y in rows), table


def test_default_uses_matlab_rgb2gray_on_8_bits(m):
    """The default grey image is MATLAB's ``rgb2gray`` of the uint8 image (integers), and the score
    stays near the package's (the SVR's own features differ only in the grey image): within 2."""
    a = photo_uint8("coffee")
    x = to_tensor(a).double()
    y = B.grey_matlab(x)
    exact = a.astype(np.float64) @ np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    assert torch.equal(y, torch.round(y))
    assert np.abs(y[0, 0].numpy() - np.round(exact)).max() == 0
    for name in PHOTOS:
        a = photo_uint8(name)
        assert abs(float(m(to_tensor(a))) - package_score(a)) < 2.0, name
    with pytest.raises(ValueError, match="grey_image"):
        B.BRISQUE(B.published_model(), grey_image="bt709")


def test_rounded_grey_passes_gradients_straight_through():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    B.grey_matlab(x).sum().backward()
    w = torch.tensor([0.298936021293775, 0.587043074451121, 0.114020904255103], dtype=torch.float64)
    assert torch.allclose(x.grad[0, :, 0, 0], 255 * w)


def test_direction_gradients_and_shapes(m):
    from nriqa.data.degradations import gaussian_blur

    x = to_tensor(photo_uint8("astronaut")[96:352, 96:352])          # 256 x 256
    g = torch.Generator().manual_seed(0)
    blurred = gaussian_blur(x, sigma=2.0, size=13).clamp(0, 1)
    noisy = (x + 0.08 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    s = m(torch.cat([x, blurred, noisy]))
    assert s.shape == (3,) and s.dtype == torch.float32
    assert s[0] < s[1] and s[0] < s[2], s
    video = torch.stack([x[0, :, :64, :64], x[0, :, 64:128, :64]])[None]   # (1, 2, 3, 64, 64)
    assert m(video).shape == (2,)
    xr = blurred.clone().requires_grad_(True)
    q.to_loss(m(xr), m.card).sum().backward()
    assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 32x32"):
        m(torch.rand(1, 3, 24, 64))


def test_card():
    c = q.card("brisque")
    assert c.mode == "NR" and not c.higher_better and c.differentiable and c.present
    assert [w.filename for w in c.weights] == ["svm.txt", "normalize.pickle"]
    assert "LIVE" in c.description and "brisque 0.2.0" in c.description and "rgb2gray" in c.description
    assert q.loss_mapping(c) == "s / 100"
