"""Profiles: an experiment is a YAML profile plus ``key.path=value`` overrides.

>>> cfg = load_profile("demo", ["train.steps=50", "data.batch_size=2"])
>>> cfg["train"]["steps"]
50

Profiles live in ``nriqa/profiles/<name>.yaml``; a path to any YAML file works too. A profile
may name ``base: <other profile>``; its keys are merged over the base recursively.

Overrides (and the keys a profile sets over its base) are checked against the resolved profile: a
key it does not have (at any level) is a :class:`~nriqa.errors.ConfigError` with a did-you-mean,
and so is a value whose type differs from the profile's (``int`` is accepted for ``float``; a key
that is ``null`` in the profile, and a ``null`` value, accept anything). Besides the profile's own
keys, those in :data:`DECLARED` are known (settings the code reads that a profile may leave out),
and below the :data:`OPEN` subtrees any key goes (their keys are names: loss terms, measures,
architectures). ``finetune`` takes every ``train`` key as well (it is merged over ``train``).
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


def available_profiles() -> list[str]:
    """Names of the bundled profiles."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


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
    if base:
        base_cfg = load_profile(base)
        check_keys(base_cfg, {k: v for k, v in data.items() if k != "name"},
                   where=f"profile {path}", profile=str(base))
        cfg = deep_merge(base_cfg, data)
    else:
        cfg = data
    parsed = _parse_overrides(overrides)
    if parsed:
        ref = reference_tree(cfg)
        name = str(cfg.get("name", Path(path).stem))
        parsed = [(k, check_override(ref, k, v, profile=name, text=text), text) for k, v, text in parsed]
    for k, v, _ in parsed:
        set_by_path(cfg, k, v)
    cfg.setdefault("name", Path(path).stem)
    return cfg


# --- what a profile may say: known keys and their types ------------------------------------------------

#: settings the code reads that a profile may leave out (dotted key -> a value of the expected type;
#: ``None``: any type). Known in every profile, on top of the profile's own keys.
DECLARED: dict[str, Any] = {
    # set by nriqa.study.runs for each run (and the notebooks' parameters: DEVICE, SEED, RUN_ROOT)
    "model": "", "experiment": "", "run_root": "", "device": "", "seed": 0, "name": "",
    # nriqa.data.factory
    "data.max_clips": 0, "data.max_frames": 0, "data.preload": False, "data.eval_sets": [],
    # nriqa.train.config.TrainConfig fields the bundled profiles leave at their defaults
    "train.tensorboard": False, "train.balance": {}, "train.project_conflicts": False,
    "train.d_optimizer": {}, "train.d_lr": 0.0, "train.init_weights": "", "train.loss_ema_decay": 0.0,
    "train.ddp_find_unused": False,
    "train.optimizer.eps": 0.0,                 # nriqa.train.optim
    "train.schedule.restart_weights": [],       # nriqa.train.schedule
    # nriqa.iqa.train.DEFAULTS beyond the demo's iqa section
    "iqa.margin": 0.0, "iqa.rank_weight": 0.0, "iqa.pseudo_weight": 0.0, "iqa.dataset": "", "iqa.root": None,
    "iqa.eval_crop": 0, "iqa.ckpt_every": 0, "iqa.seed": 0,
    "adversarial.size": "",                     # discriminator size (paper: "paper")
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
    "iqa.per_arch",                   # architecture -> its own iqa settings
)

#: keys that take more than one type (the profile's value shows only one of them)
TYPES: dict[str, tuple[type, ...]] = {
    "train.amp": (str, bool), "train.channels_last": (str, bool),   # "auto" | true | false
    "weights.target_share": (float, dict),                          # one share, or term -> share
}


def _alias(path: str) -> str:
    """``finetune.<key>`` is merged over ``train``: a key finetune does not set reads as train's."""
    return "train." + path[len("finetune."):] if path.startswith("finetune.") else path


def _is_open(path: str) -> bool:
    return any(p == o or p.startswith(o + ".") for p in {path, _alias(path)} for o in OPEN)


def reference_tree(cfg: Mapping[str, Any]) -> dict:
    """The keys (and example values) an override of ``cfg`` may name: ``cfg`` + :data:`DECLARED`, with
    ``finetune`` taking every ``train`` key too."""
    declared: dict = {}
    for dotted, example in DECLARED.items():
        set_by_path(declared, dotted, example)
    ref = deep_merge(declared, cfg)
    if isinstance(ref.get("finetune"), Mapping) and isinstance(ref.get("train"), Mapping):
        ref["finetune"] = deep_merge(ref["train"], ref["finetune"])
    return ref


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


def _check_value(ref_value: Any, value: Any, path: str, where: str, profile: str, raw: str | None = None) -> None:
    """``value`` set at ``path`` where the profile has ``ref_value``: same type, known keys below."""
    if value is None or ref_value is None:
        return
    kinds = TYPES.get(path) or TYPES.get(_alias(path)) or ((_kind(ref_value),) if _kind(ref_value) else None)
    if kinds and not _type_ok(value, kinds):
        expected = " or ".join(_TYPE_NAMES[k] for k in kinds)
        got = _GOT_NAMES.get(_kind(value), type(value).__name__)
        hint = f"; quote it to keep it text: {path}='{raw if raw is not None else value}'" \
            if str in kinds and not isinstance(value, (Mapping, list, tuple)) else ""
        declared_only = path in DECLARED and ref_value == DECLARED[path]
        source = "" if declared_only else f" (profile {profile!r} has {path}: {_show(ref_value)})"
        raise ConfigError(f"{where}: {path} must be {expected}{source}, got {got} {_show(value)}{hint}")
    if isinstance(value, Mapping) and isinstance(ref_value, Mapping) and not _is_open(path):
        for k, v in value.items():
            sub = f"{path}.{k}"
            if k not in ref_value:
                _fail_unknown(where, profile, path, str(k), ref_value)
            _check_value(ref_value[k], v, sub, where, profile)


def check_override(ref: Mapping[str, Any], dotted: str, value: Any, *, profile: str = "?",
                   text: str | None = None) -> Any:
    """``value``, once ``dotted=value`` is known to name a key of ``ref`` (:func:`reference_tree`) with a
    value of the type the profile has there (or to lie below an :data:`OPEN` subtree or a null);
    :class:`ConfigError` otherwise. Where a float is expected, a number YAML reads as text (``1e-4``:
    YAML 1.1 wants ``1.0e-4``) is returned as the float it spells."""
    where = f"override {text or f'{dotted}={_show(value)}'}"
    raw = text.partition("=")[2].strip() if text and "=" in text else None
    keys = dotted.split(".")
    node: Any = ref
    for i, key in enumerate(keys):
        parent = ".".join(keys[:i])
        if (parent and _is_open(parent)) or node is None:
            return value
        if not isinstance(node, Mapping):
            raise ConfigError(f"{where}: {parent} is {_GOT_NAMES.get(_kind(node), type(node).__name__)} in "
                              f"profile {profile!r}, it has no key {key!r}; set {parent}=VALUE instead")
        if key not in node:
            _fail_unknown(where, profile, parent, key, node)
        node = node[key]
    kinds = TYPES.get(dotted) or TYPES.get(_alias(dotted)) or (_kind(node),)
    if float in kinds and str not in kinds and isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        value = float(value)
    _check_value(node, value, dotted, where, profile, raw)
    return value


_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def check_keys(base: Mapping[str, Any], data: Mapping[str, Any], *, where: str, profile: str) -> None:
    """:class:`ConfigError` unless every key of ``data`` (a profile merged over ``base``) is known there."""
    ref = reference_tree(base)
    for k, v in data.items():
        if k not in ref:
            _fail_unknown(where, profile, "", str(k), ref)
        _check_value(ref[k], v, str(k), where, profile)


def _show(value: Any) -> str:
    """``value`` as YAML on one short line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def resolve_device(device: str | None = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is present, else ``"cpu"``; other values pass through."""
    # torch is imported here, not at module top: reading profiles (the CLI, every subpackage)
    # must not pay for importing torch.
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but torch sees no CUDA device")
    return str(device)


def dump(cfg: Mapping[str, Any]) -> str:
    """YAML text of a resolved config (stable key order)."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)


def _runnable_others(samples: int = 5, every: float = 0.01) -> float:
    """How many other tasks want a CPU right now: the median of the runnable count in
    ``/proc/loadavg`` (which counts this process too) over a few samples, less one. Falls back to
    the 1-minute load average where ``/proc`` is missing. Instantaneous on purpose: the load
    average trails by a minute, so right after this kit's own busy work it would count that work."""
    import statistics
    import time

    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, IndexError, ValueError):
            return float(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0.0
        if i + 1 < samples:
            time.sleep(every)
    return max(0.0, statistics.median(counts) - 1)


def cpu_threads(*, cores: int | None = None, busy: float | None = None) -> int:
    """Torch CPU threads for one process on a machine it may share with other CPU-heavy work.

    ``$NRIQA_THREADS`` when set; else the cores this process may run on (``os.sched_getaffinity``)
    less the other tasks that want a CPU now (``busy``, default :func:`_runnable_others`), rounded,
    at least 1: on 2 cores with one other busy process that is 1 thread, not 2 threads fighting
    over the one free core (see BENCHMARKS.md, "Threads on a busy machine")."""
    env = os.environ.get("NRIQA_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"NRIQA_THREADS must be a whole number >= 1, got {env!r}")
        return int(env)
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if busy is None:
        busy = _runnable_others()
    return max(1, min(cores, round(cores - busy)))


def set_cpu_threads() -> int:
    """Apply :func:`cpu_threads` (returns it), unless ``OMP_NUM_THREADS`` was chosen by the user
    (then that count stands and is returned). Called when the CLI, the notebook runner's kernels
    and the test session start. Before torch is imported it sets ``OMP_NUM_THREADS`` (torch reads
    it on import: nothing imports torch only for this); after, ``torch.set_num_threads``."""
    import sys

    chosen = os.environ.get("OMP_NUM_THREADS", "").strip()
    if chosen.isdigit() and int(chosen) >= 1 and os.environ.get("_NRIQA_OMP_SET") != chosen:
        return int(chosen)
    n = cpu_threads()
    os.environ["OMP_NUM_THREADS"] = os.environ["_NRIQA_OMP_SET"] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n
