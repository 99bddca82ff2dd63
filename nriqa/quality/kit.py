"""Kit-trained NR-IQA checkpoints as quality measures (``cnniqa@embedded-a``, ``vitiqa@embedded-b`` ...).

The name says what a model was trained on: ``<arch>@embedded-a`` / ``<arch>@embedded-b`` on one half of the
embedded distortion set (:data:`nriqa.data.iqa_sets.HALVES`: disjoint sources and distortion kinds; half
``a`` for kit models used as loss terms, half ``b`` for the kit models that judge them),
``<arch>@embedded`` on the whole set, ``<arch>@<dataset>`` on a published IQA set. The card's
``training_data`` (:func:`kit_training_data`) lists it, so that the study can refuse a judge that
shares training data with a loss term it judges (:func:`nriqa.study.verdicts.check_independent_judges`).

A checkpoint ``weights_dir()/kit/<set>/<arch>@<dataset>.pt`` (written by ``train_iqa``) holds the
network's ``state_dict``, its ``arch`` and a *calibration* of raw training-set scores
(5th / 50th / 95th percentiles). The registered measure returns a calibrated score in (0, 1),
higher = better:

    s = sigmoid(4 * (raw - p50) / (p95 - p5))

so the middle of the training distribution maps to 0.5 and its 5..95 % span to about
0.12..0.88. The card's ``score_range`` is (0, 1), hence ``nriqa.quality.to_loss`` gives
``1 - s`` (lower-better, in (0, 1), differentiable).

The networks are :mod:`nriqa.models.iqa_nets`; :func:`nriqa.iqa.train_iqa` trains them and
installs the checkpoints. :func:`register_kit_models` registers every checkpoint of the active
set; the registry calls it when it is asked for an ``<arch>@<dataset>`` name it does not know.

**Kit sets.** Models trained with other settings are other models: the study keys them by their
training config (``nriqa.iqa.iqa_training.kit_set_key``: the ``iqa`` section per arch and the threads) and
installs them in ``kit/<key>/``; :func:`use_kit_set` makes a set the active one (``$NRIQA_KIT_SET``,
inherited by worker processes). So a smoke run never replaces the demo's models, and a card names
its set. Without an active set, ``kit/`` itself holds the models (``nriqa train-iqa`` without a profile).
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from nriqa.errors import CheckpointError, brief_error
from nriqa.models.iqa_nets import MIN_SIZE, build_arch
from nriqa.paths import load_torch_file, weights_dir
from nriqa.quality.base import Card, WeightFile, register, unregister_where

_ARCH_TEXT = {
    "cnniqa": "CNNIQA (pyiqa arch, random init)",
    "wadiqam": "WaDIQaM-NR (pyiqa arch, random init)",
    "dbcnn": "compact DBCNN-style bilinear CNN (kit arch; pyiqa's DBCNN needs downloaded backbones)",
    "vitiqa": "small ViT (kit arch, random init)",
}


KIT_SET_ENV = "NRIQA_KIT_SET"


def active_kit_set() -> str | None:
    """The kit set whose models are registered (``$NRIQA_KIT_SET``), None for ``kit/`` itself."""
    return os.environ.get(KIT_SET_ENV, "").strip() or None


def kit_dir() -> Path:
    """``weights_dir()/kit/<active set>`` (``weights_dir()/kit`` without one)."""
    key = active_kit_set()
    return weights_dir() / "kit" / key if key else weights_dir() / "kit"


def use_kit_set(key: str | None) -> list[str]:
    """Make ``key`` the active kit set (None: ``kit/`` itself): the kit measures registered from
    another set are dropped and this set's are registered (returned). Sets ``$NRIQA_KIT_SET``, so
    processes started afterwards (pool workers, notebook kernels) use the same set."""
    if key is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", str(key)):
        raise ValueError(f"kit set {key!r}: letters, digits, '_', '.', '-' only")
    if key == active_kit_set():
        return register_kit_models()
    if key is None:
        os.environ.pop(KIT_SET_ENV, None)
    else:
        os.environ[KIT_SET_ENV] = str(key)
    return register_kit_models()


class KitIQA(nn.Module):
    """A trained kit network plus its calibration: (N, 3, H, W) in [0, 1] -> (N,) in (0, 1), higher better."""

    def __init__(self, net: nn.Module, calibration: dict):
        super().__init__()
        self.net = net
        self.p50 = float(calibration["p50"])
        self.scale = max(float(calibration["p95"]) - float(calibration["p5"]), 1e-6) / 4.0

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim == 5:
            x = x.flatten(0, 1)
        return torch.sigmoid((self.net(x) - self.p50) / self.scale)


class KitCheckpointError(CheckpointError):
    """A kit IQA checkpoint on disk cannot be loaded (truncated, not a checkpoint, wrong keys or
    weights). The message names the file and how to recreate it; nothing rebuilds it implicitly."""



def _train_command(name: str) -> str:
    """The ``train-iqa`` command that trains kit model ``name`` (``<arch>@<dataset>``) for the demo profile."""
    arch, _, dataset = name.partition("@")
    if dataset.startswith("embedded-"):
        return f"python -m nriqa train-iqa {name} --profile demo"
    data = "" if dataset in ("", "embedded") else f" --dataset {dataset} --root <its folder>"
    return f"python -m nriqa train-iqa {arch} --profile demo{data}"


def recreate_hint(path: Path) -> str:
    """How to recreate the kit checkpoint at ``path`` (``<arch>@<dataset>.pt``)."""
    name = Path(path).stem
    return (f"delete it and run `{_train_command(name)}` (with the profile it "
            f"was trained with): that reinstalls the checkpoint from its run folder runs/<profile>/iqa/{name}-<set>/, "
            "or trains it again when that folder is gone (delete the folder too if its model.pt is broken)")


def _read_checkpoint(path: Path) -> dict:
    """The checkpoint dict at ``path``; KitCheckpointError naming the file and the fix when unreadable."""
    try:
        ckpt = load_torch_file(path)
    except Exception as err:  # RuntimeError (bad zip), UnpicklingError, EOFError, OSError, ...
        raise KitCheckpointError(f"kit IQA checkpoint {path} is unreadable ({brief_error(err)}); "
                                 f"{recreate_hint(path)}") from err
    if not isinstance(ckpt, dict):
        raise KitCheckpointError(f"{path} is not a kit IQA checkpoint (it holds a {type(ckpt).__name__}); "
                                 f"{recreate_hint(path)}")
    for key in ("arch", "state_dict", "calibration"):
        if key not in ckpt:
            raise KitCheckpointError(f"{path} is not a kit IQA checkpoint: key {key!r} is missing; "
                                     f"{recreate_hint(path)}")
    return ckpt


def load_kit_model(path: str | Path, device: str | torch.device = "cpu") -> KitIQA:
    """Load a kit checkpoint (no network access), frozen and in eval mode.

    FileNotFoundError when it is missing; :class:`KitCheckpointError` (a ValueError) naming the
    file and how to recreate it when it is unreadable, lacks a key or does not fit its arch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"kit IQA checkpoint {path} is missing; create it with "
                                f"`{_train_command(path.stem)}`")
    ckpt = _read_checkpoint(path)
    try:
        net = build_arch(ckpt["arch"], **(ckpt.get("arch_options") or {}))
        net.load_state_dict(ckpt["state_dict"])
        model = KitIQA(net, ckpt["calibration"]).to(device).eval()
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise KitCheckpointError(f"kit IQA checkpoint {path} does not load into a {ckpt['arch']!r} network "
                                 f"({brief_error(err)}); {recreate_hint(path)}") from err
    model.requires_grad_(False)
    return model


def kit_training_data(dataset: str) -> tuple[str, ...]:
    """The ``Card.training_data`` ids of a kit model trained on ``dataset``: ``("embedded-a",)`` /
    ``("embedded-b",)`` for a half of the embedded set, both for the whole set (it holds the images of
    both halves' sources), ``(<dataset>,)`` for a published set (its canonical name)."""
    # imported on use: nriqa.data.iqa_sets imports cv2, scipy and skimage
    from nriqa.data.iqa_sets import EMBEDDED_SETS, dataset_key

    try:
        key = dataset_key(dataset)
    except ValueError:
        return (str(dataset),)
    return tuple(EMBEDDED_SETS[1:]) if key == "embedded" else (key,)


def _where(dataset: str) -> str:
    """What a kit model trained on ``dataset`` was fitted on, in words (sources and kinds of a half)."""
    from nriqa.data.iqa_sets import HALVES

    if dataset == "embedded":
        return "the whole embedded KADID-style distortion set (both halves' sources, every kind)"
    if dataset.startswith("embedded-") and dataset[len("embedded-"):] in HALVES:
        return HALVES[dataset[len("embedded-"):]].describe()
    return f"the {dataset} dataset"


def kit_card(name: str, ckpt_meta: dict | None = None) -> Card:
    """The quality Card of kit checkpoint ``name`` ("<arch>@<dataset>")."""
    arch, _, dataset = name.partition("@")
    meta = ckpt_meta or {}
    label = meta.get("label", "pseudo" if dataset.startswith("embedded") else "mos")
    labels = ("pairwise level ranking within (source, distortion) + L1 on an FR pseudo-score (not opinion scores)"
              if label == "pseudo" else "the dataset's published (D)MOS")
    srcc = meta.get("held_out", {}).get("overall", {}).get("srcc")
    desc = (f"{_ARCH_TEXT.get(arch, arch)} kit-trained on {_where(dataset)} with {labels}. "
            f"Score = sigmoid(4*(raw-p50)/(p95-p5)) with training-set percentiles, in (0,1), higher better; "
            f"loss 1 - s.")
    if srcc is not None:
        on = "; held-out sources, its half's kinds" if dataset.startswith("embedded-") else ""
        desc += f" Held-out SRCC {srcc:.3f} (vs {'pseudo-score' if label == 'pseudo' else '(D)MOS'}{on})."
    key = active_kit_set()
    if key:
        desc += f" Kit set {key} (its training config: nriqa.iqa.iqa_training.kit_set_key)."
    weight = WeightFile(filename=f"{name}.pt", size_bytes=None, url=f"python -m nriqa train-iqa {arch}",
                        subdir=kit_dir().relative_to(weights_dir()).as_posix(), root="nriqa")
    return Card(name=name, mode="NR", higher_better=True, score_range=(0.0, 1.0), differentiable=True,
                min_size=MIN_SIZE, video=False, weights=(weight,), backend="nriqa.quality.kit", description=desc,
                training_data=kit_training_data(dataset))


def register_kit_models() -> list[str]:
    """Register every checkpoint in :func:`kit_dir` as a quality measure, in place of the kit measures
    registered before (another set's, or files since removed); returns the names.

    An unreadable checkpoint is skipped with a warning naming it; looking its name up then raises
    :class:`KitCheckpointError` with the same message (see :func:`broken_checkpoint`).
    """
    unregister_where(lambda card: card.backend == __name__)   # the kit measures are those on disk now
    names = []
    for path in sorted(kit_dir().glob("*@*.pt")):
        name = path.stem.lower()
        try:
            meta = _read_checkpoint(path).get("metrics", {})
            meta = meta if isinstance(meta, dict) else {}
        except KitCheckpointError as err:  # a corrupt file must not break the whole registry
            warnings.warn(f"skipping {err}", stacklevel=2)
            continue

        def builder(device="cpu", _path=path, **_):
            return load_kit_model(_path, device)

        register(kit_card(name, meta), builder)
        names.append(name)
    return names


def broken_checkpoint(name: str) -> KitCheckpointError | None:
    """The error of the kit checkpoint ``name`` (``<arch>@<dataset>``) when its file exists in
    :func:`kit_dir` but cannot be read; None when there is no such file or it reads fine."""
    for path in kit_dir().glob("*@*.pt"):
        if path.stem.lower() == name.strip().lower():
            try:
                _read_checkpoint(path)
            except KitCheckpointError as err:
                return err
    return None

