"""Loss weights from gradient magnitudes.

Three tools, all lower-is-better terms and gradients w.r.t. the *generator* parameters:

- :func:`measure_gradients` probes a model on a few batches: each term's gradient norm w.r.t.
  the parameters and w.r.t. the output frames, and the cosine between terms' parameter
  gradients (negative = the terms pull the weights in opposing directions).
- :func:`static_weights` turns measured norms into weights: term ``k`` gets
  ``w_k = share_k * w_ref * |g_ref| / |g_k|``, so that its *weighted* gradient norm is
  ``share_k`` times the reference term's weighted norm; the reference keeps its weight.
- :class:`GradNormBalancer` does the same online inside the trainer (objective spec
  ``"weights": "gradnorm"``) from an EMA of the norms, clipped to ``[lo, hi]``, on-device;
  :func:`loss_weights` sets up the trainer's weights, fixed or balanced.

:func:`project_conflicts` is the PCGrad-style option (``train.project_conflicts: true``):
when a quality term's gradient has a negative dot product with the fidelity (reference)
term's, its component along the reference gradient is removed; :func:`projected_backward`
is the trainer's backward pass with it.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch
from torch import nn

from nriqa.errors import ConfigError

EPS = 1e-12


def _flat(grads: Iterable[torch.Tensor | None], like: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                      for g, p in zip(grads, like)])


def term_gradients(terms: Mapping[str, torch.Tensor], params: list[torch.Tensor], *,
                   retain_graph: bool = True) -> dict[str, list[torch.Tensor | None]]:
    """Per-term gradients ``d term / d params`` (``None`` where a parameter is unused)."""
    out = {}
    for name, value in terms.items():
        if not value.requires_grad:
            out[name] = [None] * len(params)
            continue
        out[name] = list(torch.autograd.grad(value, params, retain_graph=retain_graph, allow_unused=True))
    return out


def grad_norm(grads: list[torch.Tensor | None]) -> torch.Tensor:
    """L2 norm over a list of gradients (a 0-dim tensor; 0 when all are ``None``)."""
    present = [g.detach().float() for g in grads if g is not None]
    if not present:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in present]))


def term_norms(terms: Mapping[str, torch.Tensor], params: list[torch.Tensor], device) -> dict[str, torch.Tensor]:
    """Each term's gradient norm w.r.t. ``params`` (0-dim tensors on ``device``; the graph is kept)."""
    return {k: grad_norm(g).to(device) for k, g in term_gradients(terms, params).items()}


def measure_gradients(model: nn.Module, objective, batches: Iterable[Mapping[str, torch.Tensor]]) -> dict:
    """Probe each loss term's gradient on ``batches`` (dicts with ``lr`` (B,T,3,h,w), ``hr`` (B,T,3,4h,4w)).

    Returns ``{"param_norm": {term: float}, "output_norm": {term: float},
    "cosine": {term_a: {term_b: float}}, "weights": {term: float}, "batches": int}``: the norms of
    the *unweighted* terms' gradients w.r.t. the trainable generator parameters and w.r.t. the
    output frames, and the pairwise cosine similarity of the parameter gradients, each averaged
    over the batches. The model's weights and ``.grad`` are left untouched.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("measure_gradients: the model has no trainable parameters")
    device = params[0].device
    sums: dict[str, dict] = {"param_norm": {}, "output_norm": {}, "cosine": {}}
    n = 0
    for batch in batches:
        if "lr" not in batch or "hr" not in batch:
            raise ValueError(f"measure_gradients: each batch must be a dict with 'lr' and 'hr', got keys {list(batch)}")
        lr, hr = batch["lr"].to(device), batch["hr"].to(device)
        pred = model(lr)
        terms = objective.terms(pred, hr)
        flats = {}
        for name, value in terms.items():
            if not value.requires_grad:
                raise ValueError(f"measure_gradients: term {name!r} does not depend on the model output")
            g_out, *g_par = torch.autograd.grad(value, [pred, *params], retain_graph=True, allow_unused=True)
            flats[name] = _flat(g_par, params)
            sums["output_norm"][name] = sums["output_norm"].get(name, 0.0) + float(
                torch.linalg.vector_norm(g_out.float()) if g_out is not None else 0.0)
            sums["param_norm"][name] = sums["param_norm"].get(name, 0.0) + float(torch.linalg.vector_norm(flats[name]))
        for a in flats:
            row = sums["cosine"].setdefault(a, {})
            for b in flats:
                cos = torch.dot(flats[a], flats[b]) / (flats[a].norm() * flats[b].norm() + EPS)
                row[b] = row.get(b, 0.0) + float(cos)
        n += 1
        del pred, terms, flats
    if n == 0:
        raise ValueError("measure_gradients: batches is empty")
    return {
        "param_norm": {k: v / n for k, v in sums["param_norm"].items()},
        "output_norm": {k: v / n for k, v in sums["output_norm"].items()},
        "cosine": {a: {b: v / n for b, v in row.items()} for a, row in sums["cosine"].items()},
        "weights": dict(objective.weights),
        "batches": n,
    }


def _shares_for(terms: Iterable[str], reference: str, shares: float | Mapping[str, float]) -> dict[str, float]:
    if isinstance(shares, Mapping):
        return {k: float(v) for k, v in shares.items() if k != reference}
    return {k: float(shares) for k in terms if k != reference}


def static_weights(norms: Mapping[str, float] | Mapping[str, Mapping[str, float]], reference: str,
                   shares: float | Mapping[str, float], *, weights: Mapping[str, float] | None = None) -> dict:
    """Weights that give each term ``k`` a weighted gradient norm ``shares[k]`` x the reference's.

    ``norms``: unweighted gradient norms per term (or the dict :func:`measure_gradients` returns,
    whose ``param_norm`` is used). ``shares``: a number for every non-reference term, or a dict
    per term. ``weights``: the current weights (the reference keeps its own; default 1.0).
    Returns ``{term: weight}`` for the reference, every shared term, and any other term of
    ``weights`` unchanged.
    """
    if "param_norm" in norms and isinstance(norms["param_norm"], Mapping):
        weights = weights if weights is not None else norms.get("weights") or None
        norms = norms["param_norm"]
    norms = {k: float(v) for k, v in norms.items()}
    if reference not in norms:
        raise ValueError(f"static_weights: reference term {reference!r} not among the measured terms {sorted(norms)}")
    w_ref = float((weights or {}).get(reference, 1.0))
    out = {k: float(v) for k, v in (weights or {}).items()}
    out[reference] = w_ref
    for term, share in _shares_for(norms, reference, shares).items():
        if term not in norms:
            raise ValueError(f"static_weights: no gradient norm for term {term!r}; measured: {sorted(norms)}")
        if share < 0 or not math.isfinite(share):
            raise ValueError(f"static_weights: share for {term!r} must be a finite number >= 0, got {share}")
        if not norms[term] > 0 or not math.isfinite(norms[term]):
            raise ValueError(f"static_weights: gradient norm of {term!r} is {norms[term]}; cannot scale it")
        out[term] = share * w_ref * norms[reference] / norms[term]
    return out


def loss_weights(weights: Mapping[str, float], balancing: str | None, balance: Mapping, profile: Mapping,
                 device: str | torch.device) -> tuple[dict[str, torch.Tensor], "GradNormBalancer | None"]:
    """The trainer's loss weights (0-dim tensors on ``device``) and the balancer that moves them.

    ``balancing``: the objective's ``weights`` entry, absent/``"fixed"`` (weights stay as given) or
    ``"gradnorm"`` (online, with ``train.balance`` over defaults from the profile's notebook-04
    ``weights`` section: ``reference``, ``target_share``, ``balance_every``).
    """
    if balancing in (None, "fixed"):
        return {k: torch.tensor(v, device=device) for k, v in weights.items()}, None
    if balancing != "gradnorm":
        raise ConfigError(f"train.objective.weights must be 'gradnorm' (or absent), got {balancing!r}")
    b = {"reference": profile.get("reference", "charbonnier"), "shares": profile.get("target_share", 0.1),
         "every": profile.get("balance_every", 10), "ema": 0.9, "clip": [1e-6, 1e6], **balance}
    balancer = GradNormBalancer(weights, reference=b["reference"], shares=b["shares"], every=b["every"],
                                ema=b["ema"], clip=tuple(b["clip"]), device=device)
    return balancer.weights, balancer


class GradNormBalancer:
    """Online weights from an EMA of per-term gradient norms (all state on the training device).

    Every ``every`` steps the trainer passes the unweighted norms; the EMA is updated
    (non-finite measurements are ignored) and each non-reference term's weight is set to
    ``clip(share * w_ref * ema_ref / ema_k, lo, hi)``. ``weights`` holds 0-dim tensors, so the
    training step can multiply by them without a host sync.
    """

    def __init__(self, weights: Mapping[str, float], *, reference: str = "charbonnier",
                 shares: float | Mapping[str, float] = 0.1, every: int = 10, ema: float = 0.9,
                 clip: tuple[float, float] = (1e-6, 1e6), device: str | torch.device = "cpu"):
        if reference not in weights:
            raise ConfigError(f"train.balance.reference {reference!r} is not a term of the objective {sorted(weights)}")
        if int(every) < 1 or not 0.0 <= float(ema) < 1.0:
            raise ConfigError(f"train.balance needs every >= 1 and 0 <= ema < 1, got every={every}, ema={ema}")
        lo, hi = (float(c) for c in clip)
        if not 0 <= lo <= hi:
            raise ConfigError(f"train.balance.clip must be [lo, hi] with 0 <= lo <= hi, got {clip}")
        self.reference, self.every, self.decay, self.clip = reference, int(every), float(ema), (lo, hi)
        self.shares = _shares_for(weights, reference, shares)
        unknown = set(self.shares) - set(weights)
        if unknown:
            raise ConfigError(f"train.balance.shares names terms {sorted(unknown)} not in the objective "
                              f"{sorted(weights)}")
        self.weights = {k: torch.tensor(float(v), device=device) for k, v in weights.items()}
        self.norm_ema = {k: torch.zeros((), device=device) for k in weights}
        self.seen = {k: torch.zeros((), device=device) for k in weights}

    def due(self, step: int) -> bool:
        return step % self.every == 0

    @torch.no_grad()
    def update(self, norms: Mapping[str, torch.Tensor]) -> None:
        for k, n in norms.items():
            if k not in self.norm_ema:
                continue
            n = n.detach().float().to(self.norm_ema[k].device)
            ok = torch.isfinite(n)
            blended = torch.where(self.seen[k] > 0, self.decay * self.norm_ema[k] + (1 - self.decay) * n, n)
            self.norm_ema[k] = torch.where(ok, blended, self.norm_ema[k])
            self.seen[k] = self.seen[k] + ok.float()
        ref = self.norm_ema[self.reference]
        for k, share in self.shares.items():
            target = share * self.weights[self.reference] * ref / self.norm_ema[k].clamp_min(EPS)
            ready = (self.seen[k] > 0) & (self.seen[self.reference] > 0)
            self.weights[k] = torch.where(ready, target.clamp(*self.clip), self.weights[k])

    def weights_as_floats(self) -> dict[str, float]:
        """Host copy of the weights (one sync; call at log intervals)."""
        values = torch.stack(list(self.weights.values())).tolist()
        return dict(zip(self.weights, values))

    def state_dict(self) -> dict:
        return {"weights": {k: v.cpu() for k, v in self.weights.items()},
                "norm_ema": {k: v.cpu() for k, v in self.norm_ema.items()},
                "seen": {k: v.cpu() for k, v in self.seen.items()}}

    def load_state_dict(self, state: Mapping) -> None:
        for name in ("weights", "norm_ema", "seen"):
            current = getattr(self, name)
            for k, v in state[name].items():
                if k in current:
                    current[k] = v.to(current[k].device)


def project_conflicts(grads: list[torch.Tensor | None], reference: list[torch.Tensor | None]
                      ) -> tuple[list[torch.Tensor | None], torch.Tensor]:
    """Remove from ``grads`` its component opposing ``reference`` (only when their dot product < 0).

    Returns ``(projected grads, conflict)`` where ``conflict`` is a 0-dim float tensor (1.0 when a
    projection happened). No host sync: the decision is a ``torch.where``.
    """
    pairs = [(g, r) for g, r in zip(grads, reference) if g is not None and r is not None]
    if not pairs:
        return list(grads), torch.zeros(())
    dot = sum((g.float() * r.float()).sum() for g, r in pairs)
    ref_sq = sum((r.float() ** 2).sum() for _, r in pairs)
    coef = torch.where(dot < 0, dot / ref_sq.clamp_min(EPS), torch.zeros_like(dot))
    out = [g if (g is None or r is None) else (g - (coef * r.float()).to(g.dtype)) for g, r in zip(grads, reference)]
    return out, (dot < 0).float()


def projected_backward(terms: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor],
                       params: list[torch.Tensor], reference: str, accum: int, device) -> torch.Tensor:
    """Backward of the weighted terms (divided by ``accum``) into ``params``' ``.grad``, each
    non-reference term's gradient first projected by :func:`project_conflicts` against the
    reference's. Returns the fraction of terms that were projected (0-dim, on ``device``)."""
    weighted = {k: weights[k] * v / accum for k, v in terms.items()}
    grads = term_gradients(weighted, params, retain_graph=True)
    ref = grads[reference]
    conflicts = torch.zeros((), device=device)
    summed = [g.clone() if g is not None else None for g in ref]
    for k, g in grads.items():
        if k == reference:
            continue
        g, c = project_conflicts(g, ref)
        conflicts = conflicts + c.to(device)
        summed = [a if b is None else (b.clone() if a is None else a + b) for a, b in zip(summed, g)]
    for p, g in zip(params, summed):
        if g is not None:
            p.grad = g if p.grad is None else p.grad + g
    return conflicts / max(1, len(grads) - 1)
