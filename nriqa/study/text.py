"""How the study's sentences write numbers: every relative gain in percent, one way."""
from __future__ import annotations

import math


def pct(fraction: float, *, sign: bool = True) -> str:
    """A relative gain (a fraction, e.g. ``0.0163``) in percent: ``+1.63 %``; small ones keep two
    significant digits (``+0.056 %``, ``-0.0012 %``) instead of rounding to zero; ``sign=False``
    for magnitudes such as seed noise."""
    v = 100 * float(fraction)
    if not math.isfinite(v):
        return "nan"
    if v == 0:
        return "0 %"
    s = "+" if sign else ""
    return f"{v:{s}.2f} %" if abs(v) >= 1 else f"{v:{s}.2g} %"


#: gains closer than this (a fraction: 1e-6 = 0.0001 %) are read as tied in the sentences
GAIN_TIE = 1e-6


def tied(values, tol: float = GAIN_TIE) -> bool:
    """Whether ``values`` (finite numbers) lie within ``tol`` of each other: then a sentence says
    they are level instead of naming an arbitrary "largest" or "best" one."""
    vals = [float(v) for v in values if math.isfinite(float(v))]
    return len(vals) > 1 and max(vals) - min(vals) <= tol
