"""The checked entry for generators outside the trainer: ``nriqa.models.check_video`` and
``upscale`` reject uint8 frames, 0..255 floats, NaN/Inf and wrong shapes with an error naming the
input and the expectation; valid input gives the model's own output. The trainer never calls them."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import nriqa
from nriqa.errors import UserError
from nriqa.models import VideoInputError, build, check_video, upscale

NAMES = ["basicvsrpp", "iseebetter", "vrt"]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {n: build(n, "tiny").eval() for n in NAMES}


def lr(*shape) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


BAD = [
    ("uint8 frames", lambda: (lr(1, 2, 3, 8, 8) * 255).to(torch.uint8),
     r"lr must be a floating tensor .* got dtype torch.uint8; 8-bit frames: use x.float\(\) / 255"),
    ("0..255 floats", lambda: lr(1, 2, 3, 8, 8) * 255,
     r"lr must have values in \[0, 1\] \(float RGB\), got min=.*, max=2\d\d.*; 0..255 frames: divide by 255"),
    ("NaN frame", lambda: lr(1, 3, 3, 8, 8).index_fill_(1, torch.tensor([2]), float("nan")),
     r"lr contains NaN or Inf values, in frame\(s\) 2"),
    ("Inf in the second clip", lambda: lr(2, 2, 3, 8, 8).index_fill_(0, torch.tensor([1]), float("inf")),
     r"lr contains NaN or Inf values, in \(clip, frame\) \(1, 0\), \(1, 1\)"),
    ("negative values", lambda: lr(1, 2, 3, 8, 8) - 0.5, r"got min=-0.\d+, max=0.\d+; clamp it to \[0, 1\]"),
    ("images, not video", lambda: lr(2, 3, 8, 8), r"lr must be a video batch \(B,T,3,h,w\) of RGB frames, got shape \(2, 3, 8, 8\)"),
    ("grey frames", lambda: lr(1, 2, 1, 8, 8), r"got shape \(1, 2, 1, 8, 8\)"),
    ("no frames", lambda: lr(1, 0, 3, 8, 8), r"lr is empty: shape \(1, 0, 3, 8, 8\)"),
    ("a list", lambda: [[0.5]], r"lr must be a torch.Tensor \(B,T,3,h,w\) float in \[0, 1\], got list"),
    ("bool frames", lambda: lr(1, 2, 3, 8, 8) > 0.5, r"got dtype torch.bool"),
]


@pytest.mark.parametrize("case,make,message", BAD, ids=[b[0] for b in BAD])
def test_check_video_names_the_input_and_the_expectation(case, make, message):
    with pytest.raises(VideoInputError, match=message) as err:
        check_video(make())
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)
    with pytest.raises(VideoInputError, match=message.replace("lr ", "test clip ", 1) if message.startswith("lr") else message):
        check_video(make(), "test clip")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case,make,message", BAD, ids=[b[0] for b in BAD])
def test_upscale_rejects_bad_frames_before_running_the_model(models, name, case, make, message, monkeypatch):
    model = models[name]
    monkeypatch.setattr(model, "forward", lambda *a: pytest.fail("the model ran on bad input"))
    with pytest.raises(VideoInputError, match=message):
        upscale(model, make())


@pytest.mark.parametrize("name", NAMES)
def test_upscale_returns_the_models_own_output(models, name):
    model = models[name]
    x = lr(2, 3, 3, 7, 9)
    with torch.no_grad():
        direct = model(x)
    out = upscale(model, x)
    assert out.shape == (2, 3, 3, 28, 36) and torch.equal(out, direct)
    assert torch.equal(upscale(model, x.double()), direct)  # cast to the model's dtype
    model.train()
    upscale(model, x)
    assert model.training  # the caller's mode is restored
    model.eval()


def test_upscale_names_a_diverged_model(models):
    model = build("basicvsrpp", "tiny")
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "reconstruction" in n or "upsample" in n).fill_(float("nan"))
    with pytest.raises(VideoInputError, match=r"model 'basicvsrpp' returned NaN or Inf frames .* diverged"):
        upscale(model, lr(1, 2, 3, 8, 8))


def test_upscale_checks_the_output_shape():
    class Half(torch.nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(VideoInputError, match=r"model 'Half' returned \(1, 2, 3, 8, 8\) .* expected \(1, 2, 3, 32, 32\)"):
        upscale(Half(), lr(1, 2, 3, 8, 8))


def test_small_range_overshoot_is_tolerated():
    check_video(lr(1, 2, 3, 4, 4) * (1 + 5e-4))       # bicubic-style overshoot within 1e-3
    check_video(lr(1, 2, 3, 4, 4) - 5e-4)


def test_the_trainer_never_calls_the_checked_entry():
    """check_video reads values back from the device: the training step must not call it."""
    train = Path(nriqa.__file__).parent / "train"
    for path in sorted(train.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not {"check_video", "upscale"} & names, f"{path.name} calls the checked entry"


@pytest.mark.parametrize("name", ["basicvsrpp", "iseebetter", "vrt"])
def test_forward_names_a_wrong_dtype_before_any_conv(name):
    """uint8 or float64 frames given to a generator's forward: one VideoInputError naming the
    conversion (a dtype check reads nothing back from the device), not torch's dtype RuntimeError."""
    from nriqa.models import VideoInputError, build

    model = build(name, "tiny")
    with pytest.raises(VideoInputError, match=r"uint8 .*x\.float\(\) / 255"):
        model(torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(VideoInputError, match=r"float64 .*x\.to\(torch\.float32\)"):
        model(torch.zeros(1, 2, 3, 8, 8, dtype=torch.float64))
