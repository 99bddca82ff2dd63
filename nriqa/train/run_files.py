"""Run folders: ``config.yaml``, ``checkpoints/``, ``log.jsonl``, ``done.json``.

Readers for the notebooks: :func:`run_is_done`, :func:`read_log` (the generator itself:
:func:`nriqa.train.generators.load_generator`).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from nriqa.compute import job_threads
from nriqa.errors import ConfigError

from .train_config import TrainConfig

CONFIG_FILE = "config.yaml"
LOG_FILE = "log.jsonl"
DONE_FILE = "done.json"


#: a loss term kit-trained on the embedded distortion set (whole, or half a / b): the ``iqa`` section trains it
_EMBEDDED_KIT = re.compile(r"@embedded(-[a-z])?$", re.IGNORECASE)


def config_hash(cfg: Mapping[str, Any]) -> str:
    """Short stable hash of a resolved config (key order does not matter)."""
    text = json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


#: the config sections that decide what a run trains (other profile sections, e.g. the panel, do not)
TRAINING_KEYS = ("train", "data", "model", "model_size", "seed", "spynet_weights")

#: ``train`` knobs that do not change the trained weights: logging, checkpoint cadence, TensorBoard,
#: the non-finite guard's patience (it stops a run, it never changes one that finishes) and the
#: per-term gradient-norm probe (it reads gradients, it does not write them)
UNKEYED_TRAIN = ("log_every", "gradnorm_every", "ckpt_every", "keep_last", "tensorboard", "max_nonfinite")
#: ``data`` keys that only shape evaluation or loading, not the training batches
UNKEYED_DATA = ("test_max_frames", "test_max_clips", "test_max_side", "preload", "eval_sets")


def keyed_config(cfg: Mapping[str, Any], init_from: str | Path | None = None) -> dict:
    """Everything that changes what a run trains, as plain data (the input of :func:`run_key`).

    Keys: ``model``, ``model_size``, ``seed``, ``train`` (every :class:`~.config.TrainConfig` knob
    with its default filled in, the objective, optimizer, schedule and EMA included, less
    :data:`UNKEYED_TRAIN`), ``data`` (less :data:`UNKEYED_DATA`), ``weights`` (the profile's
    balancing knobs, only when the objective balances online), ``iqa`` (only when a loss term is a
    model kit-trained on the embedded distortion set, ``<arch>@embedded`` or a half of it
    ``<arch>@embedded-a`` / ``-b``, whose weights that section trains) and ``init_from``
    (the baseline's folder name, which holds the baseline's own run key). Left out on purpose: ``device`` (a run
    trained on CUDA is reused on the CPU: the same experiment, other float rounding), ``run_root``,
    the profile name and the notebooks' sections (panel, ...). ``threads`` (the job's torch threads,
    :func:`nriqa.compute.job_threads`) is keyed: float sums split over other threads round otherwise."""
    name, size = model_name(cfg)
    train = {k: v for k, v in asdict(TrainConfig.from_cfg(cfg)).items() if k not in UNKEYED_TRAIN}
    out: dict[str, Any] = {"model": name, "model_size": size, "seed": int(cfg.get("seed", 0)), "train": train,
                           "threads": job_threads(cfg),
                           "data": {k: v for k, v in dict(cfg.get("data") or {}).items() if k not in UNKEYED_DATA}}
    objective = dict(train.get("objective") or {})
    if objective.get("weights") not in (None, "fixed") and isinstance(cfg.get("weights"), Mapping):
        out["weights"] = {k: cfg["weights"].get(k) for k in ("reference", "target_share", "balance_every")}
    if any(_EMBEDDED_KIT.search(str(k)) for k in objective) and cfg.get("iqa") is not None:
        out["iqa"] = cfg["iqa"]
    if cfg.get("released"):   # a baseline imported from the kit's release file (its name and sha256)
        out["released"] = dict(cfg["released"])
    if init_from is not None:  # the folder's name, whether or not it is trained yet (a sweep plans
        out["init_from"] = Path(init_from).name  # fine-tunes before their baseline exists)
    return json.loads(json.dumps(out, sort_keys=True, default=str))  # tuples -> lists, as config.yaml gives back


def run_key(cfg: Mapping[str, Any], init_from: str | Path | None = None) -> str:
    """8 hex digits naming what a run trains (:func:`keyed_config`): equal keys, equal results."""
    text = json.dumps(keyed_config(cfg, init_from), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """Those of ``keys`` whose values differ between two configs, compared as JSON the way
    :func:`config_hash` sees them (so a tuple equals the list that ``config.yaml`` gives back)."""
    def text(v: Any) -> str:
        return json.dumps(v, sort_keys=True, default=str)

    return [k for k in keys if text(old.get(k)) != text(new.get(k))]


def keyed_changes(saved: Mapping[str, Any], cfg: Mapping[str, Any], init_from: str | Path | None = None) -> list[str]:
    """Sections of :func:`keyed_config` that differ between a run folder's saved ``config.yaml``
    (its ``keyed`` entry) and ``cfg``; falls back to :func:`training_changes` for a folder written
    before run keys existed."""
    if "keyed" not in saved:
        return training_changes(saved, cfg)
    new = keyed_config(cfg, init_from)
    return config_changes(saved["keyed"], new, sorted(set(saved["keyed"]) | set(new)))


def training_changes(saved: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """Names of the training-relevant sections (``TRAINING_KEYS``) that differ between a run's
    saved config and ``cfg`` (``model``/``model_size`` are compared only where ``cfg`` sets them)."""
    return config_changes(saved, cfg, [k for k in TRAINING_KEYS if k in cfg or k not in ("model", "model_size")])


def run_is_done(run_dir: str | Path) -> bool:
    """True when the run finished (``done.json`` exists)."""
    return (Path(run_dir) / DONE_FILE).exists()


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a training run folder")
    return yaml.safe_load(path.read_text())


def read_log_rows(run_dir: str | Path) -> list[dict]:
    """Rows of ``log.jsonl``; a torn last line (a crash mid-write) is ignored."""
    path = Path(run_dir) / LOG_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def read_log(run_dir: str | Path):
    """``log.jsonl`` as a pandas DataFrame, one row per log interval, sorted by ``step``.

    Columns: ``step``, ``total``, ``loss/<term>``, ``gradnorm/<term>`` (unweighted term's gradient
    norm w.r.t. the generator parameters; NaN on rows where it was not measured),
    ``weight/<term>``, ``lr``, ``lr_flow``, ``grad_norm`` (total, before clipping),
    ``frames_per_s``, ``peak_mem_mb``, ``nonfinite`` (skipped steps in the interval), and
    ``d_loss`` for adversarial runs.
    """
    import pandas as pd  # here, not at the top: pandas costs ~1 s to import and training never needs it

    rows = read_log_rows(run_dir)
    df = pd.DataFrame(rows)
    if "step" in df:
        df = df.sort_values("step").reset_index(drop=True)
    return df


def model_name(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """``(model, model_size)`` a config names: ``cfg["model"]`` (else ``cfg["models"][0]``), size ``tiny`` by
    default."""
    name = cfg.get("model") or (cfg.get("models") or [None])[0]
    if not name:
        raise ConfigError("config names no generator: set cfg['model'] (or cfg['models'][0])")
    return str(name), str(cfg.get("model_size", "tiny"))
