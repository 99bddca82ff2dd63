"""One registry for every quality measure: name -> (Card, builder).

Importing this module imports the backends, which register their measures; kit-trained
checkpoints (``<arch>@<dataset>``, :mod:`nriqa.quality.kit`) register from disk when such a
name is looked up and not yet known. A :class:`~nriqa.quality.base.Card` says what a measure
is (FR/NR, direction, range, differentiable, minimum frame side, which weight files it needs
and where they go). ``create(name)`` checks the
weight files *before* building anything, builds the scorer, freezes it and wraps it in a
:class:`Measure` that validates inputs and returns one raw score per image / frame.

Sign convention: a Measure returns the *raw* score (``card.higher_better`` says which way
is good); :func:`to_loss` maps a raw score to a lower-is-better loss on a ~[0, 1] scale.

Degenerate frames (constant, all black, all white, a linear ramp, a one-pixel checkerboard,
frames of exactly ``card.min_size``) are valid input, and every measure has a defined score on
them, stated on its card where it is not the obvious one (``tests/test_quality_degenerate.py``
checks every offline measure):

- finite on all of them: psnr (identical frames: 80 dB), ssim, ms_ssim, fsim, vsi (identical:
  1), gmsd, nlpd, mad (identical: 0), niqe / niqe-kit and brisque (flat frames: finite), the
  LPIPS / DISTS family (identical: 0), the kit-trained measures (a sigmoid, in (0, 1));
- piqe: flat frames score 100 (its worst), the all-black one too (pyiqa: NaN);
- cw_ssim: two frames without structure in the compared band score 1 (pyiqa: up to 1e6);
- vif: a flat reference gives 0; a reference with singular subbands (a ramp) is scored with the
  Gaussian-scale-mixture fit clipped at zero (pyiqa: NaN);
- measures that need downloaded weights are not checked offline.

A checked call never returns a silent NaN: a NaN/Inf score left after those rules raises
:class:`UndefinedScoreError` naming the frames. The unchecked path (``check_values=False``, the
trainer's step) reads nothing back from the device, so a NaN there reaches the trainer's
non-finite guard.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable

import torch
from torch import nn

from nriqa.errors import UserError

# the backends register their measures when imported (pyiqa itself is imported only on use)
from nriqa.quality import (  # noqa: F401
    brisque_measure,
    cvvdp_measure,
    dists_family,
    lpips_measure,
    mdtvsfa,
    niqe,
    pyiqa_measures,
    stlpips_measure,
)
from nriqa.quality.base import _REGISTRY, Card, WeightsMissingError
from nriqa.quality.kit import broken_checkpoint, kit_dir, register_kit_models

__all__ = ["Measure", "MeasureInputError", "UndefinedScoreError", "card", "cards", "create", "loss_mapping",
           "names", "offline_names", "to_loss"]


def _lookup(name: str) -> tuple[Card, Callable[..., nn.Module]]:
    if not isinstance(name, str):
        raise ValueError(f"measure name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY and "@" in key:
        register_kit_models()  # kit-trained models (arch@dataset) register from their checkpoints on disk
    if key not in _REGISTRY and "@" in key:
        broken = broken_checkpoint(key)  # the file is there but unreadable: say so, not "train it first"
        if broken is not None:
            raise broken
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if "@" in key:
            hint += (f" {key!r} looks like a kit-trained model: train it first (python -m nriqa train-iqa) "
                     f"so that its checkpoint lands in {kit_dir()}.")
        raise ValueError(f"unknown quality measure {name!r}.{hint} Known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def names() -> list[str]:
    """All registered measure names, sorted (kit-trained ones once looked up or registered)."""
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


class MeasureInputError(UserError):
    """A :class:`Measure` was given input it cannot score: not a tensor, wrong rank, channels or
    dtype, empty, frames smaller than ``card.min_size``, NaN/Inf, values outside [0, 1], a missing
    or mismatched ``ref``. The message names the measure, the input and the expectation."""


class UndefinedScoreError(MeasureInputError):
    """A measure's score is NaN/Inf on frames that passed the input checks: the measure is undefined
    on them (see "Degenerate frames" in :mod:`nriqa.quality.registry`). Raised instead of a silent NaN
    by checked calls (``check_values=True``); names the measure, the input and the frames."""


class Measure(nn.Module):
    """A frozen quality measure: ``forward(x, ref=None) -> (N,)`` raw scores (float32).

    ``x``: ``(N, 3, H, W)`` images or ``(B, T, 3, H, W)`` video (flattened to ``B*T`` frames,
    scores in frame order), float in [0, 1]. ``ref``: same shape, required for FR measures.
    Gradients flow to ``x`` when ``card.differentiable``; the measure's own parameters are frozen.

    Bad input raises :class:`MeasureInputError` (a ValueError) before any compute. A checked call
    (the default) also guarantees finite scores: a NaN/Inf score raises :class:`UndefinedScoreError`
    naming the frames. ``check_values=False`` (the trainer's hot path) skips both value checks, so it
    reads nothing back from the device; shapes are still checked.
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
            raise MeasureInputError(f"{c.name}: {what} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() not in (4, 5):
            raise MeasureInputError(
                f"{c.name}: {what} must be (N,3,H,W) images or (B,T,3,H,W) video, got shape {tuple(t.shape)}"
            )
        if t.shape[-3] != 3 and not (c.gray_ok and t.shape[-3] == 1):
            raise MeasureInputError(f"{c.name}: {what} must have 3 RGB channels at dim -3, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise MeasureInputError(f"{c.name}: {what} must be a float tensor in [0, 1], got dtype {t.dtype}")
        if t.numel() == 0:
            raise MeasureInputError(f"{c.name}: {what} is empty (shape {tuple(t.shape)})")
        h, w = t.shape[-2:]
        if min(h, w) < c.min_size:
            raise MeasureInputError(
                f"{c.name}: {what} frames are {h}x{w}; this measure needs at least "
                f"{c.min_size}x{c.min_size} pixels (crop or tile larger frames, or pick another measure)"
            )
        if not values:  # shape checks only: no device-to-host sync (the trainer's hot path)
            return t
        with torch.no_grad():
            if not torch.isfinite(t).all():
                raise MeasureInputError(f"{c.name}: {what} contains NaN or Inf values")
            lo, hi = float(t.min()), float(t.max())
        tol = self.range_tolerance
        if lo < -tol or hi > 1 + tol:
            raise MeasureInputError(
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
                raise MeasureInputError(f"{c.name} is a full-reference (FR) measure: "
                                        "call it with ref=<reference images>")
            ref = self._check(ref, "reference ref", check_values)
            if ref.shape != x.shape:
                raise MeasureInputError(f"{c.name}: ref shape {tuple(ref.shape)} must equal x shape {tuple(x.shape)}")
        if c.video and x.dim() == 4:
            raise MeasureInputError(f"{c.name} is a video measure: x must be (B,T,3,H,W), got shape {tuple(x.shape)}")
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
        if check_values:
            bad = ~torch.isfinite(out.detach())
            repair = getattr(self.net, "repair_undefined", None)
            if repair is not None and bool(bad.any()):  # a backend that defines these scores otherwise
                out = repair(x, ref, out, bad)
                bad = ~torch.isfinite(out.detach())
            if bool(bad.any()):
                frames = bad.nonzero().flatten().tolist()
                shown = ", ".join(map(str, frames[:8])) + (" ..." if len(frames) > 8 else "")
                inputs = "x and ref are" if c.mode == "FR" else "x is"
                raise UndefinedScoreError(
                    f"{c.name}: the score of {'clip' if c.video else 'frame'}(s) {shown} of input x is NaN or Inf "
                    f"although {inputs} finite and in [0, 1]; {c.name} is undefined there (e.g. flat or "
                    "one-pixel-pattern frames, see 'Degenerate frames' in nriqa.quality.registry): score other "
                    "frames or use another measure")
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
