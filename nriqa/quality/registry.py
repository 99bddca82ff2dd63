"""One registry for every quality measure: name -> (Card, builder).

A :class:`Card` says what a measure is (FR/NR, direction, range, differentiable, minimum
frame side, which weight files it needs and where they go). ``create(name)`` checks the
weight files *before* building anything, builds the scorer, freezes it and wraps it in a
:class:`Measure` that validates inputs and returns one raw score per image / frame.

Sign convention: a Measure returns the *raw* score (``card.higher_better`` says which way
is good); :func:`to_loss` maps a raw score to a lower-is-better loss on a ~[0, 1] scale.
"""
from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nriqa.paths import weights_dir

__all__ = [
    "Card",
    "Measure",
    "WeightFile",
    "WeightsMissingError",
    "card",
    "cards",
    "create",
    "loss_mapping",
    "names",
    "offline_names",
    "register",
    "to_loss",
    "torch_hub_dir",
]


class WeightsMissingError(FileNotFoundError):
    """A measure's weight files are not on disk (nothing is downloaded implicitly)."""


def torch_hub_dir() -> Path:
    """``$TORCH_HOME/hub`` (or ``~/.cache/torch/hub``): where pyiqa/torchvision look for weights."""
    return Path(torch.hub.get_dir()).expanduser()


_ROOTS: dict[str, Callable[[], Path]] = {
    "torch_hub": torch_hub_dir,   # pyiqa: <hub>/pyiqa, torchvision: <hub>/checkpoints, CLIP: <hub>/clip
    "nriqa": weights_dir,         # nriqa's own measures (MDTVSFA, kit-trained models)
}


@dataclass(frozen=True)
class WeightFile:
    """One weight file a measure needs.

    ``root`` is ``"torch_hub"`` (``$TORCH_HOME/hub``) or ``"nriqa"`` (``weights_dir()``);
    ``subdir`` the folder under it. ``size_bytes``/``sha256`` are checked by ``weights fetch``
    when known (None = unknown).
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
        if self.root not in _ROOTS:
            raise ValueError(f"WeightFile {self.filename!r}: unknown root {self.root!r}; use one of {sorted(_ROOTS)}")
        return _ROOTS[self.root]() / self.subdir / self.filename

    @property
    def present(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0


@dataclass(frozen=True)
class Card:
    """What a measure is. Scores are raw; ``higher_better`` gives the direction.

    ``score_range``: (lo, hi) typical range, None when unbounded. ``loss_range``: the range
    :func:`to_loss` normalises with (defaults to ``score_range``; set for unbounded scores).
    ``min_size``: smallest frame side (pixels) the measure accepts.
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

    def __post_init__(self) -> None:
        if self.mode not in ("FR", "NR"):
            raise ValueError(f"Card {self.name!r}: mode must be 'FR' or 'NR', got {self.mode!r}")
        if self.name != self.name.lower():
            raise ValueError(f"Card {self.name!r}: names are lower case")

    @property
    def present(self) -> bool:
        """True when every weight file is on disk (True when none are needed)."""
        return all(w.present for w in self.weights)

    @property
    def missing(self) -> list[WeightFile]:
        return [w for w in self.weights if not w.present]

    @property
    def lower_better(self) -> bool:
        return not self.higher_better


_REGISTRY: dict[str, tuple[Card, Callable[..., nn.Module]]] = {}
_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Import the modules that register the built-in measures (once, lazily)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from nriqa.quality import lpips_measure, mdtvsfa, niqe, pyiqa_measures  # noqa: F401

    for mod in ("nriqa.quality.dists_family",):   # owned by the iqa builder; optional
        try:
            __import__(mod)
        except ImportError:
            pass


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


def _lookup(name: str) -> tuple[Card, Callable[..., nn.Module]]:
    _load_builtins()
    if not isinstance(name, str):
        raise ValueError(f"measure name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY and "@" in key:
        try:  # kit-trained models (arch@dataset) register from their checkpoints on disk
            from nriqa.iqa import register_kit_models

            register_kit_models()
        except ImportError:
            pass
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if "@" in key:
            hint += (f" {key!r} looks like a kit-trained model: train it first (python -m nriqa train-iqa) "
                     f"so that its checkpoint lands in {weights_dir() / 'kit'}.")
        raise ValueError(f"unknown quality measure {name!r}.{hint} Known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def names() -> list[str]:
    """All registered measure names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def card(name: str) -> Card:
    """The card of one measure (ValueError with the closest names when unknown)."""
    return _lookup(name)[0]


def cards() -> list[Card]:
    return [card(n) for n in names()]


def offline_names(differentiable: bool | None = None) -> list[str]:
    """Measures whose weight files are all on disk (optionally only (non-)differentiable ones)."""
    out = []
    for c in cards():
        if not c.present:
            continue
        if differentiable is not None and c.differentiable != differentiable:
            continue
        out.append(c.name)
    return out


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


def missing_weights_message(c: Card) -> str:
    lines = [f"quality measure {c.name!r} needs weight files that are not on disk:"]
    for w in c.missing:
        lines.append(f"  - {w.filename}  ->  put it at {w.path}  (source: {w.url})")
    lines.append(f"Fetch them explicitly with:  python -m nriqa weights fetch {c.name}")
    return "\n".join(lines)


def require_weights(c: Card) -> None:
    """Raise :class:`WeightsMissingError` naming every missing file (before anything is built)."""
    if c.missing:
        raise WeightsMissingError(missing_weights_message(c))


class Measure(nn.Module):
    """A frozen quality measure: ``forward(x, ref=None) -> (N,)`` raw scores (float32).

    ``x``: ``(N, 3, H, W)`` images or ``(B, T, 3, H, W)`` video (flattened to ``B*T`` frames,
    scores in frame order), float in [0, 1]. ``ref``: same shape, required for FR measures.
    Gradients flow to ``x`` when ``card.differentiable``; the measure's own parameters are frozen.
    """

    def __init__(self, card: Card, net: nn.Module, *, range_tolerance: float = 1e-4):
        super().__init__()
        self.card = card
        self.net = net
        self.range_tolerance = range_tolerance
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Measure:  # stays in eval mode: dropout/BN frozen
        return super().train(False)

    def _check(self, t, what: str, values: bool = True) -> torch.Tensor:
        c = self.card
        if not torch.is_tensor(t):
            raise ValueError(f"{c.name}: {what} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() not in (4, 5):
            raise ValueError(
                f"{c.name}: {what} must be (N,3,H,W) images or (B,T,3,H,W) video, got shape {tuple(t.shape)}"
            )
        if t.shape[-3] != 3 and not (c.gray_ok and t.shape[-3] == 1):
            raise ValueError(f"{c.name}: {what} must have 3 RGB channels at dim -3, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{c.name}: {what} must be a float tensor in [0, 1], got dtype {t.dtype}")
        if t.numel() == 0:
            raise ValueError(f"{c.name}: {what} is empty (shape {tuple(t.shape)})")
        h, w = t.shape[-2:]
        if min(h, w) < c.min_size:
            raise ValueError(
                f"{c.name}: {what} frames are {h}x{w}; this measure needs at least "
                f"{c.min_size}x{c.min_size} pixels (crop or tile larger frames, or pick another measure)"
            )
        if not values:  # shape checks only: no device-to-host sync (the trainer's hot path)
            return t
        with torch.no_grad():
            if not torch.isfinite(t).all():
                raise ValueError(f"{c.name}: {what} contains NaN or Inf values")
            lo, hi = float(t.min()), float(t.max())
        tol = self.range_tolerance
        if lo < -tol or hi > 1 + tol:
            raise ValueError(
                f"{c.name}: {what} must be in [0, 1] (float RGB), got min={lo:.4g}, max={hi:.4g}; "
                "clamp it or divide 8-bit images by 255"
            )
        return t

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None, *,
                check_values: bool = True) -> torch.Tensor:
        """Raw scores ``(N,)``. ``check_values=False`` skips the finite/range checks, which read
        the tensor back to the host; shapes are always checked."""
        c = self.card
        x = self._check(x, "input x", check_values)
        if c.mode == "FR":
            if ref is None:
                raise ValueError(f"{c.name} is a full-reference (FR) measure: call it with ref=<reference images>")
            ref = self._check(ref, "reference ref", check_values)
            if ref.shape != x.shape:
                raise ValueError(f"{c.name}: ref shape {tuple(ref.shape)} must equal x shape {tuple(x.shape)}")
        if c.video and x.dim() == 4:
            raise ValueError(f"{c.name} is a video measure: x must be (B,T,3,H,W), got shape {tuple(x.shape)}")
        if not c.video and x.dim() == 5:
            x = x.flatten(0, 1)
            ref = ref.flatten(0, 1) if ref is not None else None
        x = x.float()
        ref = ref.float() if ref is not None else None
        n = x.shape[0]
        out = self.net(x, ref) if c.mode == "FR" else self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        out = out.reshape(-1).float()
        if out.numel() != n:
            raise RuntimeError(f"{c.name}: expected {n} scores, the backend returned {out.numel()}")
        return out

    def extra_repr(self) -> str:
        c = self.card
        return f"name={c.name!r}, mode={c.mode}, higher_better={c.higher_better}"


def create(name: str, device: str | torch.device = "cpu", **kwargs) -> Measure:
    """Build measure ``name`` on ``device``: frozen, eval mode, weight files checked first.

    Raises ValueError for an unknown name and :class:`WeightsMissingError` (one message naming
    every missing file, where it goes, and ``python -m nriqa weights fetch NAME``) before any
    construction when weight files are missing. Extra ``kwargs`` go to the builder.
    """
    c, builder = _lookup(name)
    require_weights(c)
    net = builder(device=torch.device(device), **kwargs)
    m = Measure(c, net)
    return m.to(device)


def loss_mapping(c: Card) -> str:
    """Human-readable formula :func:`to_loss` applies for this card."""
    rng = c.loss_range or c.score_range
    if rng is None:
        return "no mapping (unbounded score without loss_range)"
    lo, hi = rng
    if c.higher_better:
        return "1 - s" if (lo, hi) == (0, 1) else f"({hi} - s) / {hi - lo}"
    if lo == 0:
        return "s" if hi == 1 else f"s / {hi}"
    return f"(s - {lo}) / {hi - lo}"


def to_loss(score: torch.Tensor, c: Card | str) -> torch.Tensor:
    """Map raw scores to a lower-is-better loss on a ~[0, 1] scale (not clipped).

    - higher-better, range (lo, hi): ``(hi - s) / (hi - lo)``  (``1 - s`` for 0..1 scores)
    - lower-better,  range (lo, hi): ``(s - lo) / (hi - lo)``
    - unbounded scores use the card's ``loss_range`` (psnr: ``(50 - s)/50``; niqe: ``s/10``).
    ``loss_mapping(card)`` prints the formula for a card.
    """
    if isinstance(c, str):
        c = card(c)
    rng = c.loss_range or c.score_range
    if rng is None:
        raise ValueError(f"to_loss: measure {c.name!r} has no score_range/loss_range to normalise with")
    lo, hi = float(rng[0]), float(rng[1])
    if c.higher_better:
        return (hi - score) / (hi - lo)
    return (score - lo) / (hi - lo)
