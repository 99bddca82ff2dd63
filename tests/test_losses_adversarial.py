"""Adversarial losses: signs checked numerically, AdversarialTerm gradient routing."""
import pytest
import torch

from nriqa.losses import (
    ADVERSARIAL_LOSSES,
    AdversarialTerm,
    LossInputError,
    discriminator_loss,
    generator_loss,
)
from nriqa.models.discriminators import build_discriminator


def _logits(seed, shape=(4, 1), spread=False):
    """Logits of an undecided D, in [0.1, 0.8], where every loss is active (hinge and lsgan
    saturate/turn around outside their margins); ``spread``: standard normal logits."""
    g = torch.Generator().manual_seed(seed)
    if spread:
        return torch.randn(shape, generator=g)
    return 0.1 + 0.7 * torch.rand(shape, generator=g)


@pytest.mark.parametrize("kind", ADVERSARIAL_LOSSES)
@pytest.mark.parametrize("shape", [(4, 1), (2, 1, 3, 5)])
def test_signs_by_finite_differences(kind, shape):
    fake, real = _logits(0, shape), _logits(1, shape)
    step = 0.1
    d0 = discriminator_loss(fake, real, kind)
    assert discriminator_loss(fake, real + step, kind) < d0       # real logits up -> D loss down
    assert discriminator_loss(fake - step, real, kind) < d0       # fake logits down -> D loss down
    g0 = generator_loss(fake, real, kind)
    assert generator_loss(fake + step, real, kind) < g0           # fake logits up -> G loss down
    for value in (d0, g0):
        assert value.dim() == 0 and torch.isfinite(value)


@pytest.mark.parametrize("kind", ["vanilla", "relativistic"])
def test_logistic_losses_monotone_for_any_logits(kind):
    fake, real = _logits(4, spread=True) * 3, _logits(5, spread=True) * 3
    d0, g0 = discriminator_loss(fake, real, kind), generator_loss(fake, real, kind)
    assert discriminator_loss(fake, real + 0.1, kind) < d0
    assert discriminator_loss(fake - 0.1, real, kind) < d0
    assert generator_loss(fake + 0.1, real, kind) < g0


@pytest.mark.parametrize("kind", ADVERSARIAL_LOSSES)
def test_gradient_signs(kind):
    fake = _logits(2).requires_grad_(True)
    real = _logits(3).requires_grad_(True)
    discriminator_loss(fake, real, kind).backward()
    assert (real.grad <= 0).all() and (real.grad < 0).any()
    assert (fake.grad >= 0).all() and (fake.grad > 0).any()
    fake.grad = None
    generator_loss(fake, real.detach(), kind).backward()
    assert (fake.grad <= 0).all() and (fake.grad < 0).any()


def test_known_values():
    z = torch.zeros(3, 1)
    log2 = torch.log(torch.tensor(2.0)).item()
    assert discriminator_loss(z, z, "vanilla").item() == pytest.approx(2 * log2)
    assert generator_loss(z, None, "vanilla").item() == pytest.approx(log2)
    assert discriminator_loss(z, z, "hinge").item() == pytest.approx(2.0)
    assert generator_loss(torch.full((3, 1), 0.5), None, "hinge").item() == pytest.approx(-0.5)
    assert discriminator_loss(z, z + 1, "lsgan").item() == pytest.approx(0.0)
    assert generator_loss(z, z, "relativistic").item() == pytest.approx(log2)


def test_unknown_loss_and_missing_real():
    with pytest.raises(ValueError, match="did you mean 'hinge'"):
        generator_loss(torch.zeros(2, 1), None, "hinje")
    with pytest.raises(ValueError, match="real_logits"):
        generator_loss(torch.zeros(2, 1), None, "relativistic")


@pytest.mark.parametrize("loss", ADVERSARIAL_LOSSES)
def test_term_generator_step_leaves_discriminator_untouched(loss):
    torch.manual_seed(0)
    disc = build_discriminator("patchgan", size="tiny")
    term = AdversarialTerm(disc, loss=loss, weight=0.01, kind="patchgan")
    assert term.kind == "patchgan" and term.loss == loss and term.weight == 0.01
    pred = torch.rand(1, 2, 3, 32, 32, requires_grad=True)  # video: flattened to frames
    real = torch.rand(1, 2, 3, 32, 32)
    g = term.generator_loss(pred, real)
    g.backward()
    assert all(p.grad is None for p in disc.parameters())
    assert all(p.requires_grad for p in disc.parameters())  # flags restored
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    pred.grad = None
    d = term.discriminator_loss(pred, real)
    d.backward()
    assert pred.grad is None  # fake detached in the D step
    grads = [p.grad for p in disc.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)


def test_term_bad_input():
    term = AdversarialTerm(build_discriminator("vanilla"), loss="hinge")
    with pytest.raises(LossInputError, match="3 channels"):
        term.discriminator_loss(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))
    with pytest.raises(LossInputError, match=r"real must lie in \[0, 1\]"):
        term.discriminator_loss(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32) * 255)
    with pytest.raises(LossInputError, match="same shape"):
        term.discriminator_loss(torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32))
    with pytest.raises(TypeError):
        AdversarialTerm("patchgan")
