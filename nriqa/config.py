"""Profiles: an experiment is a YAML profile plus ``key.path=value`` overrides.

>>> cfg = load_profile("demo", ["train.steps=50", "data.batch_size=2"])
>>> cfg["train"]["steps"]
50

Profiles live in ``nriqa/profiles/<name>.yaml``; a path to any YAML file works too. A profile
may name ``base: <other profile>``; its keys are merged over the base recursively.

Every profile file and every override is checked against :data:`SCHEMA` (each setting the code
reads, its type and the module that reads it): a key it does not list, at any level, is a
:class:`~nriqa.errors.ConfigError` naming the key's path with a did-you-mean, and so is a value of
another type (``int`` is accepted for ``float``; ``null`` for anything). Below the :data:`OPEN`
subtrees any key goes (their keys are names: loss terms, measures); below :data:`PER_NAME` ones each
name takes the keys of another section (``iqa.per_arch.wadiqam.steps`` is an ``iqa`` key).
``finetune`` takes every ``train`` key as well (it is merged over ``train``). ``base.yaml`` holds
what the bundled study profiles share; ``demo`` and ``paper`` build on it, ``smoke`` on ``demo``.
"""
from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from nriqa.errors import ConfigError

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


#: bundled profiles that only serve as a ``base:`` (not a whole experiment)
PARTIAL_PROFILES = frozenset({"base"})


def available_profiles() -> list[str]:
    """Names of the bundled profiles one can run (``base``, shared by demo and paper, is left out)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml") if p.stem not in PARTIAL_PROFILES)


def _profile_path(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"}:
        if not p.exists():
            raise FileNotFoundError(f"profile file {p} does not exist; give a bundled profile name "
                                    f"({', '.join(available_profiles())}) or the path of a YAML file")
        return p
    candidate = PROFILES_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        names = available_profiles()
        close = difflib.get_close_matches(str(name_or_path), names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown profile {str(name_or_path)!r}; {hint}bundled profiles: {', '.join(names)} "
                          "(or give the path of a .yaml file)")
    return candidate


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict:
    """Recursively merge ``over`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_by_path(cfg: dict, dotted: str, value: Any) -> None:
    """Set ``cfg["a"]["b"] = value`` for ``dotted == "a.b"``, creating dicts as needed."""
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value


def parse_overrides(overrides: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[x, y]"]`` into ``{"a.b": 1, "c": ["x", "y"]}`` (values parsed as YAML)."""
    return {key: value for key, value, _ in _parse_overrides(overrides)}


def _parse_overrides(overrides: Iterable[str] | Mapping[str, Any] | None) -> list[tuple[str, Any, str]]:
    """``(key, value, the text the user wrote)`` per override."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [(str(k), v, f"{k}={_show(v)}") for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    out = []
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip() or any(not k for k in key.strip().split(".")):
            raise ConfigError(f"override {item!r} must look like key.path=value, e.g. train.steps=50")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            why = " ".join(str(getattr(err, "problem", None) or err).split())
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({why}); quote text, "
                              "write lists as [a, b] and mappings as {key: value}") from None
        out.append((key.strip(), value, str(item).strip()))
    return out


def load_profile(name_or_path: str | os.PathLike = "demo",
                 overrides: Iterable[str] | Mapping[str, Any] | None = None) -> dict:
    """Load a profile (bundled name or YAML path), resolve ``base:`` and apply overrides."""
    path = _profile_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"profile {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"profile {path} must be a YAML mapping (key: value lines), got {type(data).__name__}")
    base = data.pop("base", None)
    base_cfg = load_profile(base) if base else {}
    check_keys(base_cfg, data, where=f"profile {path}", profile=str(data.get("name") or path.stem))
    cfg = deep_merge(base_cfg, data)
    parsed = _parse_overrides(overrides)
    if parsed:
        name = str(cfg.get("name", Path(path).stem))
        parsed = [(k, check_override(cfg, k, v, profile=name, text=text), text) for k, v, text in parsed]
    for k, v, _ in parsed:
        set_by_path(cfg, k, v)
    cfg.setdefault("name", Path(path).stem)
    return cfg


# --- what a profile may say: a schema per section ------------------------------------------------------

S, I, F, B, L, D = (str,), (int,), (float,), (bool,), (list,), (dict,)

#: every setting the code reads: dotted key -> (accepted types, the module under ``nriqa/`` that
#: reads it). A key not listed is unknown, and a key no code reads is not listed (tests check that
#: each reader names its key). ``int`` is accepted for ``float``; ``null`` for any key.
SCHEMA: dict[str, tuple[tuple[type, ...], str]] = {
    # the run: set by the profile, by nriqa.study.runs for each run, and by the notebooks' parameters
    "name": (S, "train/cli.py"), "device": (S, "train/trainer.py"), "seed": (I, "train/trainer.py"),
    "model": (S, "train/generators.py"), "experiment": (S, "study/runs.py"), "run_root": (S, "study/runs.py"),
    "models": (L, "study/runs.py"), "model_size": (S, "train/generators.py"), "panel": (L, "study/judging.py"),
    "spynet_weights": (S, "train/generators.py"),
    # where the baselines come from: "train" (the profile's train section) or "release" (the kit's shipped
    # baselines, nriqa.study.kit_release); release.*: how long a release trains
    "baselines": (S, "study/runs.py"), "released": (D, "study/runs.py"),
    **{f"release.{k}": (I, "study/kit_release.py") for k in ("steps", "warmup_steps", "flow_freeze_steps")},
    "seeds": (L, "study/runs.py"), "workers": ((int, str), "study/runs.py"), "threads": (I, "compute.py"),
    # nriqa.data.factory
    **{f"data.{k}": (t, "data/factory.py") for k, t in {
        "source": S, "root": S, "degradation": S, "scale": I, "num_frames": I, "lr_patch": I, "batch_size": I,
        "test_max_frames": I, "test_max_clips": I, "test_max_side": I, "max_clips": I, "max_frames": I,
        "preload": B, "eval_sets": L}.items()},
    # nriqa.train.train_config.TrainConfig (finetune takes each of these too: it is merged over train)
    **{f"train.{k}": (t, "train/train_config.py") for k, t in {
        "steps": I, "objective": D, "optimizer": D, "schedule": D, "flow_lr_mult": F, "flow_freeze_steps": I,
        "grad_clip": F, "accumulate": I, "ema_decay": F, "log_every": I, "gradnorm_every": I, "ckpt_every": I,
        "keep_last": I, "max_nonfinite": I, "amp": (str, bool), "channels_last": (str, bool), "compile": B,
        "tensorboard": B, "balance": D, "project_conflicts": B, "d_optimizer": D, "d_lr": F, "init_weights": S,
        "loss_ema_decay": F, "ddp_find_unused": B, "ema_warmup": B}.items()},
    **{f"train.optimizer.{k}": (t, "train/optim.py") for k, t in {
        "name": S, "lr": F, "betas": L, "weight_decay": F, "eps": F}.items()},
    **{f"train.schedule.{k}": (t, "train/schedule.py") for k, t in {
        "name": S, "periods": L, "eta_min": F, "warmup_steps": I, "restart_weights": L}.items()},
    # nriqa.study.runs: the fine-tune grid
    "finetune.model": (S, "study/runs.py"), "finetune.models": (L, "study/runs.py"),
    "finetune.extra_terms": (D, "study/runs.py"), "finetune.combos": (L, "study/runs.py"),
    "finetune.fidelity_only": (B, "study/runs.py"),
    # nriqa.iqa.iqa_training.DEFAULTS (and iqa.models: which kit models the study trains, each <arch> (on
    # iqa.dataset) or <arch>@<dataset>, e.g. cnniqa@embedded-a; entries checked by iqa_training.kit_models)
    **{f"iqa.{k}": (t, "iqa/iqa_training.py") for k, t in {
        "steps": I, "batch_size": I, "patch": I, "lr": F, "margin": F, "rank_weight": F, "pseudo_weight": F,
        "dataset": S, "root": S, "crop": I, "max_sources": I, "eval_crop": I, "ckpt_every": I, "seed": I,
        "per_arch": D}.items()},
    "iqa.models": (L, "study/runs.py"),
    # nriqa.study.weighting
    **{f"weights.{k}": (t, "study/weighting.py") for k, t in {
        "combos": L, "target_share": (float, dict), "reference": S, "probe_batches": I, "balance_every": I,
        "weightings": L}.items()},
    # nriqa.study.runs / nriqa.study.discriminator_choice
    **{f"adversarial.{k}": (t, "study/runs.py") for k, t in {
        "gan_weights": L, "gan_loss": S, "fidelity": D, "steps": I, "size": S, "d_lr": F}.items()},
    **{f"adversarial.{k}": (t, "study/discriminator_choice.py") for k, t in {
        "discriminators": L, "transfer": D, "artifact_term": D, "artifact_gan": D, "transfer_trunks": L}.items()},
    **{f"adversarial.transfer.{k}": (t, "study/discriminator_choice.py") for k, t in {
        "eval_every": I, "patience": I, "min_delta": F, "max_steps": I, "val_sources": I}.items()},
    "adversarial.artifact_gan.discriminator": (S, "study/discriminator_choice.py"),
    "adversarial.artifact_gan.weight": (F, "study/discriminator_choice.py"),
    # nriqa.study.artifact_sources: notebook 03's pixel-optimization gallery
    **{f"pixels.{k}": (t, "study/artifact_sources.py") for k, t in {
        "steps": I, "lr": F, "crop": I, "anchor_weight": F, "terms": L, "start": L, "with": L}.items()},
    # nriqa.analysis.claims.Settings: how a verdict follows from the runs
    **{f"verdicts.{k}": (t, "analysis/claims.py") for k, t in {
        "n_boot": I, "seed": I, "equivalence_margin": F, "rho_margin": F,
        "alpha": F, "primary": D}.items()},
    # nriqa.analysis.margins: per artifact detector, its margin from a visible injected artifact
    "artifact_margins": (D, "analysis/margins.py"),
    # nriqa.study.assess_vs_optimize
    **{f"asymmetry.{k}": (t, "study/assess_vs_optimize.py") for k, t in {
        "max_sources": I, "discriminator": S, "adversarial_fidelity": D, "measures": L, "iqa_sets": D,
        "published": D, "optimization": S, "pixels": D}.items()},
    **{f"asymmetry.pixels.{k}": (t, "study/assess_vs_optimize.py") for k, t in {
        "steps": I, "lr": F, "anchor_weight": F, "crop": I, "frame": I}.items()},
    "asymmetry.published.datasets": (L, "study/assess_vs_optimize.py"),
}

#: numeric settings with a smallest sensible value (inclusive): a smaller one is a ConfigError at load
#: time, before anything trains (``data.batch_size=0`` would otherwise fail deep in the sampler)
MINIMUM: dict[str, float] = {
    **{k: 1 for k in ("threads", "data.scale", "data.num_frames", "data.lr_patch", "data.batch_size",
                      "data.test_max_frames", "data.test_max_clips", "data.test_max_side", "data.max_clips",
                      "data.max_frames", "release.steps", "train.steps", "train.accumulate", "train.log_every",
                      "train.keep_last", "train.max_nonfinite", "iqa.steps", "iqa.batch_size",
                      "iqa.patch", "iqa.crop", "iqa.max_sources", "iqa.eval_crop", "iqa.ckpt_every",
                      "pixels.steps", "pixels.crop", "verdicts.n_boot", "weights.probe_batches",
                      "weights.balance_every", "adversarial.steps", "adversarial.transfer.eval_every",
                      "adversarial.transfer.patience", "adversarial.transfer.max_steps",
                      "adversarial.transfer.val_sources",
                      "asymmetry.max_sources")},
    **{k: 0 for k in ("seed", "train.ckpt_every", "train.gradnorm_every", "train.flow_freeze_steps",
                      "train.grad_clip", "train.ema_decay", "train.optimizer.lr",
                      "train.optimizer.weight_decay", "train.schedule.eta_min", "train.schedule.warmup_steps",
                      "iqa.lr", "iqa.seed", "pixels.lr", "pixels.anchor_weight", "adversarial.d_lr", "train.d_lr",
                      "adversarial.transfer.min_delta")},
}

#: subtrees whose keys are names chosen by the user, not settings: any key and value below them
OPEN: tuple[str, ...] = (
    "train.objective",                # loss term (measure name, "gan", "weights") -> weight or spec
    "train.balance",                  # gradient-norm balancer knobs, per-term shares
    "train.d_optimizer",              # discriminator optimizer settings, key by key
    "finetune.extra_terms",           # measure name -> weight (null drops a base term)
    "adversarial.fidelity",           # term -> weight
    "adversarial.artifact_term",      # term -> weight
    "asymmetry.adversarial_fidelity",  # term -> weight
    "asymmetry.iqa_sets",             # {fr: [{name, root, split}], nr: [...]}:
                                      # checked by nriqa.study.assess_vs_optimize
    "artifact_margins",               # detector -> {margin, strength, kind, source}:
                                      # checked by nriqa.analysis.margins.profile_margins
    "verdicts.primary",               # claim id -> {contrast: name}: checked by nriqa.analysis.claims
)

#: subtrees whose keys are names and whose values are a section of their own (architecture -> iqa settings)
PER_NAME: dict[str, str] = {"iqa.per_arch": "iqa"}

def _alias(path: str) -> str:
    """``finetune.<key>`` is merged over ``train``: a key finetune does not set reads as train's."""
    if path == "finetune":
        return "train"
    return "train." + path[len("finetune."):] if path.startswith("finetune.") else path


def _is_open(path: str) -> bool:
    return any(p == o or p.startswith(o + ".") for p in {path, _alias(path)} for o in OPEN)


def _schema_path(path: str) -> str | None:
    """The SCHEMA key that governs ``path`` (finetune.x -> train.x, iqa.per_arch.A.x -> iqa.x), or None."""
    for prefix, section in PER_NAME.items():
        if path.startswith(prefix + "."):
            rest = path[len(prefix) + 1:].split(".", 1)
            sub = f"{section}.{rest[1]}" if len(rest) == 2 else None
            return sub if sub in SCHEMA else None
    for p in (path, _alias(path)):
        if p in SCHEMA:
            return p
    return None


def known_children(path: str) -> list[str]:
    """Keys the schema allows directly below ``path`` ("" for the top level)."""
    if path in PER_NAME:
        return []
    for prefix, section in PER_NAME.items():
        if path.startswith(prefix + ".") and path.count(".") == prefix.count(".") + 1:
            return sorted(k for k in known_children(section) if k != "per_arch")
    out: set[str] = set()
    for p in {path, _alias(path)}:
        pre = p + "." if p else ""
        out |= {k[len(pre):].split(".")[0] for k in SCHEMA if k.startswith(pre)}
    return sorted(out)


def _is_section(path: str) -> bool:
    """A mapping whose keys are settings (checked one by one)."""
    return bool(known_children(path)) or any(path.startswith(p + ".") and path.count(".") == p.count(".") + 1
                                             for p in PER_NAME)


def _expected(path: str) -> tuple[type, ...] | None:
    sp = _schema_path(path)
    return SCHEMA[sp][0] if sp else (D if _is_section(path) else None)


_TYPE_NAMES = {bool: "a bool (true/false)", int: "an int", float: "a float", str: "a str", list: "a list [a, b]",
               dict: "a dict {key: value}"}
_GOT_NAMES = {bool: "a bool", int: "an int", float: "a float", str: "a str", list: "a list", dict: "a dict"}


def _kind(value: Any) -> type | None:
    for t in (bool, int, float, str):
        if isinstance(value, t):
            return t
    if isinstance(value, (list, tuple)):
        return list
    if isinstance(value, Mapping):
        return dict
    return None


def _type_ok(value: Any, kinds: tuple[type, ...]) -> bool:
    got = _kind(value)
    return value is None or got in kinds or (got is int and float in kinds)


def _fail_unknown(where: str, profile: str, parent: str, key: str, known: Iterable[str]) -> None:
    known = sorted(str(k) for k in known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    under = f" under {parent!r}" if parent else ""
    hint = f"did you mean {close[0]!r}?" if close else f"known keys{under}: {', '.join(known) or 'none'}"
    raise ConfigError(f"{where}: unknown key {key!r}{under} in profile {profile!r}; {hint}")


def _lookup(cfg: Mapping[str, Any] | None, path: str) -> Any:
    node: Any = cfg
    for k in path.split("."):
        if not isinstance(node, Mapping) or k not in node:
            return _MISSING
        node = node[k]
    return node


_MISSING = object()


def _check_value(value: Any, path: str, where: str, profile: str, raw: str | None = None,
                 cfg: Mapping[str, Any] | None = None) -> None:
    """``value`` set at ``path``: of the type SCHEMA gives, and (for a section) only known keys below."""
    if value is None:
        return
    kinds = _expected(path)
    if kinds and not _type_ok(value, kinds):
        expected = " or ".join(_TYPE_NAMES[k] for k in kinds)
        got = _GOT_NAMES.get(_kind(value), type(value).__name__)
        hint = f"; quote it to keep it text: {path}='{raw if raw is not None else value}'" \
            if str in kinds and not isinstance(value, (Mapping, list, tuple)) else ""
        has = _lookup(cfg, path)
        source = f" (profile {profile!r} has {path}: {_show(has)})" if has not in (_MISSING, None) else ""
        raise ConfigError(f"{where}: {path} must be {expected}{source}, got {got} {_show(value)}{hint}")
    low = MINIMUM.get(_schema_path(path) or "")
    if low is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value < low:
        raise ConfigError(f"{where}: {path} must be >= {low}, got {_show(value)}")
    if isinstance(value, Mapping) and not _is_open(path) and (_is_section(path) or path in PER_NAME):
        known = known_children(path)
        for k, v in value.items():
            sub = f"{path}.{k}"
            if path not in PER_NAME and str(k) not in known:
                _fail_unknown(where, profile, path, str(k), known)
            _check_value(v, sub, where, profile, cfg=cfg)


def check_override(ref: Mapping[str, Any] | None, dotted: str, value: Any, *, profile: str = "?",
                   text: str | None = None) -> Any:
    """``value``, once ``dotted=value`` is known to name a SCHEMA key (or to lie below an :data:`OPEN`
    subtree) with a value of the type the schema gives; :class:`ConfigError` otherwise. ``ref`` is the
    profile being overridden (its values are quoted in errors). Where a float is expected, a number
    YAML reads as text (``1e-4``: YAML 1.1 wants ``1.0e-4``) is returned as the float it spells."""
    where = f"override {text or f'{dotted}={_show(value)}'}"
    raw = text.partition("=")[2].strip() if text and "=" in text else None
    keys = dotted.split(".")
    for i, key in enumerate(keys):
        parent = ".".join(keys[:i])
        if parent and _is_open(parent):
            break
        if parent in PER_NAME:
            continue
        if parent and not _is_section(parent):
            kinds = _expected(parent) or ()
            got = " or ".join(_GOT_NAMES[k] for k in kinds) or "a setting"
            raise ConfigError(f"{where}: {parent} is {got} in profile {profile!r}, it has no key {key!r}; "
                              f"set {parent}=VALUE instead")
        known = known_children(parent)
        if key not in known:
            _fail_unknown(where, profile, parent, key, known)
    kinds = _expected(dotted) or ()
    if float in kinds and str not in kinds and isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        value = float(value)
    _check_value(value, dotted, where, profile, raw, cfg=ref)
    return value


_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def check_keys(base: Mapping[str, Any] | None, data: Mapping[str, Any], *, where: str, profile: str) -> None:
    """:class:`ConfigError` unless every key of ``data`` (a profile's own keys, merged over ``base``) is a
    SCHEMA key with a value of its type."""
    known = known_children("")
    for k, v in data.items():
        if str(k) not in known:
            _fail_unknown(where, profile, "", str(k), known)
        _check_value(v, str(k), where, profile, cfg=base)


def _show(value: Any) -> str:
    """``value`` as YAML on one short line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def dump(cfg: Mapping[str, Any]) -> str:
    """YAML text of a resolved config (stable key order)."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)
