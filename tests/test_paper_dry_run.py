"""A dry run of the paper profile: what it names exists, fits together and runs one step.

Checked here (fast, on tiny tensors): every loss term the profile names (fine-tune terms and combos,
weight-selection combos, adversarial fidelity and artifact terms, asymmetry's adversarial fidelity)
is a registered, differentiable measure whose ``min_size`` fits the HR training crop
(``data.lr_patch * data.scale``); every judge (``panel``, ``asymmetry.measures``) is registered and
scores the held-out assessment images once enlarged to its ``min_size`` (the policy of
:func:`nriqa.analysis.asymmetry.fit_min_size`); every discriminator is built at the paper size and
takes one generator + one discriminator step; the kit IQA patches fit their images.

Skipped, and why: building the pyiqa networks (MANIQA's ViT-B/8, HyperIQA's ResNet-50, ...) and the
paper-size generators with stub weight files and running them is not done here: the stubs need each
network's exact state_dict layout (pyiqa builds them from downloaded backbones), and a forward of a
ViT-B at 224 px plus a 30 M-parameter VRT step exceeds this test's 60 s budget on 2 CPU cores. The
parameter counts of the paper-size generators are checked in tests/test_models_params.py.
"""
from __future__ import annotations

import pytest
import torch

from nriqa import quality
from nriqa.analysis.asymmetry import fit_min_size
from nriqa.config import load_profile
from nriqa.models.discriminators import build_discriminator
from nriqa.study import runs

PAPER = load_profile("paper")
_PIXEL = {"charbonnier", "gan", "weights"}


def _loss_terms(cfg) -> dict[str, str]:
    """Loss term -> where the profile names it."""
    out: dict[str, str] = {}
    for label, terms in runs.finetune_grid(cfg).items():
        out.update({t: f"finetune {label}" for t in terms})
    for combo in cfg["weights"]["combos"]:
        out.update({t: "weights.combos" for t in combo})
    for key in ("fidelity", "artifact_term"):
        out.update({t: f"adversarial.{key}" for t, w in cfg["adversarial"][key].items() if w is not None})
    out.update({t: "asymmetry.adversarial_fidelity" for t, w in cfg["asymmetry"]["adversarial_fidelity"].items()
                if w is not None})
    return {t: where for t, where in out.items() if t not in _PIXEL}


@pytest.mark.parametrize("term, where", sorted(_loss_terms(PAPER).items()))
def test_every_loss_term_is_a_differentiable_measure_that_fits_the_crop(term, where):
    card = quality.card(term)
    assert card.differentiable, f"{term} ({where}) is not differentiable: a judge, not a loss"
    hr = PAPER["data"]["lr_patch"] * PAPER["data"]["scale"]
    assert card.min_size <= hr, f"{term} ({where}) needs {card.min_size} px, the HR crop is {hr} px"


def test_musiq_as_a_loss_is_caught():
    """The check above fails on a profile that names MUSIQ as a loss (as paper.yaml once did)."""
    bad = load_profile("paper", ["finetune.extra_terms.musiq=0.05"])
    assert "musiq" in _loss_terms(bad) and not quality.card("musiq").differentiable


@pytest.mark.parametrize("name", sorted(set(PAPER["panel"]) | set(PAPER["asymmetry"]["measures"])))
def test_every_judge_is_registered_and_its_input_is_enlarged_to_its_min_size(name):
    card = quality.card(name)
    crop = PAPER["iqa"]["crop"]      # the held-out assessment images (embedded distortion set)
    x = torch.rand(2, 3, crop, crop + 40)
    y = fit_min_size(x, card)
    assert min(y.shape[-2:]) == max(crop, card.min_size)
    assert y.shape[-1] / y.shape[-2] == pytest.approx(x.shape[-1] / x.shape[-2], rel=0.02)


def test_kit_iqa_patches_fit_their_images():
    iqa = PAPER["iqa"]
    assert iqa["dataset"] != "embedded" or iqa["patch"] <= iqa["crop"]
    assert iqa["patch"] <= iqa["eval_crop"]


@pytest.mark.parametrize("kind", PAPER["adversarial"]["discriminators"])
def test_every_discriminator_builds_at_paper_size_and_takes_one_step(kind):
    torch.manual_seed(0)
    d = build_discriminator(kind, PAPER["adversarial"]["size"])
    opt = torch.optim.Adam(d.parameters(), lr=float(PAPER["adversarial"]["d_lr"]))
    side = 224 if kind == "vit" else 64      # the ViT's position grid is 14 x 16 px
    real, fake = torch.rand(1, 3, side, side), torch.rand(1, 3, side, side, requires_grad=True)
    loss = torch.relu(1 - d(real)).mean() + torch.relu(1 + d(fake.detach())).mean()   # hinge, D step
    opt.zero_grad()
    loss.backward()
    opt.step()
    g = -d(fake).mean()                                                                # G step
    g.backward()
    assert torch.isfinite(loss) and fake.grad is not None and torch.isfinite(fake.grad).all()
