"""Overrides and profiles are checked against the resolved profile: unknown keys at any level and
values of the wrong type are errors that name the key (with a did-you-mean) and the expected type."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from nriqa import config as nconfig
from nriqa.config import OPEN, SCHEMA, load_profile
from nriqa.errors import ConfigError, UserError
from nriqa.study import runs as ex

NOTEBOOK_SRC = Path(__file__).resolve().parent.parent / "notebooks" / "src"


@pytest.mark.parametrize("override, message", [
    ("trian.steps=3", "override trian.steps=3: unknown key 'trian' in profile 'demo'; did you mean 'train'?"),
    ("train.stpes=3", ("override train.stpes=3: unknown key 'stpes' under 'train' in profile 'demo'; "
                      "did you mean 'steps'?")),
    ("train.optimizer.lrr=1e-4", "unknown key 'lrr' under 'train.optimizer' in profile 'demo'; did you mean 'lr'?"),
    ("data.batchsize=2", "unknown key 'batchsize' under 'data' in profile 'demo'; did you mean 'batch_size'?"),
    ("zzz=1", "unknown key 'zzz' in profile 'demo'; known keys: adversarial, asymmetry, data,"),
    ("train.optimizer={name: adam, lrr: 1}", "unknown key 'lrr' under 'train.optimizer'"),
    ("train.steps.x=1", "train.steps is an int in profile 'demo', it has no key 'x'"),
    ("train.steps=abc", ("override train.steps=abc: train.steps must be an int (profile 'demo' has "
                        "train.steps: 200), got a str abc")),
    ("train.steps=3.5", "train.steps must be an int"),
    ("train.steps=true", "train.steps must be an int"),
    ("train.grad_clip=abc", "train.grad_clip must be a float (profile 'demo' has train.grad_clip: 1.0)"),
    ("train.compile=1", "train.compile must be a bool (true/false)"),
    ("panel=psnr", "panel must be a list [a, b]"),
    ("train.optimizer=adam", "train.optimizer must be a dict {key: value}"),
    ("experiment=001", "experiment must be a str, got an int 1; quote it to keep it text: experiment='001'"),
    ("finetune.grad_clp=0.5", "unknown key 'grad_clp' under 'finetune' in profile 'demo'; did you mean 'grad_clip'?"),
    ("train.amp=sometimes", None),   # amp takes "auto" or a bool: a str passes the type check
])
def test_unknown_keys_and_wrong_types_are_errors(override, message):
    if message is None:
        assert load_profile("demo", [override])["train"]["amp"] == "sometimes"
        return
    with pytest.raises(ConfigError) as err:
        load_profile("demo", [override])
    assert message in str(err.value)
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("override", [
    "train.steps=7", "train.optimizer.lr=1", "train.grad_clip=null", "data.root=/data/REDS",  # int for float; nulls
    "train.amp=true", "train.channels_last=false", "train.objective={charbonnier: 1.0, anything@kit: 0.5}",
    "finetune.extra_terms.my-measure=0.1", "adversarial.fidelity.dists=1.0", "iqa.per_arch.newarch={steps: 3}",
    "finetune.grad_clip=0.5", "finetune.ema_decay=0.9",        # finetune takes every train key
    "train.tensorboard=true", "train.d_lr=2.0e-4", "train.balance={reference: charbonnier, every: 2}",
    "train.schedule.restart_weights=[1.0]", "train.optimizer.eps=1e-6",
    "model=vrt", "experiment=x", "run_root=/tmp/runs", "seed=3", "device=cpu", "model_size=paper",
    "data.max_clips=2", "data.preload=true", "data.eval_sets=[{source: vid4, root: /x}]",
    "iqa.dataset=koniq10k", "iqa.margin=0.2", "adversarial.size=paper", "weights.target_share={niqe: 0.2}",
    "experiment='001'",
])
def test_valid_overrides_load(override):
    """Each valid override loads and lands where it says, with the value it spells."""
    from nriqa.config import parse_overrides

    cfg = load_profile("demo", [override])
    for dotted, value in parse_overrides([override]).items():
        node = cfg
        for key in dotted.split("."):
            node = node[key]
        assert node == value or (isinstance(value, str) and node == float(value)), (dotted, node, value)


@pytest.mark.parametrize("override", ["data.batch_size=0", "finetune.steps=0", "threads=0", "iqa.steps=-3",
                                      "train.optimizer.lr=-0.1", "seed=-1", "pixels.crop=0"])
def test_values_below_their_minimum_fail_before_any_work(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{re.escape(key)} must be >= "):
        load_profile("demo", [override])


def test_every_minimum_names_a_schema_key():
    from nriqa.config import MINIMUM, SCHEMA

    assert set(MINIMUM) <= set(SCHEMA), set(MINIMUM) - set(SCHEMA)


def test_open_subtrees_and_declared_keys_are_what_the_code_reads():
    """Every TrainConfig field, iqa default and optional data key is known; the open subtrees exist."""
    from nriqa.iqa.iqa_training import DEFAULTS
    from nriqa.train.train_config import TrainConfig

    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(nconfig.known_children("train"))
    assert set(DEFAULTS) | {"models", "per_arch"} == set(nconfig.known_children("iqa"))
    factory_doc = (Path(nconfig.__file__).parent / "data" / "factory.py").read_text()
    for key in ("max_clips", "max_frames", "preload", "eval_sets", "test_max_clips"):
        assert key in nconfig.known_children("data") and key in factory_doc
    for path in OPEN:
        assert path in SCHEMA or nconfig._alias(path) in SCHEMA


def test_bundled_and_derived_profiles_are_checked_against_their_base(tmp_path):
    for name in nconfig.available_profiles():
        load_profile(name)
    good = tmp_path / "mine.yaml"
    good.write_text("base: demo\nname: mine\ntrain: {steps: 3, tensorboard: true}\n"
                    "finetune: {extra_terms: {my-term: 0.1}}\n")
    assert load_profile(good)["train"]["steps"] == 3
    bad = tmp_path / "typo.yaml"
    bad.write_text("base: demo\ntrain: {stpes: 3}\n")
    with pytest.raises(ConfigError, match=rf"profile {re.escape(str(bad))}: unknown key 'stpes' under 'train' "
                                          r"in profile 'typo'; did you mean 'steps'\?"):
        load_profile(bad)
    bad.write_text("base: demo\ndata: {num_frames: five}\n")
    with pytest.raises(ConfigError, match="data.num_frames must be an int"):
        load_profile(bad)
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"profile {re.escape(str(bad))} is not valid YAML"):
        load_profile(bad)


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match=r"must look like key.path=value, e.g. train.steps=50"):
        load_profile("demo", ["train.steps"])
    with pytest.raises(ConfigError, match=r"must look like key.path=value"):
        load_profile("demo", ["train..steps=3"])
    with pytest.raises(ConfigError, match=r"the value is not valid YAML"):
        load_profile("demo", ["train.objective={charbonnier: 1.0"])
    with pytest.raises(ConfigError, match=r"unknown profile 'dmeo'; did you mean 'demo'\? bundled profiles: demo,"):
        load_profile("dmeo")
    with pytest.raises(FileNotFoundError, match="nope.yaml does not exist; give a bundled profile name"):
        load_profile("nope.yaml")


def test_mapping_overrides_are_checked_too():
    assert ex.profile("smoke", {"train.steps": 2})["train"]["steps"] == 2
    with pytest.raises(ConfigError, match="override trian.steps=2: unknown key 'trian'"):
        ex.profile("smoke", {"trian.steps": 2})


def test_what_the_notebooks_benchmarks_and_tests_pass_still_loads(tmp_path):
    calls = set()
    for src in NOTEBOOK_SRC.glob("*.py"):
        calls |= set(re.findall(r"\bprofile\(([^)]*)\)", src.read_text()))
    assert calls == {"PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT"}   # no overrides: keys set directly
    for name in ("demo", "smoke", "paper"):
        cfg = ex.profile(name, device="cpu", seed=1, run_root=str(tmp_path))
        assert cfg["run_root"] == str(tmp_path) and cfg["seed"] == 1
    load_profile("demo", ["device=cpu", "data.batch_size=2", "data.num_frames=3", "data.lr_patch=16"])  # benchmarks
    load_profile("smoke", ["train.steps=1", "data.lr_patch=24", "train.objective={charbonnier: 1.0, niqe: 0.02}",
                           "train.flow_freeze_steps=100", "train.d_lr=2.0e-4"])                     # test_train_real


def test_train_config_errors_are_config_errors():
    from nriqa.train.train_config import TrainConfig

    with pytest.raises(ConfigError, match="train.steps must be a positive integer"):
        TrainConfig.from_cfg({"train": {"steps": 0, "objective": {"charbonnier": 1.0}}})
    cfg = yaml.safe_load(nconfig.dump(load_profile("demo")))
    assert TrainConfig.from_cfg(cfg).steps == 200


def test_a_float_in_exponent_notation_is_read_as_a_float():
    """YAML 1.1 reads ``5e-4`` as text; where the profile has a float it is the number it spells."""
    cfg = load_profile("demo", ["train.optimizer.lr=5e-4", "train.optimizer.eps=1e-6"])
    assert cfg["train"]["optimizer"]["lr"] == 5e-4 and cfg["train"]["optimizer"]["eps"] == 1e-6
    assert load_profile("demo", ["model=1e3"])["model"] == "1e3"            # text stays text where text is expected
    with pytest.raises(ConfigError, match="train.steps must be an int"):
        load_profile("demo", ["train.steps=1e3"])
