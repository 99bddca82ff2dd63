"""A dry run of the paper profile: what it names exists, fits together and runs one step.

Checked here (fast, on tiny tensors): every loss term the profile names (fine-tune terms and combos,
weight-selection combos, adversarial fidelity and artifact terms, asymmetry's adversarial fidelity)
is a registered, differentiable measure whose ``min_size`` fits the HR training crop
(``data.lr_patch * data.scale``); every judge (``panel``, ``asymmetry.measures``) is registered and
scores the held-out assessment images once enlarged to its ``min_size`` (the policy of
:func:`nriqa.analysis.asymmetry.fit_min_size`); every discriminator is built at the paper size and
takes one generator + one discriminator step; the kit IQA patches fit their images.

The paper-size generators the profile names take one training step with the profile's baseline
objective and one evaluation on tiny clips (1 x T x 3 x 16 x 16), and the kit NR-IQA models
(``iqa.models``) one step at ``iqa.patch`` and one evaluation at ``iqa.eval_crop``.

Skipped, and why (measured on one CPU core):
- iSeeBetter at paper size: one step on a 7 x 16 x 16 clip takes 87 s (RBPN's 256-channel 8x8
  back-projections); its build and parameter count are checked in tests/test_models.py.
- the pyiqa networks (MANIQA's ViT-B/8, HyperIQA's and TOPIQ's ResNet-50, NIMA's
  Inception-ResNet-v2, CLIP-IQA's RN50, DBCNN, PaQ-2-PiQ, PieAPP, LPIPS-VGG, DISTS) with stub
  weight files: the stubs are 50-500 MB each (CLIP's a TorchScript archive), writing and loading
  them and one ViT-B/8 step at 224 px exceed this test's budget. Presence checks and loading from
  created weight files are tested in tests/test_quality_registry.py and
  tests/test_quality_pyiqa_measures.py, the cards against pyiqa's own table there too; here their cards
  (differentiable, ``min_size``) are checked.
"""
from __future__ import annotations

import pytest
import torch

from nriqa import quality
from nriqa.analysis.asymmetry import fit_min_size
from nriqa.config import load_profile
from nriqa.losses import Objective
from nriqa.models import build
from nriqa.models.discriminators import build_discriminator
from nriqa.models.iqa_nets import build_arch
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


_SLOW = {"iseebetter"}   # see the module docstring


@pytest.mark.parametrize("name", [m for m in PAPER["models"] if m not in _SLOW])
def test_every_generator_builds_at_paper_size_and_takes_one_step(name):
    torch.manual_seed(0)
    model = build(name, PAPER["model_size"])
    objective = Objective(PAPER["train"]["objective"])
    opt = torch.optim.Adam(model.parameters(), lr=float(PAPER["train"]["optimizer"]["lr"]))
    lr, hr = torch.rand(1, 2, 3, 16, 16), torch.rand(1, 2, 3, 64, 64)
    total, terms = objective(model(lr), hr)
    opt.zero_grad()
    total.backward()
    opt.step()
    assert set(terms) == set(PAPER["train"]["objective"]) and torch.isfinite(total)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 2, 3, 12, 8))
    assert out.shape == (1, 2, 3, 48, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch", PAPER["iqa"]["models"])
def test_every_kit_iqa_model_takes_one_step_at_the_paper_patch(arch):
    torch.manual_seed(0)
    net = build_arch(arch)
    opt = torch.optim.Adam(net.parameters(), lr=float(PAPER["iqa"]["lr"]))
    p = PAPER["iqa"]["patch"]
    loss = (net(torch.rand(2, 3, p, p)) - torch.tensor([0.2, 0.8])).abs().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    net.eval()
    with torch.no_grad():
        s = net(torch.rand(1, 3, PAPER["iqa"]["eval_crop"], PAPER["iqa"]["eval_crop"]))
    assert torch.isfinite(loss) and s.shape == (1,) and torch.isfinite(s).all()


def test_dry_run_lists_the_missing_datasets_and_weights(tmp_path, capsys, monkeypatch):
    """The paper profile without its datasets and weights: the plan is printed, and so is each missing input."""
    from nriqa.sweep import main as sweep_main

    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "no-weights"))
    assert sweep_main(["--profile", "paper", "--dry-run", "--run-root", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "MISSING   dataset reds: reds: the dataset folder /data/REDS does not exist" in out.out
    assert "MISSING   weights of musiq" in out.out and "input(s) missing" in out.err
