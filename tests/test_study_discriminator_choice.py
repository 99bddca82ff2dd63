"""nriqa.study.discriminator_choice (notebook 05): the discriminator grid's and the transfer's sentences."""
from __future__ import annotations

import pandas as pd
import pytest

from nriqa.study import discriminator_choice as adversarial


def test_describe_adversarial_and_transfer():
    grid = pd.DataFrame({"discriminator": ["vit", "vit", "patchgan"], "gain_vs_fidelity": [-0.02, 0.0, 0.01]})
    grid.attrs.update(fidelity_gain=0.5, noise=0.001, fr_noise=0.002)
    lines = adversarial.describe_adversarial(grid).splitlines()
    assert lines[3:] == ["  patchgan: +1.00 %", "  vit: -1.00 %",
                         "convolutional kinds mean +1.00 % vs Transformer (vit) -1.00 %"]
    transfer = pd.DataFrame({"discriminator": ["unet", "unet"], "init": ["random", "discriminator"],
                             "srcc": [0.1, 0.4]})
    assert adversarial.describe_transfer(transfer).splitlines() == [
        "unet: SRCC random 0.100 -> from discriminator 0.400 (+0.300)",
        "mean change from discriminator initialisation: +0.300 SRCC (1 seed x 1 kind)"]
    seeded = pd.DataFrame({"discriminator": ["vit"] * 4 + ["unet"] * 4, "seed": [0, 0, 1, 1] * 2,
                           "init": ["random", "discriminator"] * 4, "label": "level order",
                           "srcc": [0.1, 0.4, 0.3, 0.2, 0.5, 0.5, 0.5, 0.6]})
    assert adversarial.describe_transfer(seeded).splitlines() == [
        "vit: level-order SRCC random 0.200 -> from discriminator 0.300 (+0.100) per seed +0.300, -0.100",
        "unet: level-order SRCC random 0.500 -> from discriminator 0.550 (+0.050) per seed +0.000, +0.100",
        "mean change from discriminator initialisation: +0.075 level-order SRCC (2 seeds x 2 kinds)"]
    assert adversarial.transfer_pairs(seeded)[["discriminator", "seed"]].values.tolist() == [
        ["vit", 0], ["vit", 1], ["unet", 0], ["unet", 1]]


def test_per_seed_gains_average_to_the_grid_mean():
    """Each GAN arm's mean panel gain per seed (the circles of notebook 05's figure); their mean
    over seeds is the arm's mean_gain."""
    from nriqa.study.judging import mean_gain

    rows = [{"run": "baseline", "seed": 0, "clip": c, "measure": m, "score": 10.0, "higher_better": True}
            for c in ("a", "b") for m in ("psnr", "ssim")]
    for s, eff in ((0, 0.01), (1, 0.03)):
        rows += [{"run": "vit w=0.05", "seed": s, "clip": c, "measure": m, "score": 10.0 * (1 + eff),
                  "higher_better": True} for c in ("a", "b") for m in ("psnr", "ssim")]
    scores = pd.DataFrame(rows).assign(model="m", dataset="d", frame=0)
    per = adversarial.per_seed_gains(scores, {"vit w=0.05": {"discriminator": "vit", "gan_weight": 0.05}})
    assert per[["discriminator", "gan_weight", "seed"]].values.tolist() == [["vit", 0.05, 0], ["vit", 0.05, 1]]
    assert per["mean_gain"].tolist() == pytest.approx([0.01, 0.03])
    assert per["mean_gain"].mean() == pytest.approx(mean_gain(scores)["vit w=0.05"])


def test_describe_transfer_steps_names_steps_run_and_kept():
    rows = [{"discriminator": "vit", "seed": s, "init": i, "step": st, "score": 0.1, "best": st == kept,
             "steps": run, "stopped": why}
            for s, i, run, kept, why in [(0, "random", 60, 20, "plateau"), (0, "discriminator", 80, 80, "max_steps")]
            for st in range(0, run + 1, 20)]
    lines = adversarial.describe_transfer_steps(pd.DataFrame(rows)).splitlines()
    assert lines == ["vit / random: steps run@kept s0: 60@20", "vit / discriminator: steps run@kept s0: 80@80",
                     "1 of 2 trainings stopped on the plateau rule, 1 at max_steps; steps run: median 70, max 80"]
    assert adversarial.describe_transfer_steps(pd.DataFrame(columns=list(rows[0]))).startswith("fixed-step")
