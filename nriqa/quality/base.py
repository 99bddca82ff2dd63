"""What a quality measure is, and the table that holds every measure: the pieces backends import.

A backend module (``niqe``, ``lpips_measure``, ``pyiqa_measures``, ``kit`` ...) builds a
:class:`Card` per measure and calls :func:`register` with it and a builder;
:mod:`nriqa.quality.registry` imports the backends and looks measures up.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nriqa.paths import weights_dir


class WeightsMissingError(FileNotFoundError):
    """A measure's weight files are not on disk (nothing is downloaded implicitly)."""


def torch_hub_dir() -> Path:
    """``$TORCH_HOME/hub`` (or ``~/.cache/torch/hub``): where pyiqa/torchvision look for weights."""
    return Path(torch.hub.get_dir()).expanduser()


def package_dir(dist: str) -> Path:
    """The folder an installed distribution's files are relative to (its ``site-packages``).

    Found with ``importlib.metadata`` (the package is not imported). When ``dist`` is not
    installed: the ``site-packages`` folder pip would install it into.
    """
    try:
        return Path(importlib.metadata.distribution(dist).locate_file(""))
    except importlib.metadata.PackageNotFoundError:
        return Path(sysconfig.get_paths()["purelib"])


_ROOTS: dict[str, Callable[[], Path]] = {
    "torch_hub": torch_hub_dir,   # pyiqa: <hub>/pyiqa, torchvision: <hub>/checkpoints, CLIP: <hub>/clip
    "nriqa": weights_dir,         # nriqa's own measures (MDTVSFA, kit-trained models)
}
PACKAGE_ROOT = "package:"        # root "package:<dist>": a data file inside an installed wheel


@dataclass(frozen=True)
class WeightFile:
    """One weight file a measure needs.

    ``root`` is ``"torch_hub"`` (``$TORCH_HOME/hub``), ``"nriqa"`` (``weights_dir()``) or
    ``"package:<dist>"`` (a data file shipped inside the installed wheel ``<dist>``, located with
    :func:`package_dir`; ``url`` then holds the ``pip install`` command that provides it);
    ``subdir`` the folder under it. ``size_bytes``/``sha256`` are checked by ``weights fetch``
    (and by :func:`verified_path`) when known (None = unknown).
    """

    filename: str
    size_bytes: int | None
    url: str
    sha256: str | None = None     # full hex digest or a prefix (torchvision names carry 8 hex digits)
    subdir: str = "pyiqa"
    root: str = "torch_hub"

    @property
    def path(self) -> Path:
        """Absolute path where this file is expected (resolved now, from the environment)."""
        if self.root.startswith(PACKAGE_ROOT):
            return package_dir(self.root[len(PACKAGE_ROOT):]) / self.subdir / self.filename
        if self.root not in _ROOTS:
            raise ValueError(f"WeightFile {self.filename!r}: unknown root {self.root!r}; use one of "
                             f"{sorted(_ROOTS)} or '{PACKAGE_ROOT}<distribution>'")
        return _ROOTS[self.root]() / self.subdir / self.filename

    @property
    def present(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0


def verified_path(w: WeightFile) -> Path:
    """``w.path`` after checking that the file is there and has the size and sha256 on record.

    Raises :class:`WeightsMissingError` when it is absent, ``ValueError`` when it differs (another
    release of the package, or a damaged file): nothing is loaded from an unexpected file.
    """
    path = w.path
    if not path.is_file():
        raise WeightsMissingError(f"{w.filename}: not found at {path} (source: {w.url})")
    size = path.stat().st_size
    if w.size_bytes is not None and size != w.size_bytes:
        raise ValueError(f"{path}: {size} bytes, expected {w.size_bytes}; install the expected file ({w.url})")
    if w.sha256 is not None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        if not h.hexdigest().startswith(w.sha256):
            raise ValueError(f"{path}: sha256 differs from the file nriqa was checked with; "
                             f"install the expected file ({w.url})")
    return path


@dataclass(frozen=True)
class Card:
    """What a measure is. Scores are raw; ``higher_better`` gives the direction.

    ``score_range``: (lo, hi) typical range, None when unbounded. ``loss_range``: the range
    :func:`to_loss` normalises with (defaults to ``score_range``; set for unbounded scores).
    ``min_size``: smallest frame side (pixels) the measure accepts.
    ``training_data``: ids of the data the measure's parameters were fitted on, each naming one piece of
    data that no other id overlaps (a measure fitted on several lists each): a published set by its
    canonical name (``koniq10k``, ``live``, ``bapps``, ...), a half of the embedded distortion set
    (``embedded-a``, ``embedded-b``: :data:`nriqa.data.iqa_sets.HALVES`). Quality data only: ratings,
    quality labels, pristine statistics; a backbone pretrained for recognition (ImageNet), which most
    deep measures share, is not listed. Empty: no fitted parameters, or none stated. Two measures
    sharing an id are not independent: one must not judge the other as a loss. The ``description``
    says the same in words.
    """

    name: str
    mode: str                     # "FR" | "NR"
    higher_better: bool
    score_range: tuple | None
    differentiable: bool
    min_size: int
    video: bool
    weights: tuple = ()
    backend: str = "nriqa"
    description: str = ""
    loss_range: tuple | None = None
    gray_ok: bool = False
    training_data: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("FR", "NR"):
            raise ValueError(f"Card {self.name!r}: mode must be 'FR' or 'NR', got {self.mode!r}")
        if self.name != self.name.lower():
            raise ValueError(f"Card {self.name!r}: names are lower case")
        if isinstance(self.training_data, str) or not all(isinstance(d, str) and d for d in self.training_data):
            raise ValueError(f"Card {self.name!r}: training_data must be a tuple of data ids, got "
                             f"{self.training_data!r}")
        object.__setattr__(self, "training_data", tuple(self.training_data))

    @property
    def present(self) -> bool:
        """True when every weight file is on disk (True when none are needed)."""
        return all(w.present for w in self.weights)

    @property
    def missing(self) -> list[WeightFile]:
        return [w for w in self.weights if not w.present]

    @property
    def accuracy_source(self) -> str:
        """Where this measure's human-rated accuracy (published SRCC) comes from: the citation of
        its rows in :mod:`nriqa.quality.published`, or a line saying there are none."""
        from nriqa.quality.published import published_source  # data table, read on first use

        return published_source(self.name) or "no published SRCC on record (nriqa/quality/published_srcc.csv)"


_REGISTRY: dict[str, tuple[Card, Callable[..., nn.Module]]] = {}   # name -> (card, builder)


def register(card: Card, builder: Callable[..., nn.Module], *, replace: bool = True) -> None:
    """Register ``builder(device=...) -> nn.Module`` under ``card.name``.

    The built module is called as ``net(x)`` (NR) or ``net(x, ref)`` (FR) with
    ``x, ref: (N, 3, H, W)`` in [0, 1] and must return N raw scores (any shape with N elements).
    Re-registering a name replaces it (``replace=False`` raises instead).
    """
    if not isinstance(card, Card):
        raise TypeError(f"register: card must be a nriqa.quality.Card, got {type(card).__name__}")
    if not callable(builder):
        raise TypeError(f"register({card.name!r}): builder must be callable")
    if not replace and card.name in _REGISTRY:
        raise ValueError(f"register: measure {card.name!r} is already registered")
    _REGISTRY[card.name] = (card, builder)


def unregister_where(condition: Callable[[Card], bool]) -> list[str]:
    """Remove every registered measure whose card meets ``condition``; returns their names."""
    gone = [name for name, (card, _) in _REGISTRY.items() if condition(card)]
    for name in gone:
        del _REGISTRY[name]
    return gone


@contextlib.contextmanager
def no_torch_hub_downloads() -> Iterator[None]:
    """Within the block, ``torch.hub`` (and torchvision through it) raises instead of downloading."""
    saved = torch.hub.download_url_to_file

    def refuse(url, dst=None, *a, **k):
        raise WeightsMissingError(f"nriqa: refused to download {url} (to {dst}); nothing is downloaded "
                                  "implicitly - use `python -m nriqa weights fetch NAME`")

    torch.hub.download_url_to_file = refuse
    try:
        yield
    finally:
        torch.hub.download_url_to_file = saved
