"""Train a kit NR-IQA model: ``train_iqa(arch, cfg, run_dir)``.

Read top to bottom: config -> data -> model -> loop -> evaluation -> checkpoint. :func:`train_iqa`
is the sequence of its steps: :func:`_initialise` (``init_from``), :func:`_load_sets`, :func:`_resume`,
:func:`_train_loop` (one :func:`_train_step` per batch), :func:`_run_metrics`, :func:`_save_run`.

Why this loop stays beside :mod:`nriqa.train` (the generator trainer) rather than in it: it trains on
(better, worse) *pairs* of images drawn afresh from ``(seed, step)`` with a margin ranking loss plus an
L1 regression on [0, 1] targets, and ends by scoring held-out images (SRCC/PLCC/KRCC, level-order
accuracy, calibration percentiles, ``held_out_scores.npz``) and installing a kit measure; it runs on the
CPU with plain Adam and none of the generator trainer's EMA, DDP, bf16 autocast, LR schedule,
non-finite-step skipping, run lock or RNG-state checkpoints (its batches need no saved RNG state). What
it shares with :mod:`nriqa.train`: the job's thread settings (:func:`nriqa.compute.use_job_numerics`),
atomic writes and the safe loader of :mod:`nriqa.paths`, and resuming from its last checkpoint.

Labels (stated honestly):
- embedded set: pairs of images of the same source and distortion kind at different levels
  (level 0 = the pristine crop); the lower level is better — known for certain (RankIQA-style).
  Optionally an L1 term regresses the documented *pseudo-score* (``nriqa.data.iqa_sets.pseudo_score``,
  an FR ensemble vs the pristine source). Neither is an opinion score.
- published sets: pairs ordered by the (D)MOS, and L1 on the MOS mapped to [0, 1] (higher better).

Loss = rank_weight * mean(relu(margin - (s_better - s_worse))) + pseudo_weight * L1(s, target).
Adam, deterministic batches in (seed, step), a progress bar. Resumes from ``run_dir/last.pt``; when
``run_dir`` already has ``model.pt`` and ``metrics.json`` it returns the metrics without training.
With ``early_stop`` (:class:`EarlyStop`) it trains to a plateau of a validation score on a few
training sources held back from the pairs (:func:`patience_rule`), at most ``steps`` steps, and keeps
the best evaluation's weights; the curve is saved in ``last.pt`` (so a resumed run makes the same
choice) and in ``metrics.json`` (``early_stop``).
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from scipy import stats

from nriqa.compute import job_threads, use_job_numerics
from nriqa.data.iqa_sets import EMBEDDED_SETS, HALVES, IQASet, dataset_key, load_iqa_dataset
from nriqa.errors import CheckpointError, ConfigError
from nriqa.iqa.nets import TRUNK_ARCHS, build_iqa_net, known_arch
from nriqa.models import count_parameters
from nriqa.models.iqa_nets import ARCHS
from nriqa.paths import atomic_path, atomic_write_text, load_torch_file
from nriqa.progress import progress_bar
from nriqa.quality.kit import kit_dir, kit_training_data, register_kit_models

DEFAULTS = {
    "steps": 250, "batch_size": 16, "patch": 64, "lr": 1.0e-3, "margin": 0.1,
    "rank_weight": 1.0, "pseudo_weight": 1.0, "dataset": "embedded", "root": None,
    "crop": 96, "max_sources": 40, "eval_crop": 384, "ckpt_every": 50, "seed": 0,
}


def split_model(model: str) -> tuple[str, str | None]:
    """``(arch, dataset or None)`` of an ``iqa.models`` entry: ``"cnniqa@embedded-a"`` ->
    ``("cnniqa", "embedded-a")`` (the dataset canonical, :func:`nriqa.data.iqa_sets.dataset_key`);
    a bare arch ``"cnniqa"`` -> ``("cnniqa", None)`` (it trains on ``iqa.dataset``). ValueError naming the
    entry for an unknown dataset."""
    arch, at, data = str(model).partition("@")
    if not at:
        return arch, None
    try:
        return arch, dataset_key(data)
    except ValueError as err:
        raise ValueError(f"kit model {model!r}: {err}") from None


def iqa_config(cfg: dict | None, arch: str | None = None) -> dict:
    """Training config: DEFAULTS updated by ``cfg["iqa"]`` (a resolved profile) or ``cfg`` itself,
    then by ``per_arch[arch]`` of that section. ``arch`` may be an ``iqa.models`` entry
    ``<arch>@<dataset>`` (:func:`split_model`): its dataset then replaces ``iqa.dataset``."""
    cfg = dict(cfg or {})
    section = cfg.get("iqa", cfg) if isinstance(cfg.get("iqa"), dict) else cfg
    out = dict(DEFAULTS)
    out.update({k: v for k, v in section.items() if k in DEFAULTS})
    if arch is not None:   # per-architecture overrides, e.g. iqa.per_arch.wadiqam.steps
        arch, dataset = split_model(arch)
        out.update({k: v for k, v in (section.get("per_arch") or {}).get(arch, {}).items() if k in DEFAULTS})
        if dataset is not None:
            out["dataset"] = dataset
    if "seed" not in section and "seed" in cfg:
        out["seed"] = cfg["seed"]
    return out


def kit_models(cfg: dict) -> list[str]:
    """The kit measure names a resolved profile trains, one per ``iqa.models`` entry, in order:
    ``<arch>@<dataset>`` (a bare arch takes ``iqa.dataset``), e.g. ``cnniqa@embedded-a``.
    :class:`nriqa.errors.ConfigError` naming the entry for an unknown arch or dataset, or a name listed twice."""
    names = []
    for entry in list((cfg.get("iqa") or {}).get("models") or []):
        try:
            arch, _ = split_model(entry)
            if not known_arch(arch) or arch in TRUNK_ARCHS:
                raise ValueError(f"kit model {entry!r}: unknown arch {arch!r}; choose one of {list(ARCHS)} "
                                 "or 'disc-<discriminator kind>'")
            names.append(kit_name(arch, iqa_config(cfg, entry)["dataset"]))
        except ValueError as err:
            raise ConfigError(f"iqa.models: {err} (entries are <arch> or <arch>@<dataset>, e.g. "
                              "cnniqa@embedded-a)") from None
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"iqa.models names the kit model(s) {twice} twice")
    return names


def kit_set_key(cfg: dict) -> str:
    """8 hex digits naming the kit models a resolved profile trains (``iqa.models``, each entry's
    :func:`iqa_config` less its checkpoint cadence, the sources and kinds of an embedded half, and the
    job threads): the kit set they are installed in (:func:`nriqa.quality.kit.use_kit_set`), so other
    settings never replace them."""
    kit_models(cfg)   # ConfigError naming a bad entry
    models = list((cfg.get("iqa") or {}).get("models") or [])
    keyed = {"models": {a: _keyed_model(cfg, a) for a in models}, "threads": job_threads(cfg)}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _keyed_model(cfg: dict, model: str) -> dict:
    """One ``iqa.models`` entry's part of :func:`kit_set_key`."""
    c = {k: v for k, v in iqa_config(cfg, model).items() if k != "ckpt_every"}
    data = str(c["dataset"])
    half = HALVES.get(data[len("embedded-"):]) if data.startswith("embedded-") else None
    if half is not None:   # a changed split is another training set
        c["half"] = {"sources": list(half.sources), "kinds": list(half.kinds)}
    return c


# --------------------------------------------------------------------------- data

def targets_01(ds: IQASet, ref: IQASet | None = None) -> np.ndarray:
    """Scores mapped to [0, 1], higher better (pseudo-scores are already); ``ref`` fixes the range."""
    if ds.label == "pseudo":
        return ds.scores.astype(np.float64)
    base = (ref or ds).scores
    lo, hi = float(np.min(base)), float(np.max(base))
    t = (ds.scores - lo) / max(hi - lo, 1e-12)
    return t if ds.higher_better else 1.0 - t


class PairSampler:
    """Deterministic (seed, step) pairs: ``(better_idx, worse_idx)`` arrays of length B."""

    def __init__(self, ds: IQASet, targets: np.ndarray, seed: int):
        self.ds, self.t, self.seed = ds, targets, seed
        self.groups: list[np.ndarray] = []
        if ds.label == "pseudo":
            # chain per (source, kind): the pristine (level 0) joins every kind's chain
            pristine = {s: i for i, (s, k) in enumerate(zip(ds.sources, ds.kinds)) if k == "pristine"}
            chains: dict[tuple, list[int]] = {}
            for i, (s, k) in enumerate(zip(ds.sources, ds.kinds)):
                if k != "pristine":
                    chains.setdefault((s, k), [pristine[s]] if s in pristine else []).append(i)
            self.groups = [np.array(v) for v in chains.values() if len(v) >= 2]
            if not self.groups:
                raise ValueError(f"dataset {ds.name} has no (source, kind) group with two levels to rank")

    def pairs(self, step: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        better, worse = [], []
        while len(better) < batch:
            if self.groups:
                g = self.groups[rng.integers(len(self.groups))]
                i, j = rng.choice(g, 2, replace=False)
                li, lj = self.ds.levels[i], self.ds.levels[j]
                b, w = (i, j) if li < lj else (j, i)
            else:
                i, j = rng.integers(len(self.ds), size=2)
                if self.t[i] == self.t[j]:
                    continue
                b, w = (i, j) if self.t[i] > self.t[j] else (j, i)
            better.append(b)
            worse.append(w)
        return np.array(better), np.array(worse)


def _crop_pair(a: torch.Tensor, b: torch.Tensor, patch: int, rng: np.random.Generator):
    """Same-location random crop when sizes match, else independent crops; upsizes small images."""
    out = []
    loc = None
    for img in (a, b):
        h, w = img.shape[-2:]
        if min(h, w) < patch:
            img = torch.nn.functional.interpolate(img[None], scale_factor=patch / min(h, w), mode="bilinear",
                                                  align_corners=False)[0]
            h, w = img.shape[-2:]
        if loc is None or loc[2] != (h, w):
            loc = (int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1)), (h, w))
        top, left, _ = loc
        out.append(img[:, top:top + patch, left:left + patch])
    return out


def make_batch(ds: IQASet, sampler: PairSampler, step: int, batch: int, patch: int):
    better, worse = sampler.pairs(step, batch)
    rng = np.random.default_rng([sampler.seed, step, 1])
    xb, xw = [], []
    for b, w in zip(better, worse):
        pb, pw = _crop_pair(ds.image(int(b)), ds.image(int(w)), patch, rng)
        if rng.random() < 0.5:   # horizontal flip, same for both
            pb, pw = pb.flip(-1), pw.flip(-1)
        xb.append(pb)
        xw.append(pw)
    t = torch.from_numpy(sampler.t).float()
    return torch.stack(xb), torch.stack(xw), t[better], t[worse]


# --------------------------------------------------------------------------- evaluation

def _centre(img: torch.Tensor, side: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[:, top:top + side, left:left + side]


@torch.no_grad()
def predict(model: nn.Module, ds: IQASet, *, eval_crop: int = 384, batch: int = 32) -> np.ndarray:
    """Raw model scores (N,) of every image (centre-cropped to ``eval_crop`` px at most)."""
    model.eval()
    out = []
    for start in range(0, len(ds), batch):
        imgs = [_centre(ds.image(i), eval_crop) for i in range(start, min(len(ds), start + batch))]
        if len({tuple(im.shape) for im in imgs}) == 1:
            out.append(model(torch.stack(imgs)).float())
        else:
            out += [model(im[None]).float() for im in imgs]
    return torch.cat(out).numpy()


def srcc_plcc(pred: np.ndarray, target: np.ndarray) -> dict:
    """SRCC, PLCC (plain Pearson, no logistic fit) and KRCC (scipy.stats)."""
    if len(pred) < 3 or np.std(pred) == 0 or np.std(target) == 0:
        return {"srcc": float("nan"), "plcc": float("nan"), "krcc": float("nan"), "n": int(len(pred))}
    return {"srcc": float(stats.spearmanr(pred, target)[0]), "plcc": float(stats.pearsonr(pred, target)[0]),
            "krcc": float(stats.kendalltau(pred, target)[0]), "n": int(len(pred))}


def evaluate_iqa(model: nn.Module, ds: IQASet, *, ref: IQASet | None = None, eval_crop: int = 384,
                 pred: np.ndarray | None = None) -> dict:
    """Held-out metrics: overall and per distortion kind; for the embedded set also the fraction
    of (source, kind) level pairs ranked in the right order (``rank_acc``, the certain label).
    ``pred``: the model's :func:`predict` scores of ``ds`` when already computed."""
    pred = predict(model, ds, eval_crop=eval_crop) if pred is None else np.asarray(pred)
    t = targets_01(ds, ref)
    res = {"overall": srcc_plcc(pred, t), "per_kind": {}}
    kinds = sorted(set(ds.kinds) - {"pristine", "unknown"})
    for k in kinds:
        idx = np.array([i for i, kk in enumerate(ds.kinds) if kk in (k, "pristine")])
        res["per_kind"][k] = srcc_plcc(pred[idx], t[idx])
    if ds.label == "pseudo":
        sampler = PairSampler(ds, t, 0)
        good = total = 0
        for g in sampler.groups:
            lv, p = ds.levels[g], pred[g]
            for a in range(len(g)):
                for b in range(a + 1, len(g)):
                    total += 1
                    good += (p[a] > p[b]) == (lv[a] < lv[b])
        res["overall"]["rank_acc"] = good / max(total, 1)
    return res


# --------------------------------------------------------------------------- early stopping

def label_srcc(pred: np.ndarray, ds: IQASet) -> float:
    """SRCC of raw scores ``pred`` (N,) against ``ds``'s label mapped higher-better (:func:`targets_01`);
    NaN when either is constant. The default validation score of :class:`EarlyStop`."""
    return srcc_plcc(np.asarray(pred), targets_01(ds))["srcc"]


@dataclass(frozen=True)
class EarlyStop:
    """The patience rule of an IQA training (``iqa.steps`` is then the most steps it may run).

    Every ``eval_every`` steps (and at the last step) the model scores a small fixed validation set:
    every image of ``val_sources`` sources of the *training* split (:func:`validation_split`), left
    out of the training pairs, so that the held-out test set stays untouched by the choice of step.
    ``score(pred, val_set)`` turns the raw scores (N,) into one number, higher = better (default
    :func:`label_srcc`). Training stops when ``patience`` evaluations in a row were no improvement
    (:func:`patience_rule`, improvement = at least ``min_delta`` above the best so far), and the
    weights of the best evaluation are restored before the test set is scored. Step 0 (the
    initialisation) is scored for the curve but never selected: the model trains >= ``eval_every``
    steps (or ``iqa.steps``, if fewer)."""

    eval_every: int
    patience: int
    min_delta: float
    val_sources: int
    score: Callable[[np.ndarray, IQASet], float] | None = None

    def __post_init__(self):
        if self.eval_every < 1 or self.patience < 1 or self.val_sources < 1 or not self.min_delta >= 0:
            raise ValueError(f"EarlyStop needs eval_every, patience, val_sources >= 1 and min_delta >= 0, got {self}")

    def key(self) -> dict:
        """The settings as plain values (the score function by its qualified name): what keys a run folder."""
        fn = self.score or label_srcc
        return {"eval_every": int(self.eval_every), "patience": int(self.patience),
                "min_delta": float(self.min_delta), "val_sources": int(self.val_sources),
                "score": f"{fn.__module__}.{fn.__qualname__}"}


def patience_rule(scores: Sequence[float], patience: int, min_delta: float) -> tuple[int, bool]:
    """``(best, stop)`` of a sequence of validation scores (higher = better), read in order: a score
    is an improvement when it is finite, above the best so far and by at least ``min_delta`` (the
    first finite score always is); ``best`` is the index of the last improvement (-1 if none) and
    ``stop`` whether the last ``patience`` scores held none."""
    best, best_i, wait = -math.inf, -1, 0
    for i, v in enumerate(scores):
        if math.isfinite(v) and (best_i < 0 or (v > best and v - best >= min_delta)):
            best, best_i, wait = float(v), i, 0
        else:
            wait += 1
    return best_i, wait >= patience


def validation_split(ds: IQASet, n_sources: int) -> tuple[IQASet, IQASet]:
    """``(rest, validation)``: every image of ``n_sources`` sources of ``ds`` (evenly spaced over its
    sorted source ids, the same for every seed) and the images of the other sources. Fails unless
    a source is left to train on."""
    sources = sorted(set(ds.sources))
    if not 0 < n_sources < len(sources):
        raise ValueError(f"validation_split: {n_sources} validation sources of {len(sources)} leave none to "
                         "train on (or take none)")
    picked = {sources[int(i)] for i in np.linspace(0, len(sources) - 1, n_sources).round()}
    val = np.array([s in picked for s in ds.sources])
    return ds.subset(np.flatnonzero(~val)), ds.subset(np.flatnonzero(val))


class _Monitor:
    """The patience rule while training: scores the validation set, keeps the curve ``[(step, score)]``
    (step 0 first) and a copy of the best weights; :meth:`state` / :meth:`load` carry it through
    ``last.pt``."""

    def __init__(self, stop: EarlyStop, val: IQASet, eval_crop: int, max_steps: int):
        self.stop, self.val, self.eval_crop, self.max_steps = stop, val, eval_crop, max_steps
        self.curve: list[tuple[int, float]] = []
        self.best_state: dict | None = None
        self.best_step = 0
        self.stopped = False

    def due(self, step: int) -> bool:
        return step % self.stop.eval_every == 0 or step == self.max_steps

    def evaluate(self, model: nn.Module, step: int) -> bool:
        """Score the model after ``step`` steps; True when the patience rule says stop."""
        pred = predict(model, self.val, eval_crop=self.eval_crop)
        model.train()
        self.curve.append((step, float((self.stop.score or label_srcc)(pred, self.val))))
        trained = [(s, v) for s, v in self.curve if s > 0]
        if not trained:
            return False
        best, stop = patience_rule([v for _, v in trained], self.stop.patience, self.stop.min_delta)
        if best >= 0 and trained[best][0] == step:
            self.best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            self.best_step = step
        self.stopped = stop
        return stop

    def state(self) -> dict:
        return {"curve": self.curve, "best_state": self.best_state, "best_step": self.best_step}

    def load(self, state: dict | None) -> None:
        if state:
            self.curve = [(int(s), float(v)) for s, v in state["curve"]]
            self.best_state, self.best_step = state["best_state"], int(state["best_step"])

    def summary(self, steps_run: int) -> dict:
        """What ``metrics.json`` records: the settings, the curve, the selected step and why training ended."""
        return {**self.stop.key(), "max_steps": self.max_steps, "val_images": len(self.val),
                "curve": [{"step": s, "score": v} for s, v in self.curve], "best_step": self.best_step,
                "steps_run": steps_run, "stopped": "plateau" if self.stopped else "max_steps"}


# --------------------------------------------------------------------------- init_from

def _state_dict_of(obj) -> dict:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, (str, Path)):
        obj = load_torch_file(obj)
    # a trainer checkpoint holds the generator's "params" too: its discriminator comes first
    for key in ("discriminator", "params_ema", "params", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return obj[key]
    if isinstance(obj, dict):
        return obj
    raise ValueError(f"init_from must be an nn.Module, a state dict or a path to one, got {type(obj).__name__}")


MIN_BACKBONE_FRACTION = 0.95


def init_target(model: nn.Module) -> tuple[nn.Module, list[str] | None]:
    """The module an init is loaded into (a discriminator-initialised model's discriminator) and the
    state-dict keys of it that an init must fill (its backbone), or None when any match will do."""
    target = model.discriminator if hasattr(model, "discriminator") else model
    keys = model.backbone_keys() if hasattr(model, "backbone_keys") else None
    return target, keys


def load_init(model: nn.Module, init_from, *, min_fraction: float = MIN_BACKBONE_FRACTION) -> int:
    """Copy matching tensors (same key and shape) from ``init_from`` into ``model``; returns the count.

    A model with a backbone (``disc-<kind>``, ST-LPIPS trunk heads) must get at least
    ``min_fraction`` of its backbone tensors, else :class:`nriqa.errors.CheckpointError` names the
    missing and mis-shaped ones (build the IQA model at the discriminator's own size and options)."""
    src = _state_dict_of(init_from)
    target, required = init_target(model)
    own = target.state_dict()
    matched = {k: v for k, v in src.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if required:
        got = [k for k in required if k in matched]
        if len(got) < min_fraction * len(required):
            missing = [k for k in required if k not in src]
            shaped = [f"{k} {tuple(src[k].shape)} vs {tuple(own[k].shape)}" for k in required
                      if k in src and k not in matched]
            raise CheckpointError(
                f"init_from fills {len(got)} of the {len(required)} backbone tensors of the "
                f"{type(model).__name__} model ({len(got) / len(required):.0%}; at least {min_fraction:.0%} "
                f"needed): missing {missing[:4]}{' ...' if len(missing) > 4 else ''}, shape differs "
                f"{shaped[:4]}{' ...' if len(shaped) > 4 else ''}. Build the IQA model with the "
                "discriminator's own size and options (arch_options).")
    if not matched:
        raise ValueError(f"init_from shares no tensor (key and shape) with the {type(target).__name__} model")
    target.load_state_dict(matched, strict=False)
    return len(matched)


# --------------------------------------------------------------------------- training

def kit_name(arch: str, dataset: str) -> str:
    """The kit measure name of ``arch`` trained on ``dataset``: ``<arch>@<canonical dataset>``
    (:func:`nriqa.data.iqa_sets.dataset_key`; ``cnniqa@embedded-a``, ``dbcnn@kadid10k``)."""
    try:
        return f"{arch}@{dataset_key(dataset)}"
    except ValueError:
        return f"{arch}@{dataset.lower().replace('-', '').replace('_', '')}"


def iqa_run_is_done(run_dir: str | Path) -> bool:
    """Whether :func:`train_iqa` finished in ``run_dir`` (it then returns the saved metrics)."""
    return (Path(run_dir) / "model.pt").exists() and (Path(run_dir) / "metrics.json").exists()


def train_iqa(arch: str, cfg: dict | None, run_dir: str | Path, *, init_from=None, progress: bool = True,
              install: bool = True, data: tuple[IQASet, IQASet] | None = None,
              arch_options: dict | None = None, early_stop: EarlyStop | None = None) -> dict:
    """Train NR-IQA ``arch`` and return its held-out metrics dict.

    ``arch``: an architecture, or an ``iqa.models`` entry ``<arch>@<dataset>`` (e.g. ``cnniqa@embedded-a``:
    the dataset then replaces ``iqa.dataset``, :func:`iqa_config`).
    ``cfg``: a resolved profile (its ``iqa`` section is used) or the section itself; keys in
    :data:`DEFAULTS`. Writes ``run_dir/{model.pt, metrics.json, last.pt}`` and the held-out scores
    (:func:`save_held_out_scores`); with ``install`` the
    final checkpoint is also copied to ``weights_dir()/kit/<arch>@<dataset>.pt`` (what
    :func:`nriqa.quality.register_kit_models` registers). A model trained on an embedded half is also
    scored on the other half's kinds of the held-out sources (``metrics["held_out_other_half"]``: how it
    judges distortion kinds it never saw)). ``init_from``: an nn.Module (e.g. a trained
    discriminator), a state dict or a path to one; matching tensors initialise the model (a backbone
    model needs >= 95 % of its backbone tensors, see :func:`load_init`). ``arch_options``: build
    options of ``disc-<kind>`` (the discriminator's ``size`` and overrides).
    ``data``: an explicit ``(train_set, test_set)`` pair instead of ``cfg["dataset"]``.
    ``early_stop``: train to a plateau of a validation score (:class:`EarlyStop`, at most ``steps``
    steps) and keep the best weights; ``metrics["early_stop"]`` then holds the curve and the steps run.
    """
    c = iqa_config(cfg, arch)
    arch = split_model(arch)[0]
    _check_arch(arch, install)
    arch_options = dict(arch_options or {})
    run_dir = Path(run_dir)
    if iqa_run_is_done(run_dir):
        return _finished_run(run_dir, install)

    use_job_numerics(cfg or {})  # the profile's threads (a bare iqa section: the default), never the load
    torch.manual_seed(int(c["seed"]))
    model = build_iqa_net(arch, **arch_options)
    init = _initialise(model, init_from)
    train_set, test_set = data if data is not None else _load_sets(c, progress)
    monitor = None
    if early_stop is not None:
        train_set, val_set = validation_split(train_set, int(early_stop.val_sources))
        monitor = _Monitor(early_stop, val_set, int(c["eval_crop"]), int(c["steps"]))
    sampler = PairSampler(train_set, targets_01(train_set), int(c["seed"]))
    opt = torch.optim.Adam(model.parameters(), lr=float(c["lr"]))
    start = _resume(run_dir / "last.pt", model, opt, monitor)
    trained = _train_loop(model, opt, train_set, sampler, c, start, run_dir / "last.pt", arch, progress, monitor)
    if monitor is not None and monitor.best_state is not None:
        model.load_state_dict(monitor.best_state)

    test_pred = predict(model, test_set, eval_crop=int(c["eval_crop"]))
    metrics = _run_metrics(arch, c, model, train_set, test_set, test_pred, trained, init, arch_options)
    if monitor is not None:
        metrics["early_stop"] = monitor.summary(trained.step)
    if data is None and str(c["dataset"]) in EMBEDDED_SETS[1:]:
        metrics["held_out_other_half"] = _other_half_metrics(model, c, progress)
    _save_run(run_dir, model, metrics, trained.history, test_pred, test_set)
    if install:
        _install(run_dir / "model.pt", metrics["name"])
    return metrics


def _check_arch(arch: str, install: bool) -> None:
    """Fail before any work on an unknown arch, or on one that cannot be installed as a kit measure."""
    if not known_arch(arch):
        raise ValueError(f"unknown IQA arch {arch!r}; choose one of {list(ARCHS)}, {list(TRUNK_ARCHS)} "
                         "or 'disc-<discriminator kind>'")
    if install and arch in TRUNK_ARCHS:   # nriqa.quality.kit rebuilds kit archs from nriqa.models only
        raise ValueError(f"IQA arch {arch!r} cannot be installed as a kit measure; train it with install=False")


def _finished_run(run_dir: Path, install: bool) -> dict:
    """The saved metrics of a finished run (its checkpoint installed again with ``install``)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if install:
        _install(run_dir / "model.pt", metrics["name"])
    return metrics


@dataclass
class _Init:
    """What ``init_from`` put into the model: tensors loaded, backbone tensors loaded, backbone size."""
    loaded: int = 0
    backbone_loaded: int = 0
    backbone: int = 0


def _initialise(model: nn.Module, init_from) -> _Init:
    """Load ``init_from`` (if any) into ``model`` (:func:`load_init`) and count what it filled."""
    target, required = init_target(model)
    init = _Init(backbone=len(required or []))
    if init_from is not None:
        init_from = _state_dict_of(init_from)
        init.loaded = load_init(model, init_from)
        own = target.state_dict()
        init.backbone_loaded = sum(k in init_from and tuple(init_from[k].shape) == tuple(own[k].shape)
                                   for k in required or [])
    return init


def _load_sets(c: dict, progress: bool) -> tuple[IQASet, IQASet]:
    """``(train_set, test_set)`` of ``c["dataset"]`` (the embedded set and its halves: built at ``crop``
    from ``max_sources`` pristine frames per split)."""
    kw = {"crop": c["crop"], "max_sources": c["max_sources"], "progress": progress} \
        if _embedded(c["dataset"]) else {}
    train_set = load_iqa_dataset(c["dataset"], c["root"], "train", **kw)
    return train_set, load_iqa_dataset(c["dataset"], c["root"], "test", **kw)


def _embedded(dataset: str) -> bool:
    """Whether ``dataset`` names the embedded distortion set or one of its halves."""
    try:
        return dataset_key(dataset) in EMBEDDED_SETS
    except ValueError:
        return False


def _other_half_metrics(model: nn.Module, c: dict, progress: bool) -> dict:
    """:func:`evaluate_iqa` of ``model`` (trained on embedded half ``c["dataset"]``) on the held-out
    sources distorted by the *other* half's kinds: its accuracy on kinds it was never trained on."""
    other = next(h for h in HALVES if f"embedded-{h}" != c["dataset"])
    test = load_iqa_dataset(f"embedded-{other}", None, "test", crop=c["crop"], max_sources=c["max_sources"],
                            progress=progress)
    out = evaluate_iqa(model, test, eval_crop=int(c["eval_crop"]))
    out["dataset"] = f"embedded-{other} (held-out sources)"
    return out


@dataclass
class _Progress:
    """Where training stands: the next step, the per-step history and the seconds (wall, CPU) spent so far."""
    step: int = 0
    history: list = field(default_factory=list)
    elapsed: float = 0.0
    cpu_elapsed: float = 0.0


def _resume(last: Path, model: nn.Module, opt: torch.optim.Optimizer, monitor: _Monitor | None = None) -> _Progress:
    """The progress saved in ``last`` (model, optimizer and early-stop state loaded back), or a fresh start."""
    if not last.exists():
        return _Progress()
    state = load_torch_file(last)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if monitor is not None:
        monitor.load(state.get("early_stop"))
    return _Progress(state["step"], state["history"], state["elapsed"], state.get("cpu_elapsed", 0.0))


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, ds: IQASet, sampler: PairSampler, step: int,
                c: dict) -> dict:
    """One update on the batch of ``step``: margin ranking loss on (better, worse) pairs + L1 on their targets."""
    xb, xw, tb, tw = make_batch(ds, sampler, step, int(c["batch_size"]), int(c["patch"]))
    s = model(torch.cat([xb, xw]))
    sb, sw = s[: len(xb)], s[len(xb):]
    rank = torch.relu(float(c["margin"]) - (sb - sw)).mean()
    l1 = (s - torch.cat([tb, tw])).abs().mean()
    loss = float(c["rank_weight"]) * rank + float(c["pseudo_weight"]) * l1
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"step": step + 1, "loss": loss.item(), "rank": rank.item(), "l1": l1.item()}


def _train_loop(model: nn.Module, opt: torch.optim.Optimizer, ds: IQASet, sampler: PairSampler, c: dict,
                done: _Progress, last: Path, arch: str, progress: bool, monitor: _Monitor | None = None) -> _Progress:
    """Train from ``done.step`` to ``c["steps"]`` (or until ``monitor``'s patience rule stops it, scoring
    step 0 first on a fresh start), saving ``last`` every ``ckpt_every`` steps (not after the final one);
    returns the progress at the end (steps run, history, total wall and CPU seconds)."""
    steps, history, at = int(c["steps"]), done.history, done.step
    t0, c0 = time.perf_counter(), time.process_time()
    model.train()
    if monitor is not None and not monitor.curve:
        monitor.evaluate(model, done.step)
    bar = progress_bar(range(done.step, steps), desc=f"train-iqa {arch}", disable=not progress, initial=done.step,
                       total=steps, unit="step")
    for step in bar:
        history.append(_train_step(model, opt, ds, sampler, step, c))
        at = step + 1
        bar.set_postfix(rank=f"{history[-1]['rank']:.3f}", l1=f"{history[-1]['l1']:.3f}")
        if monitor is not None and monitor.due(at) and monitor.evaluate(model, at):
            break
        if at % int(c["ckpt_every"]) == 0 and at < steps:
            with atomic_path(last) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": at,
                            "history": history, "elapsed": done.elapsed + time.perf_counter() - t0,
                            "cpu_elapsed": done.cpu_elapsed + time.process_time() - c0,
                            "early_stop": monitor.state() if monitor is not None else None}, tmp)
    return _Progress(at, history, done.elapsed + time.perf_counter() - t0,
                     done.cpu_elapsed + time.process_time() - c0)


def _run_metrics(arch: str, c: dict, model: nn.Module, train_set: IQASet, test_set: IQASet, test_pred: np.ndarray,
                 trained: _Progress, init: _Init, arch_options: dict) -> dict:
    """The run's metrics: held-out scores (:func:`evaluate_iqa` on ``test_pred``), the calibration
    percentiles of the training set's scores, the training's size, time and losses, and the config."""
    held_out = evaluate_iqa(model, test_set, ref=train_set, eval_crop=int(c["eval_crop"]), pred=test_pred)
    train_pred = predict(model, train_set, eval_crop=int(c["eval_crop"]))
    p5, p50, p95 = (float(v) for v in np.percentile(train_pred, [5, 50, 95]))
    history = trained.history
    return {
        "name": kit_name(arch, c["dataset"]), "arch": arch, "dataset": c["dataset"], "label": train_set.label,
        "training_data": list(kit_training_data(c["dataset"])),
        "params": count_parameters(model), "train_seconds": round(trained.elapsed, 2),
        "train_cpu_seconds": round(trained.cpu_elapsed, 2), "torch_threads": torch.get_num_threads(),
        "steps": int(trained.step), "n_train": len(train_set), "n_test": len(test_set),
        "init_loaded_tensors": init.loaded, "backbone_tensors": init.backbone,
        "backbone_loaded": init.backbone_loaded, "arch_options": arch_options,
        "first_rank_loss": float(np.mean([h["rank"] for h in history[:10]])) if history else None,
        "last_rank_loss": float(np.mean([h["rank"] for h in history[-10:]])) if history else None,
        "calibration": {"p5": p5, "p50": p50, "p95": p95},
        "held_out": held_out, "config": c,
    }


def _save_run(run_dir: Path, model: nn.Module, metrics: dict, history: list, test_pred: np.ndarray,
              test_set: IQASet) -> None:
    """Write ``model.pt`` (arch, options, weights, calibration, metrics), the held-out scores,
    ``history.jsonl`` and ``metrics.json``, then remove the resume file ``last.pt``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save({"arch": metrics["arch"], "arch_options": metrics["arch_options"], "state_dict": model.state_dict(),
                    "calibration": metrics["calibration"], "name": metrics["name"], "label": metrics["label"],
                    "metrics": {k: v for k, v in metrics.items() if k != "config"}}, tmp)
    save_held_out_scores(run_dir, test_pred, test_set)
    atomic_write_text(run_dir / "history.jsonl", "\n".join(json.dumps(h) for h in history) + "\n")
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    if (run_dir / "last.pt").exists():
        (run_dir / "last.pt").unlink()


HELD_OUT_SCORES = "held_out_scores.npz"


def save_held_out_scores(run_dir: Path, pred: np.ndarray, ds: IQASet) -> Path:
    """Write ``run_dir/held_out_scores.npz``: the model's raw scores of the held-out set (higher =
    better) with each image's ``sources``, ``kinds``, ``levels`` and the set's ``label``, so that
    other labels (e.g. the level order, :func:`nriqa.analysis.asymmetry.level_order_srcc`) can be
    scored later without predicting again."""
    path = Path(run_dir) / HELD_OUT_SCORES
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, scores=np.asarray(pred, np.float64), sources=np.asarray(ds.sources, str),
                 kinds=np.asarray(ds.kinds, str), levels=np.asarray(ds.levels, np.int64), label=np.asarray(ds.label))
    return path


def load_held_out_scores(run_dir: str | Path) -> dict | None:
    """What :func:`save_held_out_scores` wrote (``scores``, ``sources``, ``kinds``, ``levels``
    arrays and ``label``), or None when the run folder has no such file (trained before it existed)."""
    path = Path(run_dir) / HELD_OUT_SCORES
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in ("scores", "sources", "kinds", "levels")}
        out["label"] = str(z["label"])
    return out


def _install(final: Path, name: str) -> Path:
    """Copy a run's checkpoint to ``weights_dir()/kit/<name>.pt`` (atomically) and register it."""
    target = kit_dir() / f"{name}.pt"
    with atomic_path(target) as tmp:
        shutil.copyfile(final, tmp)
    register_kit_models()
    return target
