"""The trainer with the real generator (nriqa.models), sampler (nriqa.data) and objective (nriqa.losses).

Baseline (Charbonnier) on the smoke profile, then a fine-tune from it with an NR-IQA term through
the CLI.
"""
from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml

from nriqa import models
from nriqa.config import load_profile
from nriqa.train import load_generator, read_log, run_is_done, train
from nriqa.train.checkpoint import load_checkpoint
from nriqa.train.cli import main

STEPS = ["train.steps=2", "train.log_every=1", "train.gradnorm_every=1", "train.ckpt_every=2", "device=cpu"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    cfg = load_profile("smoke", STEPS + ["train.flow_freeze_steps=100"])
    torch.manual_seed(0)
    model = models.build("basicvsrpp", "tiny")
    init = copy.deepcopy(model.state_dict())
    run = train(cfg, tmp_path_factory.mktemp("real") / "baseline", model=model, progress=False)
    return run, init


def test_real_baseline_trains_and_freezes_flow(baseline):
    run, init = baseline
    assert run_is_done(run)
    df = read_log(run)
    assert df["step"].tolist() == [1, 2]
    assert (df["loss/charbonnier"] > 0).all() and df["gradnorm/charbonnier"].notna().all()
    assert (df["lr_flow"] == 0).all()
    params = load_checkpoint(run, "latest")["params"]
    gen = models.build("basicvsrpp", "tiny")
    flow_names = {n for n, p in gen.named_parameters() if any(p is q for q in models.flow_parameters(gen))}
    assert flow_names, "basicvsrpp tiny should have SpyNet parameters"
    for name in flow_names:                                   # frozen during flow_freeze_steps
        assert torch.equal(params[name], init[name]), name
    moved = [n for n in params if n not in flow_names and params[n].is_floating_point()
             and not torch.equal(params[n], init[n])]
    assert len(moved) > 10


def test_real_finetune_with_nr_term_via_cli(baseline, tmp_path, capsys):
    base_run, _ = baseline
    out = tmp_path / "fine"
    rc = main(["smoke", *sum([["--set", s] for s in STEPS], []), "--set", "train.steps=1",
               "--set", "data.lr_patch=24",  # niqe needs >= 96 px HR frames
               "--set", "train.objective={charbonnier: 1.0, niqe: 0.02}", "--model", "basicvsrpp",
               "--run-dir", str(out), "--init-from", str(base_run), "--no-progress"])
    assert rc == 0 and str(out) in capsys.readouterr().out
    rec = yaml.safe_load((out / "config.yaml").read_text())["init_from"]
    assert rec["step"] == 2 and rec["weights"] == "params_ema" and rec["path"] == str(base_run.resolve())
    assert json.loads((out / "done.json").read_text())["init_from"] == rec
    row = read_log(out).iloc[-1]
    assert row["weight/niqe"] == pytest.approx(0.02) and row["gradnorm/niqe"] > 0
    assert row["loss/niqe"] == row["loss/niqe"]  # not NaN
    gen = load_generator(out, ema=True)
    with torch.no_grad():
        y = gen(torch.rand(1, 2, 3, 8, 8))
    assert y.shape == (1, 2, 3, 32, 32)


def test_real_adversarial_step_updates_discriminator(tmp_path):
    cfg = load_profile("smoke", STEPS + ["train.steps=1", "train.d_lr=2.0e-4"])
    cfg["train"]["objective"] = {"charbonnier": 1.0, "gan": {"weight": 0.01, "discriminator": "patchgan",
                                                            "loss": "hinge", "size": "tiny"}}
    run = train(cfg, tmp_path / "gan", progress=False)
    row = read_log(run).iloc[-1]
    assert row["d_loss"] > 0 and row["gradnorm/gan"] > 0 and row["weight/gan"] == pytest.approx(0.01)
    ck = load_checkpoint(run, "latest")
    assert ck["d_optimizer"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    assert all(float(s["step"]) == 1.0 for s in ck["d_optimizer"]["state"].values())
