"""Gradient-based loss weights: exact static weights on a constructed problem, online balancing, PCGrad."""
from __future__ import annotations

import math

import pytest
import torch
from doubles import ToyObjective, ToySampler, ToyVSR, toy_cfg
from torch import nn

from nriqa.train import read_log, train
from nriqa.train.balance import GradNormBalancer, measure_gradients, project_conflicts, static_weights


class ScaleModel(nn.Module):
    """pred = lr * theta (per channel): gradients of linear terms are known in closed form."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, lr):
        return lr * self.theta.view(1, 1, 3, 1, 1)


class LinearTerms:
    """a = 3 * sum(pred): d/dtheta = 3 * 4 per channel; b = 0.5 * sum(pred[:, :, 0]): d/dtheta = (2, 0, 0)."""

    weights = {"a": 1.0, "b": 1.0}

    def terms(self, pred, target):
        return {"a": 3.0 * pred.sum(), "b": 0.5 * pred[:, :, 0].sum()}


def test_measure_gradients_and_static_weights_exact():
    batches = [{"lr": torch.ones(1, 1, 3, 2, 2), "hr": torch.zeros(1, 1, 3, 2, 2)}] * 2
    m = measure_gradients(ScaleModel(), LinearTerms(), batches)
    assert m["batches"] == 2
    assert m["param_norm"]["a"] == pytest.approx(12 * math.sqrt(3))
    assert m["param_norm"]["b"] == pytest.approx(2.0)
    assert m["output_norm"]["a"] == pytest.approx(3 * math.sqrt(12))     # 3 on each of 12 output values
    assert m["output_norm"]["b"] == pytest.approx(1.0)                    # 0.5 on 4 values
    assert m["cosine"]["a"]["b"] == pytest.approx(1 / math.sqrt(3), rel=1e-6)
    assert m["cosine"]["a"]["a"] == pytest.approx(1.0)

    w = static_weights(m, reference="a", shares=0.1)
    assert w["a"] == 1.0
    assert w["b"] == pytest.approx(0.1 * 12 * math.sqrt(3) / 2)
    assert w["b"] * m["param_norm"]["b"] == pytest.approx(0.1 * w["a"] * m["param_norm"]["a"])
    # the reference keeps its (non-unit) weight; per-term shares; other weights carried over
    w2 = static_weights({"a": 4.0, "b": 1.0, "c": 2.0}, "a", {"b": 0.5}, weights={"a": 2.0, "b": 9.0, "c": 7.0})
    assert w2 == {"a": 2.0, "b": 0.5 * 2.0 * 4.0 / 1.0, "c": 7.0}
    with pytest.raises(ValueError, match="reference term 'z'"):
        static_weights({"a": 1.0}, "z", 0.1)
    with pytest.raises(ValueError, match="gradient norm of 'b'"):
        static_weights({"a": 1.0, "b": 0.0}, "a", 0.1)


def test_gradnorm_balancer_state_and_clip():
    bal = GradNormBalancer({"ref": 1.0, "q": 1.0}, reference="ref", shares={"q": 0.5}, every=1, ema=0.0,
                           clip=(0.0, 3.0))
    bal.update({"ref": torch.tensor(2.0), "q": torch.tensor(4.0)})
    assert bal.weights_as_floats() == {"ref": 1.0, "q": 0.25}           # 0.5 * 1 * 2 / 4
    bal.update({"ref": torch.tensor(2.0), "q": torch.tensor(float("nan"))})
    assert bal.weights_as_floats()["q"] == 0.25                          # non-finite measurement ignored
    bal.update({"ref": torch.tensor(100.0), "q": torch.tensor(1.0)})
    assert bal.weights_as_floats()["q"] == 3.0                           # clipped at hi
    with pytest.raises(ValueError, match="reference"):
        GradNormBalancer({"q": 1.0}, reference="ref")


def test_online_balancing_reaches_target_share(tmp_path):
    share = 0.25
    spec = {"charbonnier": 1.0, "bright": 1.0, "weights": "gradnorm"}
    cfg = toy_cfg(steps=30, objective=spec, gradnorm_every=1, log_every=5, ckpt_every=0,
                  balance={"reference": "charbonnier", "shares": {"bright": share}, "every": 1, "ema": 0.5})
    torch.manual_seed(0)
    obj = ToyObjective(spec)
    run = train(cfg, tmp_path / "r", model=ToyVSR(), sampler=ToySampler(), objective=obj, progress=False)
    last = read_log(run).iloc[-1]
    achieved = (last["weight/bright"] * last["gradnorm/bright"]
                / (last["weight/charbonnier"] * last["gradnorm/charbonnier"]))
    assert achieved == pytest.approx(share, rel=0.15)
    assert abs(last["weight/bright"] - 1.0) > 0.5                          # it really moved
    assert last["weight/charbonnier"] == 1.0                               # the reference keeps its weight
    assert obj.weights["bright"] == pytest.approx(last["weight/bright"])   # written back to the objective


def test_project_conflicts_removes_opposing_component():
    g, r = [torch.tensor([1.0, 0.0])], [torch.tensor([-1.0, 1.0])]
    (out,), conflict = project_conflicts(g, r)
    torch.testing.assert_close(out, torch.tensor([0.5, 0.5]))
    assert float(conflict) == 1.0 and float(out @ r[0]) == pytest.approx(0.0)
    (same,), conflict = project_conflicts([torch.tensor([1.0, 1.0])], r)
    torch.testing.assert_close(same, torch.tensor([1.0, 1.0]))
    assert float(conflict) == 0.0


def test_trainer_with_projection_logs_conflict_rate(tmp_path):
    spec = {"charbonnier": 1.0, "bright": 0.5}
    cfg = toy_cfg(steps=4, objective=spec, project_conflicts=True, log_every=2)
    torch.manual_seed(0)
    run = train(cfg, tmp_path / "r", model=ToyVSR(), sampler=ToySampler(), objective=ToyObjective(spec), progress=False)
    df = read_log(run)
    assert df["conflict_rate"].between(0, 1).all() and df["total"].notna().all()
