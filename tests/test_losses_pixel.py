"""Charbonnier: values by hand, eps convention, gradients, bad input."""
import math

import pytest
import torch

from nriqa.losses import Charbonnier, LossInputError


def test_values_by_hand():
    pred = torch.zeros(1, 3, 1, 2)
    target = torch.zeros(1, 3, 1, 2)
    pred[0, 0, 0, 0] = 0.3
    pred[0, 2, 0, 1] = 0.4
    eps = 0.01
    # 6 elements: two differences (0.3, 0.4), four exact
    expected = (math.sqrt(0.09 + eps ** 2) + math.sqrt(0.16 + eps ** 2) + 4 * eps) / 6
    assert Charbonnier(eps)(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_perfect_prediction_scores_eps_and_large_errors_approach_l1():
    x = torch.rand(2, 3, 8, 8)
    assert Charbonnier(1e-6)(x, x).item() == pytest.approx(1e-6, rel=1e-3)
    y = x * 0.5
    l1 = (x - y).abs().mean().item()
    assert Charbonnier(1e-6)(y, x).item() == pytest.approx(l1, rel=1e-4)


def test_video_equals_flattened_frames_and_gradient_finite():
    target = torch.rand(2, 3, 3, 8, 8)
    pred = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    loss = Charbonnier()(pred, target)
    assert loss.item() == pytest.approx(Charbonnier()(pred.flatten(0, 1), target.flatten(0, 1)).item())
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@pytest.mark.parametrize("pred, target, match", [
    (torch.rand(3, 8, 8), torch.rand(3, 8, 8), "shape"),
    (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9), "same shape"),
    (torch.full((1, 3, 4, 4), float("nan")), torch.rand(1, 3, 4, 4), "pred contains NaN"),
    (torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4) * 255, r"target must lie in \[0, 1\]"),
    (torch.rand(1, 3, 4, 4), torch.randint(0, 2, (1, 3, 4, 4)), "floating"),
])
def test_bad_input(pred, target, match):
    with pytest.raises(LossInputError, match=match):
        Charbonnier()(pred, target)


def test_target_required_and_eps_positive():
    with pytest.raises(ValueError, match="target"):
        Charbonnier()(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="eps"):
        Charbonnier(0.0)
