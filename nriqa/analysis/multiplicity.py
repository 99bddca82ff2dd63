"""Many rows, one error rate: Benjamini-Hochberg q-values and what a rank correlation can show.

A claim's *secondary* rows are decided together on :func:`bh_qvalues` (a row is decided when its
q-value is below the false-discovery rate, e.g. 0.05), so that the share of false decisions among
all decisions stays near that rate however many rows a claim has. :func:`min_detectable_rho` and
:func:`rho_equivalence_reachable` say, before looking at data, whether a rank correlation over
``n`` points can decide anything under :func:`nriqa.analysis.stats.spearman_interval`: at its
floor the standard error of Fisher's ``z = atanh(rho)`` is ``sqrt(1.06 / (n - 3))`` and the
quantile Student's t on ``n - 3`` degrees of freedom (the bootstrap one can only be larger, so
these are best cases).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as sps

from nriqa.errors import UserError

from .stats import RHO_CAP


def bh_qvalues(p: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of ``p``, same shape and order.

    ``q_(i) = min over j >= i of p_(j) * m / j`` for the ascending p-values ``p_(1) <= ... <=
    p_(m)``, capped at 1: monotone in ``p``, and ``q < alpha`` rejects exactly the rows of the BH
    step-up procedure at false-discovery rate ``alpha``. NaN entries (a row with no test, e.g. no
    interval) stay NaN and do not count in ``m``. Values outside ``[0, 1]`` raise :class:`UserError`.
    """
    arr = np.asarray(p, dtype=float)
    flat = arr.ravel()
    ok = ~np.isnan(flat)
    if ((flat[ok] < 0) | (flat[ok] > 1)).any():
        raise UserError(f"p-values must lie in [0, 1] (or be NaN); got {flat[ok][(flat[ok] < 0) | (flat[ok] > 1)]}")
    out = np.full(flat.shape, np.nan)
    vals = flat[ok]
    m = vals.size
    if m:
        order = np.argsort(vals, kind="stable")
        scaled = vals[order] * (m / np.arange(1, m + 1))          # exact at rank m: q = p
        q = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
        filled = np.empty(m)
        filled[order] = q
        out[ok] = filled
    return out.reshape(arr.shape)


def _floor_halfwidth(n: int, level: float) -> float:
    """``t_{n-3} * sqrt(1.06 / (n - 3))``: the half-width on Fisher's z scale at the floor."""
    if not 0 < level < 1:
        raise UserError(f"level must lie in (0, 1), got {level}")
    return float(sps.t.ppf(0.5 + level / 2, n - 3)) * math.sqrt(1.06 / (n - 3))


def min_detectable_rho(n: int, level: float = 0.95) -> float:
    """The smallest ``|rho|`` whose ``level`` interval of :func:`~nriqa.analysis.stats.spearman_interval`
    excludes 0 over ``n`` points, at the interval's floor: ``tanh(t_{n-3} * sqrt(1.06 / (n - 3)))``
    (a ``|rho|`` above it can be resolved, one at or below it cannot). In ``(0, 1)``; ``nan`` when
    ``n < 4`` (no interval) or when not even ``|rho| = 1`` (capped at 0.999) can exclude 0."""
    if n < 4:
        return float("nan")
    h = _floor_halfwidth(n, level)
    return math.tanh(h) if h < math.atanh(RHO_CAP) else float("nan")


def rho_equivalence_reachable(n: int, margin: float, level: float = 0.90) -> bool:
    """Whether an observed ``rho = 0`` over ``n`` points would give a ``level`` interval (at the
    floor of :func:`~nriqa.analysis.stats.spearman_interval`) strictly inside ``(-margin, margin)``
    -- the TOST of "no rank correlation beyond ``margin``" at ``alpha = (1 - level) / 2``. When it
    is ``False`` no data of that size can show equivalence. ``margin`` in ``(0, 1]``."""
    if not 0 < margin <= 1:
        raise UserError(f"a rank-correlation margin must lie in (0, 1], got {margin}")
    if n < 4:
        return False
    return math.tanh(_floor_halfwidth(n, level)) < margin
