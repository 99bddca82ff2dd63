"""Trainer mechanics on tiny doubles: schedule, EMA, checkpoints, exact resume, non-finite guard."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
import yaml
from doubles import Crash, ToyDiscriminator, ToyObjective, ToySampler, ToyVSR, toy_cfg

from nriqa.losses import TrainingObjective
from nriqa.train import NonFiniteError, load_generator, read_log, run_is_done, train, training_changes
from nriqa.train.checkpoint import load_checkpoint, step_checkpoints
from nriqa.train.ema import EMA
from nriqa.train.schedule import CosineRestarts, build_schedule


def _run(tmp, cfg, *, objective=None, dropout=0.1, seed=0, init_from=None):
    torch.manual_seed(seed)
    model = ToyVSR(dropout=dropout)
    return train(cfg, tmp, model=model, sampler=ToySampler(),
                 objective=objective or ToyObjective(cfg["train"]["objective"]), progress=False, init_from=init_from)


def _tensors(obj, prefix=""):
    """Every tensor in a nested checkpoint structure, keyed by its path."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}/{i}"))
    return out


def test_schedule_warmup_cosine_restarts():
    s = CosineRestarts(base_lr=1.0, periods=[4, 2], restart_weights=[1.0, 0.5], eta_min=0.1, warmup_steps=2)
    assert [s(0), s(1)] == [0.5, 1.0]                      # linear warm-up to the first peak
    assert s(2) == pytest.approx(1.0)                       # cycle 1 starts at base_lr
    assert s(4) == pytest.approx(0.1 + 0.9 * 0.5)           # half-way down the first cosine
    assert s(6) == pytest.approx(0.5)                       # restart at weight 0.5
    assert s(7) == pytest.approx(0.1 + 0.4 * 0.5)
    assert s(8) == s(100) == 0.1                            # after the last cycle: eta_min
    assert build_schedule({}, 2.0, 10)(0) == 2.0
    with pytest.raises(ValueError, match="restart_weights"):
        CosineRestarts(1.0, [3, 3], [1.0])


def test_ema_update_and_zero_weight_is_identity():
    torch.manual_seed(0)
    model = ToyVSR()
    ema = EMA(model, decay=0.75)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model, torch.tensor(False))
    assert all(torch.equal(before[k], v) for k, v in ema.state_dict().items())
    assert ema.updates.item() == 0 and ema.start_weight.item() == 1.0  # a skipped step counts for nothing
    ema.update(model)
    for (name, e), p in zip(ema.module.named_parameters(), model.parameters()):
        torch.testing.assert_close(e, before[name] + 0.25 * (p - before[name]))
    assert ema.updates.item() == 1 and ema.start_weight.item() == 0.75


def _ema_progress(warmup: bool, updates: int, decay: float = 0.99) -> float:
    """||ema - base|| / ||raw - base|| after ``updates`` steps of a toy run whose raw weights move
    from ``base`` at a constant pace (raw after n steps = base + n * delta)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 8)
    base = [p.detach().clone() for p in model.parameters()]
    delta = [torch.randn_like(p) for p in base]
    ema = EMA(model, decay=decay, warmup=warmup)
    for _ in range(updates):
        with torch.no_grad():
            for p, d in zip(model.parameters(), delta):
                p.add_(d)
        ema.update(model, torch.tensor(True))
    num = sum(((e - b) ** 2).sum() for e, b in zip(ema.module.parameters(), base)) ** 0.5
    den = sum(((p - b) ** 2).sum() for p, b in zip(model.parameters(), base)) ** 0.5
    return float(num / den)


def test_warmup_ema_represents_a_short_run_and_becomes_plain_in_a_long_one():
    assert _ema_progress(warmup=True, updates=30) > 0.8          # mostly the run's weights
    assert _ema_progress(warmup=False, updates=30) < 0.3         # plain 0.99 EMA: still mostly the start
    ema = EMA(torch.nn.Linear(2, 2), decay=0.99, warmup=True)
    assert ema.current_decay().item() == pytest.approx(0.1)      # the first update is almost a copy
    ema.updates.fill_(900)                                      # (1+n)/(10+n) > 0.99 from n = 881 on
    assert ema.current_decay().item() == 0.99
    card = EMA(torch.nn.Linear(2, 2), decay=0.99).card()
    assert card["warmup"] is False and card["updates"] == 0


def test_run_folder_log_checkpoints(tmp_path):
    cfg = toy_cfg(objective={"charbonnier": 1.0, "bright": 0.1}, ckpt_every=2, keep_last=2, tensorboard=True)
    run = _run(tmp_path / "run", cfg)
    assert run_is_done(run)
    assert step_checkpoints(run) == [6, 8]                  # keep_last=2
    latest, best = load_checkpoint(run, "latest"), load_checkpoint(run, "best")
    assert latest["step"] == 8 and 2 <= best["step"] <= 8
    assert {"params", "params_ema", "optimizer", "scheduler", "rng"} <= set(latest)
    assert {"torch", "numpy", "python"} <= set(latest["rng"])
    df = read_log(run)
    assert df["step"].tolist() == [2, 4, 6, 8]
    for col in ["total", "loss/charbonnier", "loss/bright", "lr", "grad_norm", "frames_per_s", "peak_mem_mb"]:
        assert df[col].notna().all(), col
    # gradient norms per term only on rows whose interval contained a measured step (every 3 steps)
    assert df["gradnorm/charbonnier"].notna().sum() >= 2 and (df["gradnorm/bright"].dropna() > 0).all()
    torch.testing.assert_close(torch.tensor(df["total"].values),
                               torch.tensor((df["loss/charbonnier"] + 0.1 * df["loss/bright"]).values))
    assert df["lr"].iloc[-1] == pytest.approx(build_schedule(cfg["train"]["schedule"], 1e-3, 8)(7))
    assert list((run / "tensorboard").glob("events.*"))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["steps"] == 8 and len(saved["config_hash"]) == 12
    done = json.loads((run / "done.json").read_text())
    assert done["step"] == 8 and done["best_by"] == "train_loss_ema"
    # the card says which weights are evaluated: the warm-up EMA after 8 updates (decay 8/17 last)
    assert done["evaluated"]["weights"] == "params_ema" and done["evaluated"]["warmup"] is True
    assert done["evaluated"]["updates"] == 8 and done["evaluated"]["final_decay"] == pytest.approx(8 / 17)
    assert latest["ema"]["updates"].item() == 8
    # a done run returns at once, without building anything
    assert train(cfg, run, model=None, sampler=None, objective=None, progress=False) == run
    gen = load_generator(run, ema=True, model=ToyVSR(dropout=0.1))
    assert not gen.training
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), latest["params_ema"].values()))


@pytest.mark.parametrize("variant", ["plain", "gan+gradnorm+accumulate"])
def test_resume_is_bit_identical(tmp_path, variant):
    """Stopped at step 5 (checkpoint at 4) and resumed == uninterrupted, on every tensor."""
    extra, spec = {}, {"charbonnier": 1.0, "bright": 0.1}
    if variant != "plain":
        spec = {**spec, "weights": "gradnorm"}
        extra = {"accumulate": 2, "balance": {"reference": "charbonnier", "shares": {"bright": 0.2}, "every": 2}}
    cfg = toy_cfg(objective=spec, **extra)

    def objective(**kw):
        from nriqa.losses.adversarial import AdversarialTerm

        torch.manual_seed(123)
        adv = AdversarialTerm(ToyDiscriminator(), loss="hinge", weight=0.01) if variant != "plain" else None
        return ToyObjective(spec, adversarial=adv, **kw)

    calls_per_step = int(extra.get("accumulate", 1))
    _run(tmp_path / "a", cfg, objective=objective())
    with pytest.raises(Crash):
        _run(tmp_path / "b", cfg, objective=objective(crash_at=5 * calls_per_step + 1))
    assert load_checkpoint(tmp_path / "b", "latest")["step"] == 4 and not run_is_done(tmp_path / "b")
    _run(tmp_path / "b", cfg, objective=objective(), seed=999)   # fresh init is overwritten by the checkpoint
    a, b = load_checkpoint(tmp_path / "a", "latest"), load_checkpoint(tmp_path / "b", "latest")
    ta, tb = _tensors({k: v for k, v in a.items() if k != "rng"}), _tensors({k: v for k, v in b.items() if k != "rng"})
    assert ta.keys() == tb.keys() and len(ta) > 20
    if variant != "plain":
        assert any(k.startswith("/discriminator") for k in ta) and any(k.startswith("/balancer") for k in ta)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    la, lb = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert la["step"].tolist() == lb["step"].tolist() == [2, 4, 6, 8]
    for col in [c for c in la.columns if c.startswith(("loss/", "gradnorm/", "weight/")) or c == "total"]:
        assert la[col].equals(lb[col]), col


def test_nonfinite_steps_are_skipped(tmp_path):
    cfg = toy_cfg(steps=7, ckpt_every=1, keep_last=10, log_every=1, max_nonfinite=3)
    run = _run(tmp_path / "r", cfg, objective=ToyObjective(nan_steps={3}, nan_grad_steps={4}))
    ck = {s: load_checkpoint(run, f"step_{s:06d}") for s in (3, 5, 6)}
    for key in ("params", "params_ema"):
        for name, v in ck[3][key].items():
            if v.is_floating_point():
                assert torch.equal(v, ck[5][key][name]), (key, name)   # steps 4 and 5 changed nothing
        assert any(not torch.equal(v, ck[6][key][n]) for n, v in ck[5][key].items() if v.is_floating_point())
    steps = [s["step"] for s in ck[5]["optimizer"]["state"].values()]
    assert all(float(s) == 3.0 for s in steps)                       # Adam counted 3 real updates of 5
    df = read_log(run)
    assert df.set_index("step")["nonfinite"].to_dict() == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 0, 7: 0}
    assert df.set_index("step")["total"].isna().tolist() == [False, False, False, True, True, False, False]
    assert run_is_done(run)


def test_nonfinite_run_stops_with_last_good_checkpoint(tmp_path):
    cfg = toy_cfg(steps=20, ckpt_every=2, keep_last=5, log_every=1, max_nonfinite=3)
    with pytest.raises(NonFiniteError, match=r"3 consecutive steps.*last good checkpoint"):
        _run(tmp_path / "r", cfg, objective=ToyObjective(nan_steps=set(range(4, 20))))
    run = tmp_path / "r"
    assert not run_is_done(run)
    latest, good = load_checkpoint(run, "latest"), load_checkpoint(run, "step_000004")
    assert latest["step"] == 6
    for name, v in latest["params"].items():
        if v.is_floating_point():  # (the double's call-counter buffer keeps counting)
            assert torch.isfinite(v).all() and torch.equal(v, good["params"][name]), name
    assert read_log(run)["step"].max() == 7


def test_init_from_records_baseline(tmp_path):
    base = _run(tmp_path / "base", toy_cfg(steps=4))
    cfg = toy_cfg(steps=1, objective={"charbonnier": 1.0, "bright": 0.1},
                  optimizer={"name": "adam", "lr": 1e-12}, schedule={"name": "constant"})
    fine = _run(tmp_path / "fine", cfg, init_from=base, seed=5)
    rec = yaml.safe_load((fine / "config.yaml").read_text())["init_from"]
    base_hash = yaml.safe_load((base / "config.yaml").read_text())["config_hash"]
    assert rec == {"path": str(base.resolve()), "step": 4, "weights": "params_ema", "config_hash": base_hash,
                   "done": True}
    assert json.loads((fine / "done.json").read_text())["init_from"] == rec
    start = load_checkpoint(base, "latest")["params_ema"]
    after = load_checkpoint(fine, "latest")["params"]
    for k, v in start.items():
        if v.is_floating_point():
            torch.testing.assert_close(after[k], v, atol=1e-9, rtol=0)
    with pytest.raises(FileNotFoundError, match="init_from"):
        _run(tmp_path / "x", cfg, init_from=tmp_path / "missing")


def test_bad_config_fails_before_work(tmp_path):
    assert isinstance(ToyObjective(), TrainingObjective)
    bare = ToyObjective()
    del bare.adversarial, bare.balancing  # (instance attributes of the double)
    with pytest.raises(TypeError, match=r"TrainingObjective.*lacks balancing, adversarial"):
        train(toy_cfg(), tmp_path / "r", model=ToyVSR(), sampler=ToySampler(), objective=bare)
    with pytest.raises(ValueError, match="train.steps"):
        train(toy_cfg(steps=0), tmp_path / "r", model=ToyVSR(), sampler=ToySampler(), objective=ToyObjective())
    with pytest.raises(ValueError, match="optimizer.name"):
        train(toy_cfg(optimizer={"name": "sgd", "lr": 0.1}), tmp_path / "r", model=ToyVSR(), sampler=ToySampler(),
              objective=ToyObjective())
    assert not (tmp_path / "r").exists()


def test_gpu_code_path_knobs_on_cpu(tmp_path):
    """channels_last is numerically neutral; bf16 autocast runs the same step (as on CUDA) and stays close."""
    def final(name, **kw):
        run = _run(tmp_path / name, toy_cfg(steps=4, ckpt_every=0, log_every=1, **kw), dropout=0.0)
        return load_checkpoint(run, "latest")["params"], read_log(run)["total"]

    (ref, ref_loss), (cl, _), (bf, bf_loss) = final("ref"), final("cl", channels_last=True), final("bf16", amp=True)
    for k, v in ref.items():
        if v.is_floating_point():
            torch.testing.assert_close(cl[k].contiguous(), v, rtol=1e-5, atol=1e-6)
            assert torch.isfinite(bf[k]).all()
    torch.testing.assert_close(torch.tensor(bf_loss.values), torch.tensor(ref_loss.values), rtol=0.02, atol=0)
    assert not bf_loss.equals(ref_loss)                     # autocast really ran in bf16


def test_step_makes_no_host_sync(tmp_path, monkeypatch):
    """Inside the optimizer step no tensor is read back to the host (no .item/.tolist/.cpu/bool())."""
    import nriqa.train.trainer as trainer
    from nriqa.losses.adversarial import AdversarialTerm

    in_step, seen = [False], []
    real_step = trainer._Trainer._step

    def step(self, i):
        in_step[0] = True
        try:
            real_step(self, i)
        finally:
            in_step[0] = False

    monkeypatch.setattr(trainer._Trainer, "_step", step)
    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def guarded(self, *a, _name=name, _original=original, **kw):
            if in_step[0]:
                seen.append(_name)
            return _original(self, *a, **kw)
        monkeypatch.setattr(torch.Tensor, name, guarded)
    spec = {"charbonnier": 1.0, "bright": 0.1, "weights": "gradnorm"}
    cfg = toy_cfg(steps=4, objective=spec, accumulate=2, gradnorm_every=1, log_every=2, ckpt_every=2,
                  project_conflicts=True, balance={"reference": "charbonnier", "shares": 0.2, "every": 1})
    torch.manual_seed(0)
    adv = AdversarialTerm(ToyDiscriminator(), loss="hinge", weight=0.01)
    run = train(cfg, tmp_path / "r", model=ToyVSR(dropout=0.1), sampler=ToySampler(),
                objective=ToyObjective(spec, adversarial=adv), progress=False)
    assert run_is_done(run) and read_log(run)["total"].notna().all()
    assert seen == []


def test_one_config_diff_for_finished_and_resumed_runs(tmp_path):
    """training_changes (a finished run asked again) and the resume warning use one comparison."""
    saved = {"train": {"steps": 8, "optimizer": {"betas": [0.9, 0.99]}}, "seed": 0, "data": {}, "panel": ["psnr"]}
    assert training_changes(saved, {**saved, "train": {"steps": 8, "optimizer": {"betas": (0.9, 0.99)}}}) == []
    assert training_changes(saved, {**saved, "seed": 1, "panel": ["ssim"]}) == ["seed"]   # panel: not training
    assert training_changes({**saved, "model": "a"}, saved) == []           # model only compared where cfg sets it
    assert training_changes({**saved, "model": "a"}, {**saved, "model": "b"}) == ["model"]

    cfg = toy_cfg(steps=6)
    with pytest.raises(Crash):
        _run(tmp_path / "r", cfg, objective=ToyObjective(crash_at=5))
    longer = toy_cfg(steps=8)                       # more steps alone: resumed without a word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Crash):
            _run(tmp_path / "r", longer, objective=ToyObjective(crash_at=1))
    changed = toy_cfg(steps=8, grad_clip=0.5)
    with pytest.warns(UserWarning, match=r"changed config \(\['grad_clip'\]\)"):
        _run(tmp_path / "r", changed)
    assert run_is_done(tmp_path / "r")
