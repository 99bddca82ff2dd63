"""Objective: a weighted sum of named lower-is-better terms, built from a plain spec dict.

Spec (plain data, as in the profiles)::

    {"charbonnier": 1.0,                      # or "pixel"; value = weight
     "lpips-vgg-randtrunk": 0.1,              # any differentiable nriqa.quality measure
     "niqe": {"weight": 0.02, "pad_small": True},   # dict: weight + QualityLoss options
     "gan": {"weight": 0.01, "discriminator": "patchgan", "loss": "hinge", "size": "tiny"},
     "weights": "gradnorm"}                   # optional balancing mode, kept in .balancing

Term names are the spec keys, except that ``"pixel"`` is stored as ``"charbonnier"``.

:class:`TrainingObjective` names what the trainer (:func:`nriqa.train.train`) reads of an
objective; :class:`Objective` is one, and a hand-made objective passed as ``objective=`` must be.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from nriqa import quality
from nriqa.losses._checks import (
    LossInputError,
    UnknownNameError,
    check_rank,
    check_same_shape,
    check_values,
)
from nriqa.losses.adversarial import AdversarialTerm
from nriqa.losses.pixel import Charbonnier
from nriqa.losses.quality_loss import QualityLoss, kit_hint, unknown_name_message
from nriqa.models.discriminators import build_discriminator

PIXEL_NAMES = ("charbonnier", "pixel")
SPECIAL_KEYS = ("gan", "weights")


@runtime_checkable
class TrainingObjective(Protocol):
    """What the trainer reads of an objective (``isinstance`` checks that every member is there).

    - :attr:`weights`: ``{term: weight}`` of the terms; read when training starts, and with online
      balancing the balanced weights are written back into it at every log interval
    - :attr:`balancing`: the spec's ``"weights"`` mode (``"gradnorm"``) or None (fixed weights)
    - :attr:`losses`: ``{term: module(pred, target) -> scalar}`` that skip the input checks (the
      step calls them after the first, checked, :meth:`terms` call, so it never syncs with the
      device), or None: every step calls :meth:`terms`
    - :attr:`adversarial`: an :class:`AdversarialTerm` (logged as term ``gan``) or None
    - :meth:`terms`: the unweighted terms (no adversarial one), inputs checked;
      ``objective(pred, target)``: ``(weighted total, terms)``
    """

    weights: dict[str, float]
    balancing: str | None
    losses: Mapping[str, Callable[..., Tensor]] | None
    adversarial: AdversarialTerm | None

    def terms(self, pred: Tensor, target: Tensor | None = None) -> dict[str, Tensor]: ...

    def __call__(self, pred: Tensor, target: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]: ...


#: the members of :class:`TrainingObjective` (for the error that names the ones an object lacks)
TRAINING_OBJECTIVE_MEMBERS = ("weights", "balancing", "losses", "adversarial", "terms", "__call__")


def check_training_objective(objective: object) -> None:
    """Raise ``TypeError`` naming the :class:`TrainingObjective` members ``objective`` lacks."""
    if not isinstance(objective, TrainingObjective):
        missing = [m for m in TRAINING_OBJECTIVE_MEMBERS if not hasattr(objective, m)]
        raise TypeError(f"objective= must have the members of nriqa.losses.TrainingObjective "
                        f"({', '.join(TRAINING_OBJECTIVE_MEMBERS)}); a {type(objective).__name__} lacks "
                        f"{', '.join(missing)} (set e.g. adversarial = None, balancing = None, losses = None)")


def _parse_weight(name: str, value) -> tuple[float, dict]:
    """``value`` is a weight, or a dict with ``weight`` plus options for the term's constructor."""
    options: dict = {}
    if isinstance(value, Mapping):
        options = dict(value)
        if "weight" not in options:
            raise ValueError(f"objective term {name!r}: a dict value needs a 'weight' key, got {value!r}")
        value = options.pop("weight")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"objective term {name!r}: weight must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"objective term {name!r}: weight must be finite and >= 0, got {value!r}")
    return float(value), options


def build_adversarial(spec: Mapping, device: str | torch.device = "cpu") -> AdversarialTerm:
    """``{"weight", "discriminator", "loss", "size", **discriminator kwargs}`` -> AdversarialTerm."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"objective 'gan' must be a dict with weight/discriminator/loss, got {spec!r}")
    options = dict(spec)
    weight, _ = _parse_weight("gan", options.pop("weight", 0.01))
    kind = options.pop("discriminator", "patchgan")
    loss = options.pop("loss", "hinge")
    disc = build_discriminator(kind, **options).to(device)
    return AdversarialTerm(disc, loss=loss, weight=weight, kind=kind)


class Objective:
    """Weighted sum of named loss terms (see module docstring for the spec).

    - :attr:`weights` ``dict[name, float]``: mutable; read at every call (gradient balancing
      rewrites it).  :attr:`balancing`: the spec's ``"weights"`` value (e.g. ``"gradnorm"``) or
      None — the trainer implements it.
    - :meth:`terms` -> ``dict[name, scalar]``, unweighted, lower is better; the adversarial term
      is *not* included: it needs the discriminator loop, see :attr:`adversarial`.
    - ``objective(pred, target)`` -> ``(sum_i weights[i] * terms[i], terms)``.
    - :attr:`adversarial`: an :class:`AdversarialTerm` when the spec has ``"gan"``, else None.

    Input is checked once per call (rank, 3 channels, shapes, finite values, target in
    ``[0, 1]``); ``target`` may be None only when every term is no-reference.  Objective is a
    plain object, not an ``nn.Module``: registering it inside a generator is impossible, and
    the frozen measure networks never enter the generator's ``state_dict``.
    """

    def __init__(self, spec: Mapping, device: str | torch.device = "cpu") -> None:
        if not isinstance(spec, Mapping):
            raise TypeError(f"objective spec must be a dict of term -> weight, got {type(spec).__name__}")
        if not spec:
            raise ValueError(f"objective spec must be a non-empty dict of term -> weight, got {spec!r}")
        self.spec = copy.deepcopy(dict(spec))
        self.device = torch.device(device)
        self.balancing = self.spec.get("weights")
        self.weights: dict[str, float] = {}
        self.losses: dict[str, nn.Module] = {}
        self.adversarial: AdversarialTerm | None = None
        quality_keys = [k for k in self.spec if k not in SPECIAL_KEYS and str(k).lower() not in PIXEL_NAMES]
        if quality_keys:
            self._check_known(quality_keys)
        for key, value in self.spec.items():
            if key == "weights":
                continue
            if key == "gan":
                self.adversarial = build_adversarial(value, self.device)
                continue
            weight, options = _parse_weight(key, value)
            pixel = str(key).lower() in PIXEL_NAMES
            kind = Charbonnier if pixel else QualityLoss
            allowed = {"eps"} if pixel else {"tile", "crop", "upsample_small", "pad_small"}
            unknown = sorted(set(options) - allowed)
            if unknown:
                raise ValueError(f"objective term {key!r}: unknown option(s) {unknown}; a {kind.__name__} term "
                                 f"takes 'weight' and {sorted(allowed)}")
            if pixel:
                name, module = "charbonnier", Charbonnier(**options, validate=False)
            else:
                name, module = key, QualityLoss(key, self.device, validate=False, **options)
            if name in self.losses:
                raise ValueError(f"objective term {name!r} is given twice (charbonnier and pixel are one term)")
            self.weights[name] = weight
            self.losses[name] = module.to(self.device)
        if not self.losses and self.adversarial is None:
            raise ValueError(f"objective spec has no loss terms: {spec!r}")

    @staticmethod
    def _check_known(keys: list[str]) -> None:
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"objective term names must be strings, got {key!r}")
        for key in keys:
            try:
                quality.card(key)  # an arch@dataset name finds a kit-trained checkpoint on disk
            except ValueError:
                known = quality.names() + list(PIXEL_NAMES) + list(SPECIAL_KEYS)
                raise UnknownNameError(unknown_name_message(key, known, what="objective term")
                                       + kit_hint(key)) from None

    @property
    def names(self) -> list[str]:
        """Term names in spec order (excluding the adversarial term)."""
        return list(self.losses)

    @property
    def needs_target(self) -> bool:
        return any(isinstance(m, Charbonnier) or m.full_reference for m in self.losses.values())

    def to(self, device: str | torch.device) -> Objective:
        self.device = torch.device(device)
        for module in self.losses.values():
            module.to(self.device)
        if self.adversarial is not None:
            self.adversarial.to(self.device)
        return self

    def _check(self, pred: Tensor, target: Tensor | None) -> None:
        check_rank(pred, "pred", channels=3)
        if target is None:
            if self.needs_target:
                fr = [n for n, m in self.losses.items() if isinstance(m, Charbonnier) or m.full_reference]
                raise LossInputError(f"target is required by the full-reference terms {fr}")
        else:
            check_rank(target, "target", channels=3)
            check_same_shape(pred, target)
        check_values(pred, target)

    def terms(self, pred: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
        """Unweighted, lower-is-better scalar per term (adversarial term excluded)."""
        self._check(pred, target)
        return {name: module(pred, target) for name, module in self.losses.items()}

    def __call__(self, pred: Tensor, target: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``(weighted total, terms)``; weights are read from :attr:`weights` now."""
        terms = self.terms(pred, target)
        missing = [n for n in terms if n not in self.weights]
        if missing:
            raise KeyError(f"objective.weights has no weight for terms {missing}")
        total = sum(self.weights[name] * value for name, value in terms.items())
        if not isinstance(total, Tensor):  # no terms (adversarial-only objective)
            total = pred.new_zeros(())
        return total, terms

    def __repr__(self) -> str:
        parts = [f"{n}={w:g}" for n, w in self.weights.items()]
        if self.adversarial is not None:
            parts.append(repr(self.adversarial))
        if self.balancing is not None:
            parts.append(f"balancing={self.balancing!r}")
        return f"Objective({', '.join(parts)})"
