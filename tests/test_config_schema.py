"""The profile schema: each key is read by the module it names; base.yaml holds exactly what demo and
paper share; unknown and unread keys are errors naming the key's path with a did-you-mean."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from nriqa import config as nconfig
from nriqa.config import OPEN, SCHEMA, load_profile
from nriqa.errors import ConfigError

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
