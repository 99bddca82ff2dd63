"""Build the training sampler and the test set from a profile's ``data`` section.

Keys read (``nriqa/profiles/demo.yaml``): ``source`` (embedded | vimeo90k | reds | vid4), ``root``,
``degradation``, ``scale``, ``num_frames``, ``lr_patch``, ``batch_size``, ``test_max_frames``,
``test_max_side``; optional ``max_clips`` / ``max_frames`` (bound a folder dataset's training
clips), ``preload`` (folder training clips are read from disk window by window unless true),
``test_max_clips`` and ``eval_sets`` (list of ``{source, root[, name]}`` for
:func:`build_test_sets`). A folder dataset's root comes from ``root`` or the environment variable
``NRIQA_VIMEO90K`` / ``NRIQA_REDS`` / ``NRIQA_VID4``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nriqa.data.embedded import embedded_clips
from nriqa.data.folders import DATASETS, FolderDataset, open_dataset
from nriqa.data.sampler import TrainSampler, test_clips
from nriqa.errors import ConfigError

SOURCES = ("embedded", *DATASETS)


def dataset_root(source: str, root: str | os.PathLike | None = None) -> Path | None:
    """``root`` if given, else ``$NRIQA_<SOURCE>`` (e.g. ``NRIQA_REDS``), else ``None``."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get(f"NRIQA_{source.upper()}")
    return Path(env).expanduser() if env else None


def _source(cfg: Mapping) -> str:
    source = str(cfg.get("source", "embedded")).lower()
    if source not in SOURCES:
        raise ConfigError(f"data.source must be one of {SOURCES}, got {cfg.get('source')!r}")
    return source


def _folder(source: str, cfg: Mapping) -> FolderDataset:
    root = dataset_root(source, cfg.get("root"))
    if root is None:
        raise ConfigError(f"data.source={source!r} needs data.root (or ${'NRIQA_' + source.upper()}) "
                          f"pointing at the dataset folder")
    return open_dataset(source, root, scale=int(cfg.get("scale", 4)))


def build_train_sampler(data_cfg: Mapping, seed: int = 0) -> TrainSampler:
    """The :class:`TrainSampler` a profile's ``data`` section describes (training split of its source)."""
    source = _source(data_cfg)
    degradation = str(data_cfg.get("degradation", "BI"))
    if source == "embedded":
        clips = embedded_clips("train")
    elif source == "vid4":
        raise ValueError("data.source='vid4' is a test set only; train on embedded, vimeo90k or reds")
    else:
        clips = _folder(source, data_cfg).clips("train", degradation=degradation, max_clips=data_cfg.get("max_clips"),
                                                max_frames=data_cfg.get("max_frames"),
                                                lazy=not data_cfg.get("preload", False), progress=True)
    return TrainSampler(clips, scale=int(data_cfg.get("scale", 4)), num_frames=int(data_cfg.get("num_frames", 5)),
                        lr_patch=int(data_cfg.get("lr_patch", 32)), batch_size=int(data_cfg.get("batch_size", 4)),
                        degradation=degradation, seed=seed)


def build_test_set(data_cfg: Mapping) -> list[dict]:
    """Test dicts ``{"name", "source", "lr": (1,T,3,h,w), "hr": (1,T,3,4h,4w), ...}`` of the profile's source."""
    source = _source(data_cfg)
    kw = {"degradation": str(data_cfg.get("degradation", "BI")), "max_frames": data_cfg.get("test_max_frames"),
          "max_side": data_cfg.get("test_max_side")}
    if source == "embedded":
        clips = _round_robin(embedded_clips("test"), data_cfg.get("test_max_clips"))
        return test_clips(clips, scale=int(data_cfg.get("scale", 4)), **kw)
    return _folder(source, data_cfg).test_set(max_clips=data_cfg.get("test_max_clips"), **kw)


def _round_robin(clips: list, k: int | None) -> list:
    """Up to ``k`` clips taken in turn from each source (in order), so a small test set still
    covers every test source; ``None`` keeps all."""
    if k is None:
        return list(clips)
    by_source: dict[str, list] = {}
    for c in clips:
        by_source.setdefault(c.source, []).append(c)
    out: list = []
    depth = 0
    while len(out) < k and any(depth < len(v) for v in by_source.values()):
        out += [v[depth] for v in by_source.values() if depth < len(v)][: k - len(out)]
        depth += 1
    return out


def build_test_sets(data_cfg: Mapping) -> dict[str, list[dict]]:
    """``{dataset name: test dicts}`` for every entry of ``data.eval_sets`` (default: the profile's source).

    An entry is ``{source, root}`` and optionally ``name`` (the dataset name; default: the source)
    and any other ``data`` key it sets for itself (e.g. ``test_max_clips``)."""
    sets = data_cfg.get("eval_sets") or [{"source": data_cfg.get("source", "embedded"), "root": data_cfg.get("root")}]
    out = {}
    for entry in sets:
        if not isinstance(entry, Mapping):
            raise ConfigError(f"data.eval_sets entries are mappings {{source, root, name}}, got {entry!r}")
        cfg = {**data_cfg, **{k: v for k, v in entry.items() if k != "name"}}
        name = str(entry.get("name") or _source(cfg))
        if name in out:
            raise ConfigError(f"data.eval_sets names the dataset {name!r} twice: give the entries distinct names")
        out[name] = build_test_set(cfg)
    return out
