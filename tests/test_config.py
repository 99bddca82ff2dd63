"""nriqa.config: profiles and overrides. Overrides and profiles are checked against the resolved
profile: unknown keys at any level and values of the wrong type are errors that name the key (with a
did-you-mean) and the expected type. The profile schema: each key is read by the module it names;
base.yaml holds exactly what demo and paper share."""
from __future__ import annotations

import copy
import dataclasses
import re
import warnings
from pathlib import Path

import pytest
import yaml

from nriqa import config as nconfig
from nriqa.config import OPEN, SCHEMA, available_profiles, load_profile, parse_overrides
from nriqa.errors import ConfigError, UserError
from nriqa.study import runs


def test_bundled_profiles_load_and_smoke_inherits_demo():
    assert {"demo", "smoke", "paper"} <= set(available_profiles())
    demo, smoke = load_profile("demo"), load_profile("smoke")
    assert smoke["name"] == "smoke" and demo["name"] == "demo"
    assert smoke["train"]["steps"] < demo["train"]["steps"]
    # keys smoke does not set come from demo
    assert smoke["train"]["optimizer"] == demo["train"]["optimizer"]
    assert smoke["data"]["scale"] == demo["data"]["scale"] == 4


def test_overrides_are_parsed_as_yaml():
    cfg = load_profile("demo", ["train.steps=7", "data.degradation=BD", "models=[vrt]"])
    assert cfg["train"]["steps"] == 7 and cfg["data"]["degradation"] == "BD" and cfg["models"] == ["vrt"]
    assert parse_overrides({"a.b": 1}) == {"a.b": 1}
    with pytest.raises(ValueError, match="key.path=value"):
        parse_overrides(["train.steps"])


def test_unknown_profile_suggests_closest():
    with pytest.raises(ValueError, match="demo"):
        load_profile("dmeo")


def test_finished_run_with_other_training_settings_is_refused(tmp_path):
    import yaml

    from nriqa.train import train

    cfg = runs.baseline_config(load_profile("smoke"), "basicvsrpp")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "done.json").write_text("{}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train(cfg, run, progress=False) == run  # same settings: silent, nothing trained
    changed = runs.baseline_config(load_profile("smoke", ["train.steps=9"]), "basicvsrpp")
    with pytest.raises(ConfigError, match="different train"):  # never reused silently, nor with a warning
        train(changed, run, progress=False)
    assert not (run / "checkpoints").exists()


def test_paper_profile_drops_the_demo_stand_ins():
    paper = runs.profile("paper", device="cpu")
    grid = runs.finetune_grid(paper)
    assert not [t for t in grid if "@embedded" in t or t in {"niqe", "brisque", "gmsd", "st-lpips-alex"}]
    assert {"maniqa", "lpips-vgg", "pieapp", "maniqa + lpips-vgg"} <= set(grid)
    assert runs.gan_terms(paper, "patchgan", 0.01) == {
        "dists": 1.0, "gan": {"weight": 0.01, "discriminator": "patchgan", "loss": "hinge", "size": "paper"}}
    assert all("@embedded" not in k for combo in paper["weights"]["combos"] for k in combo)


# ----------------------------------------------------------------- unknown keys, wrong types, minimums

NOTEBOOK_SRC = Path(__file__).resolve().parent.parent / "notebooks" / "src"


@pytest.mark.parametrize("override, message", [
    ("trian.steps=3", "override trian.steps=3: unknown key 'trian' in profile 'demo'; did you mean 'train'?"),
    ("train.stpes=3", ("override train.stpes=3: unknown key 'stpes' under 'train' in profile 'demo'; "
                      "did you mean 'steps'?")),
    ("train.optimizer.lrr=1e-4", "unknown key 'lrr' under 'train.optimizer' in profile 'demo'; did you mean 'lr'?"),
    ("data.batchsize=2", "unknown key 'batchsize' under 'data' in profile 'demo'; did you mean 'batch_size'?"),
    ("zzz=1", "unknown key 'zzz' in profile 'demo'; known keys: adversarial, artifact_margins, asymmetry, "
              "baselines, data,"),
    ("train.optimizer={name: adam, lrr: 1}", "unknown key 'lrr' under 'train.optimizer'"),
    ("train.steps.x=1", "train.steps is an int in profile 'demo', it has no key 'x'"),
    ("train.steps=abc", ("override train.steps=abc: train.steps must be an int (profile 'demo' has "
                        "train.steps: 100), got a str abc")),
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


VALID_OVERRIDES = {   # override -> the value it spells, of the type it spells
    "train.steps=7": 7, "train.optimizer.lr=1": 1, "train.grad_clip=null": None,        # an int for a float; null
    "data.root=/data/REDS": "/data/REDS", "train.amp=true": True, "train.channels_last=false": False,
    "train.objective={charbonnier: 1.0, anything@kit: 0.5}": {"charbonnier": 1.0, "anything@kit": 0.5},
    "finetune.extra_terms.my-measure=0.1": 0.1, "adversarial.fidelity.dists=1.0": 1.0,
    "iqa.per_arch.newarch={steps: 3}": {"steps": 3},
    "finetune.grad_clip=0.5": 0.5, "finetune.ema_decay=0.9": 0.9,                      # finetune takes every train key
    "train.tensorboard=true": True, "train.d_lr=2.0e-4": 2.0e-4,
    "train.balance={reference: charbonnier, every: 2}": {"reference": "charbonnier", "every": 2},
    "train.schedule.restart_weights=[1.0]": [1.0], "train.optimizer.eps=1e-6": 1e-6,   # YAML 1.1 text -> float
    "model=vrt": "vrt", "experiment=x": "x", "run_root=/tmp/runs": "/tmp/runs", "seed=3": 3, "device=cpu": "cpu",
    "model_size=paper": "paper", "data.max_clips=2": 2, "data.preload=true": True,
    "data.eval_sets=[{source: vid4, root: /x}]": [{"source": "vid4", "root": "/x"}],
    "iqa.dataset=koniq10k": "koniq10k", "iqa.margin=0.2": 0.2, "adversarial.size=paper": "paper",
    "weights.target_share={niqe: 0.2}": {"niqe": 0.2}, "experiment='001'": "001",       # quoted: text, not 1
}


def _same(a, b) -> bool:
    """Equal and of the same types all the way down (``1 == 1.0 == True`` does not count)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("override, value", list(VALID_OVERRIDES.items()))
def test_valid_overrides_load(override, value):
    """Each valid override loads, lands where it says with the value and type it spells, and changes
    nothing else of the profile."""
    cfg = load_profile("demo", [override])
    *parents, key = override.split("=", 1)[0].split(".")
    node = cfg
    for name in parents:
        node = node[name]
    assert _same(node[key], value), (override, node[key], value)
    want = copy.deepcopy(load_profile("demo"))
    target = want
    for name in parents:
        target = target.setdefault(name, {})
    target[key] = value
    assert cfg == want, [k for k in cfg if cfg[k] != want.get(k)]


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


def test_what_the_notebooks_benchmarks_and_tests_pass_still_loads(tmp_path):
    calls = set()
    for src in NOTEBOOK_SRC.glob("*.py"):
        calls |= set(re.findall(r"\bprofile\(([^)]*)\)", src.read_text()))
    assert calls == {"PROFILE, device=DEVICE, seed=SEED, run_root=RUN_ROOT"}   # no overrides: keys set directly
    for name in ("demo", "smoke", "paper"):
        cfg = runs.profile(name, device="cpu", seed=1, run_root=str(tmp_path))
        assert cfg["run_root"] == str(tmp_path) and cfg["seed"] == 1
    load_profile("demo", ["device=cpu", "data.batch_size=2", "data.num_frames=3", "data.lr_patch=16"])  # benchmarks
    load_profile("smoke", ["train.steps=1", "data.lr_patch=24", "train.objective={charbonnier: 1.0, niqe: 0.02}",
                           "train.flow_freeze_steps=100", "train.d_lr=2.0e-4"])                     # test_train_real


def test_train_config_errors_are_config_errors():
    from nriqa.train.train_config import TrainConfig

    with pytest.raises(ConfigError, match="train.steps must be a positive integer"):
        TrainConfig.from_cfg({"train": {"steps": 0, "objective": {"charbonnier": 1.0}}})
    cfg = yaml.safe_load(nconfig.dump(load_profile("demo")))
    assert TrainConfig.from_cfg(cfg).steps == 100


def test_a_float_in_exponent_notation_is_read_as_a_float():
    """YAML 1.1 reads ``5e-4`` as text; where the profile has a float it is the number it spells."""
    cfg = load_profile("demo", ["train.optimizer.lr=5e-4", "train.optimizer.eps=1e-6"])
    assert cfg["train"]["optimizer"]["lr"] == 5e-4 and cfg["train"]["optimizer"]["eps"] == 1e-6
    assert load_profile("demo", ["model=1e3"])["model"] == "1e3"            # text stays text where text is expected
    with pytest.raises(ConfigError, match="train.steps must be an int"):
        load_profile("demo", ["train.steps=1e3"])


# ----------------------------------------------------------------- the schema and the bundled profiles

PKG = Path(nconfig.__file__).resolve().parent


@pytest.mark.parametrize("path", sorted(SCHEMA))
def test_every_schema_key_is_read_by_the_module_it_names(path):
    """A key no code reads has no place in the schema (so a profile that sets it is rejected)."""
    kinds, reader = SCHEMA[path]
    source = (PKG / reader).read_text()
    key = path.split(".")[-1]
    assert re.search(rf"[\"']{key}[\"']|\b{key}\s*[:=]|\.{key}\b|\b{key}\b=", source), \
        f"{path}: {reader} does not read {key!r}"


def _leaves(tree, prefix=""):
    for k, v in tree.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v and path not in OPEN:
            yield from _leaves(v, path + ".")
        else:
            yield path, v


def _own(name):
    data = yaml.safe_load((nconfig.PROFILES_DIR / f"{name}.yaml").read_text())
    data.pop("base", None)
    return dict(_leaves(data))


def test_base_holds_exactly_what_demo_and_paper_share():
    assert "base" not in nconfig.available_profiles() and load_profile("base")["name"] == "base"
    base, demo, paper = _own("base"), _own("demo"), _own("paper")
    for name in ("demo", "paper"):
        assert yaml.safe_load((nconfig.PROFILES_DIR / f"{name}.yaml").read_text())["base"] == "base"
    assert not set(base) & (set(demo) | set(paper)), "a base setting is set again by demo or paper"
    same = {k for k in set(demo) & set(paper) if demo[k] == paper[k] and k != "name"}
    assert not same, f"demo and paper both set these to the same value; they belong in base.yaml: {same}"


def test_paper_profile_states_its_sizes_and_inherits_nothing_from_demo():
    paper, base = load_profile("paper"), load_profile("base")
    own = _own("paper")
    for path, _ in _leaves(paper):
        assert path in own or path in _own("base") or any(path.startswith(o + ".") for o in OPEN), path
    assert "per_arch" not in paper["iqa"] and "iqa_dataset" not in paper["asymmetry"]
    assert base["seed"] == paper["seed"] and paper["model_size"] == "paper"
    # kit IQA patches fit the images they are cut from
    assert paper["iqa"]["dataset"] != "embedded" or paper["iqa"]["patch"] <= paper["iqa"]["crop"]
    hr = paper["data"]["lr_patch"] * paper["data"]["scale"]
    assert hr >= 224, "NR-IQA losses at paper size (MANIQA, HyperIQA) need >= 224 px HR crops"


@pytest.mark.parametrize("text, message", [
    ("base: demo\nasymmetry: {iqa_dataset: koniq10k}\n",
     "unknown key 'iqa_dataset' under 'asymmetry' in profile 'mine'; did you mean 'iqa_sets'?"),
    ("base: demo\niqa: {per_arch: {wadiqam: {stesp: 3}}}\n",
     "unknown key 'stesp' under 'iqa.per_arch.wadiqam' in profile 'mine'; did you mean 'steps'?"),
    ("base: demo\niqa: {per_arch: {wadiqam: {steps: many}}}\n", "iqa.per_arch.wadiqam.steps must be an int"),
    ("base: demo\nadversarial: {artifact_gan: {wieght: 0.1}}\n",
     "unknown key 'wieght' under 'adversarial.artifact_gan' in profile 'mine'; did you mean 'weight'?"),
    ("base: demo\nadversarial: {artifact_gan: {weight: high}}\n", "adversarial.artifact_gan.weight must be a float"),
    ("base: base\nfinetune: {optimizer: {lrr: 1}}\n", "unknown key 'lrr' under 'finetune.optimizer'"),
    ("base: base\ndata: {scael: 4}\n", "did you mean 'scale'?"),
    ("base: base\nmodels: vrt\n", "models must be a list [a, b]"),
])
def test_profile_files_are_checked_against_the_schema(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\n" + text)
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert message in str(err.value)


def test_overrides_reach_per_arch_and_nested_sections():
    cfg = load_profile("demo", ["iqa.per_arch.newarch.steps=3", "adversarial.artifact_gan.weight=0.1"])
    assert cfg["iqa"]["per_arch"]["newarch"] == {"steps": 3}
    with pytest.raises(ConfigError, match=r"unknown key 'stpes' under 'iqa.per_arch.cnniqa'.*did you mean 'steps'"):
        load_profile("demo", ["iqa.per_arch.cnniqa.stpes=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'iqa_dataset' under 'asymmetry'"):
        load_profile("paper", ["asymmetry.iqa_dataset=koniq10k"])
