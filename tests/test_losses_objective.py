"""Objective: every term returned, weighted total = sum, spec parsing, errors."""
import pytest
import torch
from torch import nn

from nriqa import quality
from nriqa.losses import (
    AdversarialTerm,
    Charbonnier,
    LossInputError,
    Objective,
    QualityLoss,
    TrainingObjective,
    check_training_objective,
)
from nriqa.quality import base


class MeanBrightness(nn.Module):
    """NR stand-in (higher better, in [0, 1]): mean intensity, through a frozen 1x1 conv."""

    def __init__(self, device="cpu"):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1, bias=False)
        self.conv.weight.data.fill_(1 / 3)

    def forward(self, x):
        return self.conv(x).mean(dim=(1, 2, 3))


@pytest.fixture
def nr_standin(monkeypatch):
    name = "test-standin-brightness"
    card = quality.Card(name=name, mode="NR", higher_better=True, score_range=(0, 1),
                        differentiable=True, min_size=1, video=False)
    monkeypatch.setitem(base._REGISTRY, name, (card, MeanBrightness))
    return name


def _pair(seed=0, shape=(2, 3, 3, 24, 24)):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g)
    pred = (target + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)
    return pred, target


def test_charbonnier_only_objective():
    obj = Objective({"charbonnier": 1.0})
    pred, target = _pair()
    total, terms = obj(pred, target)
    assert list(terms) == ["charbonnier"] and obj.adversarial is None and obj.balancing is None
    assert total.item() == pytest.approx(Charbonnier()(pred, target).item())


def test_every_term_and_weighted_total(nr_standin):
    spec = {"pixel": 1.0, "ssim": 0.5, "gmsd": {"weight": 0.25, "tile": 16}, nr_standin: 0.05}
    obj = Objective(spec)
    pred, target = _pair()
    pred.requires_grad_(True)
    total, terms = obj(pred, target)
    assert list(terms) == ["charbonnier", "ssim", "gmsd", nr_standin]
    assert obj.weights == {"charbonnier": 1.0, "ssim": 0.5, "gmsd": 0.25, nr_standin: 0.05}
    assert isinstance(obj.losses["gmsd"], QualityLoss) and obj.losses["gmsd"].tile == 16
    expected = sum(obj.weights[n] * terms[n] for n in terms)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    for value in terms.values():
        assert value.dim() == 0 and torch.isfinite(value)
    assert terms["ssim"].item() == pytest.approx(QualityLoss("ssim")(pred, target).item(), rel=1e-6)
    total.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    # weights are read at call time
    obj.weights["ssim"] = 0.0
    total2, _ = obj(pred.detach(), target)
    assert total2.item() == pytest.approx((total - 0.5 * terms["ssim"]).item(), rel=1e-5)


def test_gan_term_and_balancing():
    obj = Objective({"charbonnier": 1.0, "weights": "gradnorm",
                     "gan": {"weight": 0.01, "discriminator": "patchgan", "loss": "hinge", "size": "tiny"}})
    assert obj.balancing == "gradnorm"
    assert isinstance(obj.adversarial, AdversarialTerm)
    assert obj.adversarial.kind == "patchgan" and obj.adversarial.loss == "hinge"
    assert obj.adversarial.weight == 0.01
    assert obj.adversarial.discriminator.size == "tiny"
    pred, target = _pair()
    _, terms = obj(pred, target)
    assert list(terms) == ["charbonnier"]  # adversarial term excluded


def test_objective_is_a_training_objective():
    """The trainer reads weights, balancing, losses, adversarial and terms() directly (no getattr defaults)."""
    obj = Objective({"charbonnier": 1.0})
    assert isinstance(obj, TrainingObjective)
    check_training_objective(obj)
    assert obj.losses.keys() == obj.weights.keys() and obj.adversarial is None and obj.balancing is None

    class WeightsOnly:
        weights = {"charbonnier": 1.0}

        def terms(self, pred, target=None):
            return {}

    assert not isinstance(WeightsOnly(), TrainingObjective)
    with pytest.raises(TypeError, match=r"a WeightsOnly lacks balancing, losses, adversarial, __call__"):
        check_training_objective(WeightsOnly())


def test_objective_is_not_a_module_and_keeps_measures_out_of_generators(nr_standin):
    obj = Objective({"charbonnier": 1.0, nr_standin: 0.1})
    assert not isinstance(obj, nn.Module)
    gen = nn.Conv2d(3, 3, 1)
    gen.objective = obj  # a plain attribute, not a child
    assert set(gen.state_dict()) == {"weight", "bias"}
    measure = obj.losses[nr_standin].measure
    assert all(not p.requires_grad for p in measure.parameters())


def test_no_reference_objective_accepts_missing_target(nr_standin):
    obj = Objective({nr_standin: 1.0})
    pred, _ = _pair()
    total, terms = obj(pred)
    assert list(terms) == [nr_standin]
    assert total.item() == pytest.approx(1 - pred.mean().item(), rel=1e-4)


def test_spec_errors():
    with pytest.raises(KeyError, match="did you mean 'lpips-vgg-randtrunk'"):
        Objective({"charbonnier": 1.0, "lpips-vgg-randtrunc": 0.1})
    with pytest.raises(KeyError, match="did you mean 'charbonnier'"):
        Objective({"charbonier": 1.0})
    with pytest.raises(ValueError, match="given twice"):
        Objective({"charbonnier": 1.0, "pixel": 1.0})
    with pytest.raises(ValueError, match="weight must be"):
        Objective({"charbonnier": -1.0})
    with pytest.raises(ValueError, match="weight must be"):
        Objective({"charbonnier": "a lot"})
    with pytest.raises(ValueError, match="non-empty"):
        Objective({})
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        Objective({"charbonnier": 1.0, "gan": {"weight": 0.1, "discriminator": "vit", "loss": "wasserstein"}})
    with pytest.raises(ValueError, match="unknown discriminator"):
        Objective({"charbonnier": 1.0, "gan": {"weight": 0.1, "discriminator": "resnet"}})


def test_input_errors():
    obj = Objective({"charbonnier": 1.0, "ssim": 0.1})
    pred, target = _pair()
    with pytest.raises(LossInputError, match="target is required"):
        obj(pred)
    with pytest.raises(LossInputError, match="same shape"):
        obj(pred, target[:, :2])
    with pytest.raises(LossInputError, match="shape"):
        obj(pred[0, 0, 0], target[0, 0, 0])
    with pytest.raises(LossInputError, match="NaN"):
        obj(pred * float("inf"), target)
    with pytest.raises(LossInputError, match=r"target must lie in \[0, 1\]"):
        obj(pred, target * 255)


def test_unknown_kit_measure_names_the_checkpoint_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path))  # an empty weights folder: no kit checkpoints
    with pytest.raises(KeyError, match="kit-trained measure"):
        Objective({"charbonnier": 1.0, "nosuchnet@embedded": 0.05})
