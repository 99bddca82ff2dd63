"""train_iqa on a tiny distortion set: the ranking loss falls, metrics come out, the checkpoint
registers as a quality measure (no network) that prefers a clean frame to a blurred one."""
import json

import numpy as np
import pytest
import torch
from skimage import data as skdata

import nriqa.iqa.iqa_training as tr
from nriqa import quality
from nriqa.data.distortions import distort
from nriqa.data.iqa_sets import build_distortion_set
from nriqa.iqa import train_iqa
from nriqa.iqa.cli import main as train_iqa_cli
from nriqa.iqa.iqa_training import PairSampler, load_init, targets_01
from nriqa.models import count_parameters
from nriqa.models.discriminators import build_discriminator
from nriqa.models.iqa_nets import build_arch

KINDS = ["gaussian_blur", "white_noise", "jpeg"]
CFG = {"iqa": {"steps": 50, "batch_size": 8, "patch": 48, "lr": 1e-3, "ckpt_every": 25}, "seed": 0}


def _crops(spec, size=64):
    out = [getattr(skdata, n)()[t:t + size, l:l + size] for n, t, l in spec]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(o)).permute(2, 0, 1).float() / 255 for o in out])


@pytest.fixture(scope="module")
def tiny_sets():
    train = build_distortion_set(_crops([("astronaut", 40, 180), ("coffee", 120, 220), ("chelsea", 60, 100),
                                         ("rocket", 250, 250)]), name="tr", crop=64, kinds=KINDS)
    test = build_distortion_set(_crops([("astronaut", 250, 300), ("coffee", 250, 400)]), name="te", crop=64,
                                kinds=KINDS)
    return train, test


@pytest.fixture(scope="module")
def trained(tiny_sets, tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights")
    mp = pytest.MonkeyPatch()
    mp.setenv("NRIQA_WEIGHTS", str(weights))
    run_dir = tmp_path_factory.mktemp("run")
    metrics = train_iqa("cnniqa", CFG, run_dir, progress=False, data=tiny_sets)
    yield metrics, run_dir, weights
    mp.undo()


def test_pairs_are_within_source_and_kind(tiny_sets):
    train, _ = tiny_sets
    s = PairSampler(train, targets_01(train), seed=3)
    b, w = s.pairs(step=5, batch=32)
    assert all(train.sources[i] == train.sources[j] for i, j in zip(b, w))
    assert all(train.levels[i] < train.levels[j] for i, j in zip(b, w))
    assert all(train.kinds[j] != "pristine" for j in w)
    b2, w2 = s.pairs(step=5, batch=32)
    assert np.array_equal(b, b2) and np.array_equal(w, w2)


def test_training_reduces_rank_loss_and_reports_metrics(trained):
    m, run_dir, _ = trained
    assert m["last_rank_loss"] < m["first_rank_loss"]
    for key in ("srcc", "plcc", "krcc", "rank_acc"):
        assert np.isfinite(m["held_out"]["overall"][key])
    assert set(m["held_out"]["per_kind"]) == set(KINDS)
    assert m["held_out"]["overall"]["rank_acc"] > 0.5
    assert m["params"] == count_parameters(build_arch("cnniqa"))
    assert (run_dir / "model.pt").exists() and json.loads((run_dir / "metrics.json").read_text())["name"] \
        == "cnniqa@embedded"


def test_cached_run_returns_without_training(trained, monkeypatch):
    m, run_dir, _ = trained
    monkeypatch.setattr(tr, "build_iqa_net", lambda *a, **k: pytest.fail("must not rebuild a finished run"))
    again = train_iqa("cnniqa", CFG, run_dir, progress=False, install=False)
    assert again["held_out"] == m["held_out"]


def test_registered_measure_prefers_clean_over_blurred(trained):
    _, _, weights = trained
    assert (weights / "kit" / "cnniqa@embedded.pt").exists()
    assert "cnniqa@embedded" in quality.register_kit_models()
    card = quality.card("cnniqa@embedded")
    assert card.mode == "NR" and card.higher_better and card.differentiable and card.present
    assert "kit-trained" in card.description and "opinion" in card.description
    m = quality.create("cnniqa@embedded")
    clean = _crops([("chelsea", 150, 200), ("coffee", 300, 100)], size=96)   # content never trained on
    blurred = torch.stack([distort(c, "gaussian_blur", 5) for c in clean])
    s_clean, s_blur = m(clean), m(blurred)
    assert bool((s_clean > s_blur).all()), (s_clean, s_blur)
    assert float(s_clean.min()) > 0 and float(s_clean.max()) < 1
    x = blurred.clone().requires_grad_(True)
    loss = quality.to_loss(m(x), card).mean()
    loss.backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    assert 0 < float(loss) < 1


def test_init_from_copies_matching_tensors():
    src = build_arch("cnniqa")
    dst = build_arch("cnniqa")
    n = load_init(dst, src)
    assert n == len(src.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    with pytest.raises(ValueError, match="shares no tensor"):
        load_init(build_arch("vitiqa"), src)


@pytest.mark.parametrize("arch", ["cnniqa", "wadiqam", "dbcnn", "vitiqa"])
def test_archs_score_any_size_without_download(arch):
    net = build_arch(arch).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 40, 56))
    assert out.shape == (2,) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="at least 32"):
        net(torch.rand(1, 3, 16, 64))


def test_unknown_arch_fails_before_work(tmp_path):
    with pytest.raises(ValueError, match="unknown IQA arch"):
        train_iqa("resnet", {}, tmp_path)
    assert not any(tmp_path.iterdir())


def test_discriminator_backbone_initialises_iqa_model(tiny_sets, tmp_path, monkeypatch):
    monkeypatch.setenv("NRIQA_WEIGHTS", str(tmp_path / "w"))
    disc = build_discriminator("vanilla")
    path = tmp_path / "disc.pt"
    torch.save({"params": disc.state_dict()}, path)
    cfg = {"iqa": {"steps": 2, "batch_size": 2, "patch": 48, "lr": 0.0}}
    m = train_iqa("disc-vanilla", cfg, tmp_path / "run", init_from=path, progress=False, install=False,
                  data=tiny_sets)
    assert m["init_loaded_tensors"] == len(disc.state_dict())
    assert m["name"] == "disc-vanilla@embedded"
    assert not (tmp_path / "w" / "kit").exists()


def test_interrupted_run_resumes_from_last_checkpoint(tiny_sets, tmp_path, monkeypatch):
    cfg = {"iqa": {"steps": 4, "batch_size": 2, "patch": 32, "ckpt_every": 2}}
    real = tr.make_batch
    seen = []

    def failing(ds, sampler, step, batch, patch):
        if step == 3:
            raise KeyboardInterrupt
        seen.append(step)
        return real(ds, sampler, step, batch, patch)

    monkeypatch.setattr(tr, "make_batch", failing)
    with pytest.raises(KeyboardInterrupt):
        train_iqa("cnniqa", cfg, tmp_path, progress=False, install=False, data=tiny_sets)
    assert (tmp_path / "last.pt").exists() and not (tmp_path / "model.pt").exists()
    monkeypatch.setattr(tr, "make_batch", lambda *a: (seen.append(a[2]), real(*a))[1])
    m = train_iqa("cnniqa", cfg, tmp_path, progress=False, install=False, data=tiny_sets)
    assert seen == [0, 1, 2, 2, 3]          # steps 0-1 checkpointed, step 2 redone after the interrupt
    assert m["steps"] == 4 and not (tmp_path / "last.pt").exists()
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 4


def test_cli_reports_cached_run_and_rejects_unknown_arch(trained, capsys):
    m, run_dir, _ = trained
    assert train_iqa_cli(["cnniqa", "--run-dir", str(run_dir), "--no-progress"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["name"] == "cnniqa@embedded" and row["srcc"] == round(m["held_out"]["overall"]["srcc"], 4)
    assert train_iqa_cli(["resnet"]) == 2
    assert "unknown arch" in capsys.readouterr().err


# --------------------------------------------------------------------------- early stopping (patience rule)

def test_patience_rule_counts_evaluations_since_the_last_real_improvement():
    assert tr.patience_rule([], 2, 0.01) == (-1, False)
    assert tr.patience_rule([0.1, 0.5, 0.5, 0.5], 2, 0.01) == (1, True)       # plateau: two evaluations, no gain
    assert tr.patience_rule([0.1, 0.5, 0.505, 0.509], 2, 0.01) == (1, True)   # gains below min_delta do not count
    assert tr.patience_rule([0.1, 0.5, 0.4, 0.52], 2, 0.01) == (3, False)     # a dip, then a gain: the wait restarts
    assert tr.patience_rule([0.1, 0.2, 0.3, 0.4], 1, 0.01) == (3, False)      # improving: never stops
    assert tr.patience_rule([float("nan"), 0.3, float("nan")], 1, 0.0) == (1, True)   # NaN never improves
    assert tr.patience_rule([0.3, 0.3], 1, 0.0) == (0, True)                  # a tie is no improvement


def test_validation_split_takes_whole_sources_out_of_training(tiny_sets):
    train, _ = tiny_sets
    rest, val = tr.validation_split(train, 1)
    assert len(set(val.sources)) == 1 and not set(val.sources) & set(rest.sources)
    assert len(rest) + len(val) == len(train)
    again = tr.validation_split(train, 1)[1]
    assert val.sources == again.sources                                   # fixed: the same every call
    with pytest.raises(ValueError, match="none to train on"):
        tr.validation_split(train, len(set(train.sources)))


def _scripted(values):
    """A validation score that ignores the model and returns ``values`` in order (step 0 first)."""
    it = iter(values)
    return lambda pred, ds: next(it)


CFG_ES = {"iqa": {"steps": 12, "batch_size": 2, "patch": 32, "ckpt_every": 100}, "seed": 0}


def test_early_stop_ends_on_a_plateau_and_keeps_the_best_weights(tiny_sets, tmp_path):
    train, test = tiny_sets
    stop = tr.EarlyStop(eval_every=2, patience=2, min_delta=0.01, val_sources=1,
                        score=_scripted([0.0, 0.2, 0.6, 0.6, 0.605, 0.9, 0.9]))
    m = train_iqa("cnniqa", CFG_ES, tmp_path / "es", progress=False, install=False, data=tiny_sets, early_stop=stop)
    es = m["early_stop"]
    # evaluations at steps 0 (not selectable), 2, 4, 6, 8: best at 4, no gain >= 0.01 at 6 and 8 -> stop
    assert [p["step"] for p in es["curve"]] == [0, 2, 4, 6, 8] and [p["score"] for p in es["curve"]][2] == 0.6
    assert (es["best_step"], es["steps_run"], es["stopped"], m["steps"]) == (4, 8, "plateau", 8)
    assert len((tmp_path / "es" / "history.jsonl").read_text().splitlines()) == 8
    # the kept weights are those after step 4: the same held-out scores as a plain 4-step training on the same split
    rest = tr.validation_split(train, 1)[0]
    plain = train_iqa("cnniqa", {**CFG_ES, "iqa": {**CFG_ES["iqa"], "steps": 4}}, tmp_path / "plain",
                      progress=False, install=False, data=(rest, test))
    assert m["held_out"]["overall"]["srcc"] == pytest.approx(plain["held_out"]["overall"]["srcc"], abs=1e-9)
    assert m["n_train"] == plain["n_train"] == len(rest) and "early_stop" not in plain


def test_early_stop_runs_to_max_steps_while_improving(tiny_sets, tmp_path):
    stop = tr.EarlyStop(eval_every=3, patience=1, min_delta=0.01, val_sources=1,
                        score=_scripted([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]))
    cfg = {**CFG_ES, "iqa": {**CFG_ES["iqa"], "steps": 10}}
    m = train_iqa("cnniqa", cfg, tmp_path, progress=False, install=False, data=tiny_sets, early_stop=stop)
    es = m["early_stop"]
    assert [p["step"] for p in es["curve"]] == [0, 3, 6, 9, 10]           # every 3 steps and the last one
    assert (es["best_step"], es["steps_run"], es["stopped"], es["max_steps"]) == (10, 10, "max_steps", 10)


def test_early_stopped_training_is_deterministic_and_resumes(tiny_sets, tmp_path, monkeypatch):
    """A discriminator-backbone model (the transfer test's; cnniqa's resume draws other random numbers)
    interrupted and resumed gives the uninterrupted run's curve, choice and held-out numbers."""
    stop = tr.EarlyStop(eval_every=1, patience=3, min_delta=0.0, val_sources=1)   # the real score: label SRCC
    cfg = {**CFG_ES, "iqa": {**CFG_ES["iqa"], "steps": 6, "ckpt_every": 2}}
    run = lambda d: train_iqa("disc-vanilla", cfg, d, progress=False, install=False, data=tiny_sets,  # noqa: E731
                              early_stop=stop)
    ref = run(tmp_path / "ref")
    assert run(tmp_path / "ref2")["early_stop"] == ref["early_stop"]      # same seed, same numbers
    real = tr.make_batch

    def failing(ds, sampler, step, batch, patch):
        if step == 3:
            raise KeyboardInterrupt
        return real(ds, sampler, step, batch, patch)

    monkeypatch.setattr(tr, "make_batch", failing)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut")
    assert (tmp_path / "cut" / "last.pt").exists()
    monkeypatch.setattr(tr, "make_batch", real)
    again = run(tmp_path / "cut")
    for k in ("curve", "best_step", "steps_run", "stopped"):
        assert again["early_stop"][k] == ref["early_stop"][k]
    assert again["held_out"] == ref["held_out"] and not (tmp_path / "cut" / "last.pt").exists()
    with pytest.raises(ValueError):
        tr.EarlyStop(eval_every=0, patience=1, min_delta=0.0, val_sources=1)
