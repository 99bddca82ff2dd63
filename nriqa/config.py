"""Profiles: an experiment is a YAML profile plus ``key.path=value`` overrides.

>>> cfg = load_profile("demo", ["train.steps=50", "data.batch_size=2"])
>>> cfg["train"]["steps"]
50

Profiles live in ``nriqa/profiles/<name>.yaml``; a path to any YAML file works too. A profile
may name ``base: <other profile>``; its keys are merged over the base recursively.
"""
from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


def available_profiles() -> list[str]:
    """Names of the bundled profiles."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _profile_path(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"}:
        if not p.exists():
            raise FileNotFoundError(f"profile file {p} does not exist")
        return p
    candidate = PROFILES_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        names = available_profiles()
        close = difflib.get_close_matches(str(name_or_path), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown profile {str(name_or_path)!r}; bundled profiles: {names}.{hint}")
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
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def load_profile(name_or_path: str | os.PathLike = "demo",
                 overrides: Iterable[str] | Mapping[str, Any] | None = None) -> dict:
    """Load a profile (bundled name or YAML path), resolve ``base:`` and apply overrides."""
    path = _profile_path(name_or_path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"profile {path} must be a YAML mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    cfg = deep_merge(load_profile(base), data) if base else data
    for k, v in parse_overrides(overrides).items():
        set_by_path(cfg, k, v)
    cfg.setdefault("name", Path(path).stem)
    return cfg


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
