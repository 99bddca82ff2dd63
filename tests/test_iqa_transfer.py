"""Discriminator -> IQA transfer: the IQA backbone is the GAN run's own discriminator (kind, size,
overrides), and the transfer loads (>= 95 % of) its backbone tensors, or fails clearly."""
from __future__ import annotations

import pytest
import torch
import yaml

from nriqa.errors import CheckpointError
from nriqa.iqa.iqa_training import init_target, load_init
from nriqa.iqa.nets import build_iqa_net, stlpips_trunk_state
from nriqa.iqa.transfer import gan_discriminator
from nriqa.models.discriminators import KINDS, backbone_keys, build_discriminator
from nriqa.quality import card
from nriqa.train.checkpoint import save_checkpoint

TRANSFER_KINDS = ["vanilla", "patchgan", "unet", "vit"]


def _trained_like(disc: torch.nn.Module) -> torch.nn.Module:
    """Perturb every tensor (and BN statistics) so that a copied tensor is told from a fresh init."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in disc.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * 0.01 + 0.5)
            else:
                t.add_(7)
    return disc


@pytest.mark.parametrize("size", ["tiny", "paper"])
@pytest.mark.parametrize("kind", TRANSFER_KINDS)
def test_transfer_loads_the_whole_backbone(kind, size, tmp_path):
    disc = _trained_like(build_discriminator(kind, size))
    path = tmp_path / "latest.pt"   # what the trainer writes: generator params and the discriminator
    torch.save({"step": 1, "params": {"conv.weight": torch.zeros(1)}, "discriminator": disc.state_dict()}, path)
    iqa = build_iqa_net(f"disc-{kind}", size=size)
    target, required = init_target(iqa)
    n = load_init(iqa, path)
    assert n >= 0.95 * len(required) and len(required) == len(backbone_keys(disc)) > 0
    own, src = target.state_dict(), disc.state_dict()
    assert all(torch.equal(own[k], src[k]) for k in required)
    if size == "tiny":   # the initialised model still scores images
        with torch.no_grad():
            assert torch.isfinite(iqa.eval()(torch.rand(2, 3, 64, 64))).all()


@pytest.mark.parametrize("kind", TRANSFER_KINDS)
def test_a_backbone_of_another_size_fails_clearly(kind):
    paper = build_discriminator(kind, "paper")
    with pytest.raises(CheckpointError, match=r"backbone tensors .*at least 95%"):
        load_init(build_iqa_net(f"disc-{kind}"), paper.state_dict())   # a tiny IQA backbone


@pytest.mark.parametrize("kind", KINDS)
def test_backbone_keys_are_exactly_what_backbone_uses(kind):
    disc = build_discriminator(kind)
    disc.backbone(torch.rand(2, 3, 64, 64)).float().pow(2).mean().backward()
    named = dict(disc.named_parameters())
    used = {k for k, p in named.items() if p.grad is not None and p.grad.abs().sum() > 0}
    keys = set(backbone_keys(disc))
    # spectral norm keeps the weight as parametrizations.weight.original (+ its _u/_v buffers)
    assert used <= keys
    assert {k for k in keys if k in named} == used


def test_gan_run_folder_gives_kind_options_and_state(tmp_path):
    disc = _trained_like(build_discriminator("unet", "tiny", base=4, use_spectral_norm=False))
    cfg = {"train": {"objective": {"charbonnier": 1.0, "gan": {"weight": 0.01, "discriminator": "unet",
                                                               "loss": "hinge", "size": "tiny", "base": 4,
                                                               "use_spectral_norm": False}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    save_checkpoint(tmp_path, {"step": 3, "params": {}, "discriminator": disc.state_dict()})
    g = gan_discriminator(tmp_path)
    assert (g.arch, g.options) == ("disc-unet", {"size": "tiny", "base": 4, "use_spectral_norm": False})
    iqa = build_iqa_net(g.arch, **g.options)
    assert load_init(iqa, g.state) == len(disc.state_dict())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"train": {"objective": {"charbonnier": 1.0}}}))
    with pytest.raises(ValueError, match="no 'gan' term"):
        gan_discriminator(tmp_path)


@pytest.mark.skipif(not card("st-lpips-alex").present, reason="stlpips-pytorch wheel not installed")
def test_stlpips_trunk_initialises_an_iqa_head():
    state = stlpips_trunk_state("stlpips-alex")
    iqa = build_iqa_net("stlpips-alex")
    _, required = init_target(iqa)
    assert load_init(iqa, state) == len(state) and set(required) <= set(state)
    assert torch.equal(iqa.state_dict()["trunk.slice1.0.weight"], state["trunk.slice1.0.weight"])
    with torch.no_grad():
        assert torch.isfinite(iqa.eval()(torch.rand(2, 3, 48, 48))).all()
    with pytest.raises(CheckpointError, match="backbone tensors"):
        load_init(build_iqa_net("stlpips-alex"), {k: v for k, v in state.items() if "slice5" not in k
                                                   and "slice4" not in k})


def test_describe_trunk_transfer_states_numbers_and_skips():
    import pandas as pd

    from nriqa.study.discriminator_choice import describe_trunk_transfer
    t = pd.DataFrame([{"backbone": "stlpips-alex", "init": "random", "srcc": 0.5, "rank_acc": 0.6, "note": ""},
                      {"backbone": "stlpips-alex", "init": "st-lpips trunk", "srcc": 0.75, "rank_acc": 0.9,
                       "note": ""},
                      {"backbone": "stlpips-alex", "init": "imagenet", "srcc": float("nan"), "note": "skipped: x"}])
    assert describe_trunk_transfer(t).splitlines() == [
        "stlpips-alex: SRCC random 0.500 -> from the ST-LPIPS trunk 0.750 (+0.250); "
        "level pairs ordered right 0.600 -> 0.900",
        "stlpips-alex / imagenet: skipped: x"]


def test_trunk_arch_is_not_installed_as_a_kit_measure(tmp_path):
    from nriqa.iqa import train_iqa
    with pytest.raises(ValueError, match="install=False"):
        train_iqa("stlpips-alex", {}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_transfer_folders_are_keyed_by_what_changes_the_iqa_model(tmp_path):
    from pathlib import Path

    from nriqa.study import discriminator_choice as adversarial
    from nriqa.study import runs
    cfg = runs.profile("smoke", device="cpu", run_root=str(tmp_path))
    gan = Path("gan-basicvsrpp-patchgan-w0.01-s1-0123abcd")
    folder = lambda c, run=gan, seed=1: adversarial.transfer_folder(  # noqa: E731
        c, adversarial._transfer_cfg(c, seed), "disc-patchgan", {"size": "tiny"}, run)
    assert folder(cfg) == folder(cfg) and folder(cfg).name.startswith("disc-patchgan-sizetiny-discriminator-s1-")
    assert folder(cfg, None).name.startswith("disc-patchgan-sizetiny-random-s1-")
    longer = runs.profile("smoke", ["adversarial.transfer.max_steps=7"], device="cpu", run_root=str(tmp_path))
    others = {folder(longer), folder(cfg, seed=0), folder(cfg, Path("gan-basicvsrpp-patchgan-w0.01-s1-99999999"))}
    assert folder(cfg) not in others and len(others) == 3
    patience = lambda c: adversarial.transfer_folder(  # noqa: E731
        c, adversarial._transfer_cfg(c, 1), "disc-patchgan", {"size": "tiny"}, gan, adversarial.transfer_stop(c))
    later = runs.profile("smoke", ["adversarial.transfer.patience=3"], device="cpu", run_root=str(tmp_path))
    assert patience(cfg) != folder(cfg) and patience(later) != patience(cfg)   # the patience rule keys the folder
    ckpt = runs.profile("smoke", ["iqa.ckpt_every=3"], device="cpu", run_root=str(tmp_path))
    assert folder(ckpt) == folder(cfg)                    # checkpoint cadence does not change the model


def test_smoke_transfer_has_one_pair_per_kind_and_seed_and_is_cached(tmp_path, monkeypatch):
    """The transfer table of the smoke profile (1 kind x 2 seeds): an IQA model from each seed's
    GAN discriminator and one from random init with the same seed, trained in two worker processes;
    the same as serial training; a second call trains nothing."""
    import pandas as pd

    import nriqa.iqa.iqa_training as iqa_train
    from nriqa.iqa import train_iqa
    from nriqa.study import discriminator_choice as adversarial
    from nriqa.study import runs
    cfg = runs.profile("smoke", ["iqa.max_sources=3"], device="cpu", run_root=str(tmp_path))  # 168 images a split
    cfg["workers"] = 2
    model = cfg["finetune"]["model"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # each worker trains with one thread; the serial reference does too (same sums)
    try:
        table = adversarial.discriminator_transfer(cfg, model, progress=False)
        jobs = adversarial.transfer_jobs(cfg, model, progress=False)
        keys, job = jobs[1]
        serial = train_iqa(job.arch, job.cfg, tmp_path / "serial", install=False, arch_options=job.options,
                           init_from=gan_discriminator(job.init_run).state, progress=False,
                           early_stop=job.early_stop)
        curves = adversarial.transfer_curves(cfg, model, progress=False)
    finally:
        torch.set_num_threads(before)
    seeds, kinds = runs.seeds(cfg), cfg["adversarial"]["discriminators"]
    pairs = adversarial.transfer_pairs(table)
    assert len(pairs) == len(kinds) * len(seeds) == 2 and sorted(pairs["seed"]) == seeds
    assert len(table) == 2 * len(pairs) and set(table["label"]) == {"level order"}
    assert table["srcc"].between(-1, 1).all() and pairs["change"].notna().all()
    disc = table[table["init"] == "discriminator"]
    assert (disc["loaded_tensors"] == disc["backbone_tensors"]).all() and disc["backbone_tensors"].gt(0).all()
    assert table.loc[table["init"] == "random", "loaded_tensors"].eq(0).all()
    rnd = table[table["init"] == "random"].set_index("seed")["srcc"]
    assert rnd[0] != rnd[1]                                               # the seed reaches the IQA training
    assert all(f"-s{k['seed']}-" in j.init_run.name for k, j in jobs if j.init_run)  # that seed's GAN run
    assert len({j.folder for _, j in jobs}) == 4
    assert keys == {"discriminator": kinds[0], "seed": seeds[0], "init": "discriminator"}
    assert serial["held_out"]["overall"]["srcc"] == pytest.approx(table.loc[1, "srcc_fr_pseudo"], abs=1e-6)
    es = serial["early_stop"]                          # smoke: eval every 2 steps, patience 1, at most 4 steps
    assert es["curve"][0]["step"] == 0 and table.loc[1, "steps"] == es["steps_run"] <= 4
    assert table.loc[1, "best_step"] == es["best_step"] and es["val_images"] == 56   # 1 of the 3 training sources
    assert {(r.seed, r.init) for r in curves.itertuples()} == {(k["seed"], k["init"]) for k, _ in jobs}
    assert set(curves["step"]) >= {0, 2}
    assert curves.groupby(["seed", "init"])["best"].sum().eq(1).all()      # one kept evaluation per training
    assert "stopped on the plateau rule" in adversarial.describe_transfer_steps(curves)

    def no_training(*a, **k):
        raise AssertionError("a cached transfer trained again")
    monkeypatch.setattr(iqa_train, "make_batch", no_training)
    monkeypatch.setattr(runs, "gan_discriminator", no_training)
    pd.testing.assert_frame_equal(adversarial.discriminator_transfer(cfg, model, progress=False), table)
    v = adversarial.transfer_verdicts(cfg, table)
    assert len(v) == 2 and v[0].n == v[1].n == "2 seeds x 1 kind"       # transfers little, then the direction
