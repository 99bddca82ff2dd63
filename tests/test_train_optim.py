"""The skipped-step protocol the trainer relies on: a fused Adam/AdamW step with the optimizer's
private ``found_inf`` set to 1 changes nothing (parameters, moments, step count), and with 0 it is
an ordinary step. These tests fail if a torch release changes that, for every optimizer the
trainer builds: the generator's Adam and AdamW and the discriminator's (``d_optimizer``)."""
from __future__ import annotations

import copy

import pytest
import torch
from doubles import toy_cfg
from torch import nn

from nriqa.train.optim import FUSED_MIN_TORCH, build_optimizer, require_fused_adam, step_unless_nonfinite
from nriqa.train.train_config import TrainConfig

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

#: name -> the optimizer config the trainer would build, through the same TrainConfig path
OPTIMIZERS = {
    "adam": lambda: TrainConfig.from_cfg(toy_cfg(optimizer={"name": "adam", "lr": 1e-2})).optimizer,
    "adamw": lambda: TrainConfig.from_cfg(toy_cfg(optimizer={"name": "adamw", "lr": 1e-2, "weight_decay": 0.1}))
    .optimizer,
    "discriminator-adam": lambda: TrainConfig.from_cfg(toy_cfg(d_lr=1e-2)).d_optimizer_cfg(),
    "discriminator-adamw": lambda: TrainConfig.from_cfg(
        toy_cfg(d_optimizer={"name": "adamw", "lr": 1e-2, "weight_decay": 0.1})).d_optimizer_cfg(),
}


def _setup(name: str, device: str):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).to(device)
    params = list(model.parameters())
    opt = build_optimizer(OPTIMIZERS[name](), [{"params": params}])
    x = torch.randn(16, 4, device=device)

    def step(finite: bool) -> None:
        opt.zero_grad(set_to_none=True)
        (model(x) ** 2).mean().backward()
        step_unless_nonfinite(opt, torch.tensor(finite, device=device))

    return params, opt, step


def _snapshot(params, opt) -> tuple[list[torch.Tensor], dict]:
    return [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict()["state"])


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[i].keys() == b[i].keys() and all(torch.equal(a[i][k], b[i][k]) for k in a[i]) for i in a)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_found_inf_one_skips_the_step_and_zero_takes_it(name, device):
    params, opt, step = _setup(name, device)
    assert all(g["fused"] for g in opt.param_groups), "the protocol needs the fused kernels"
    if "adamw" in name:
        assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == pytest.approx(0.1)
    step(True)
    p0, s0 = _snapshot(params, opt)
    assert all(float(s["step"]) == 1.0 for s in s0.values())

    step(False)                                   # skipped: parameters, moments and step count as they were
    p1, s1 = _snapshot(params, opt)
    assert all(torch.equal(a, b) for a, b in zip(p0, p1))
    assert _same_state(s0, s1)

    step(True)                                    # taken: everything moves, the step count goes on from 1
    p2, s2 = _snapshot(params, opt)
    assert all(not torch.equal(a, b) for a, b in zip(p1, p2))
    for i, s in s2.items():
        assert float(s["step"]) == 2.0
        assert not torch.equal(s["exp_avg"], s1[i]["exp_avg"])
        assert not torch.equal(s["exp_avg_sq"], s1[i]["exp_avg_sq"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["adam", "discriminator-adamw"])
def test_a_skipped_first_step_leaves_a_fresh_state(name, device):
    """A run whose very first step is non-finite: parameters untouched, moments zero, step count 0."""
    params, opt, step = _setup(name, device)
    before = [p.detach().clone() for p in params]
    step(False)
    assert all(torch.equal(a, p.detach()) for a, p in zip(before, params))
    for s in opt.state_dict()["state"].values():
        assert float(s["step"]) == 0.0
        assert not s["exp_avg"].any() and not s["exp_avg_sq"].any()
    step(True)
    assert all(float(s["step"]) == 1.0 for s in opt.state_dict()["state"].values())


def test_old_torch_gets_a_clear_error():
    need = ".".join(map(str, FUSED_MIN_TORCH))
    with pytest.raises(RuntimeError, match=rf"torch >= {need}.*this is torch 2\.3\.1"):
        require_fused_adam("2.3.1+cpu")
    require_fused_adam("2.4.0a0+git1234")          # a pre-release of the first good version is fine
    require_fused_adam(torch.__version__)
