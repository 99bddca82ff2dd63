"""Null studies shaped like the demo: how often do the kit's decisions fire when nothing is there?

Each simulated study pairs two arms on 3 seeds x 3 clips; an arm's score on (seed, clip) is a
clip effect shared by both arms (it cancels in the paired contrast) plus the arm's own seed
effect, arm-by-clip effect and residual, drawn with variances ``ratio = (seed, clip, residual)``.
The contrast ``A - B`` goes through :func:`stats.bootstrap` and is decided the way a claim is:

- a *primary* row: one directional decision at 95 % (the interval excludes 0, either way);
- a family of *secondary* rows decided together on Benjamini-Hochberg q < 0.05: directional rows
  with true effect 0 (two-sided :meth:`Estimate.p_value`) and equivalence rows whose true effect
  sits exactly on the margin (TOST p; passing is a false discovery). Every decision is false, so
  the false-discovery proportion of a study is 1 when anything is decided.

Both rates must stay at most 5 % plus two Monte-Carlo standard errors, ``0.05 + 2 sqrt(0.05 *
0.95 / N)`` for ``N`` studies. The data are drawn vectorised; each study is decided with the
kit's own functions.
"""
import math

import numpy as np
import pytest

from nriqa.analysis import stats
from nriqa.analysis.multiplicity import bh_qvalues

RATIOS = [(1.0, 1.0, 1.0), (1.0, 0.1, 0.1), (0.1, 1.0, 0.1), (0.1, 0.1, 1.0)]
SHAPE = (3, 3)
ALPHA = 0.05


def tolerance(n: int, rate: float = ALPHA) -> float:
    """The largest acceptable observed rate: nominal plus two Monte-Carlo standard errors."""
    return rate + 2 * math.sqrt(rate * (1 - rate) / n)


def null_contrasts(rng: np.random.Generator, n: int, ratio, shape=SHAPE, shared_clip: float = 4.0) -> np.ndarray:
    """``(n, seeds, clips)`` paired contrasts ``A - B`` of two arms with no true difference."""
    s, c = shape
    sd = np.sqrt(np.asarray(ratio, float))
    clip = rng.normal(0, shared_clip, (n, 1, 1, c))                   # the clip's content: both arms
    arm = (rng.normal(0, sd[0], (n, 2, s, 1)) + rng.normal(0, sd[1], (n, 2, 1, c))
           + rng.normal(0, sd[2], (n, 2, s, c)))
    scores = clip + arm
    return scores[:, 0] - scores[:, 1]


def mean_sd(ratio, shape=SHAPE) -> float:
    """The true standard deviation of the mean of one null contrast (twice each arm's variance)."""
    s, c = shape
    v = 2 * (ratio[0] / s + ratio[1] / c + ratio[2] / (s * c))
    return math.sqrt(v)


def primary_rate(ratio, n: int, *, n_boot: int = 200, seed: int = 0) -> float:
    """Share of null studies whose 95 % interval of the contrast excludes 0."""
    rng = np.random.default_rng(seed)
    hits = 0
    for x in null_contrasts(rng, n, ratio):
        lo, hi = stats.bootstrap(x, rng=rng, n_boot=n_boot).interval(0.95)
        hits += bool(lo > 0 or hi < 0)
    return hits / n


def family_fdr(ratio, n: int, *, n_dir: int = 20, n_equiv: int = 10, n_boot: int = 200, seed: int = 0,
               margin_sds: float = 4.0) -> float:
    """Mean false-discovery proportion of ``n`` null studies, each deciding ``n_dir`` directional
    rows (true effect 0) and ``n_equiv`` equivalence rows (true effect on the margin, the margin
    ``margin_sds`` true standard deviations of the mean, so the far bound never helps) on BH q < 0.05."""
    rng = np.random.default_rng(seed)
    margin = margin_sds * mean_sd(ratio)
    data = null_contrasts(rng, n * (n_dir + n_equiv), ratio).reshape(n, n_dir + n_equiv, *SHAPE)
    fdp = np.empty(n)
    for i, study in enumerate(data):
        p = np.empty(n_dir + n_equiv)
        for j, x in enumerate(study):
            if j < n_dir:
                p[j] = stats.bootstrap(x, rng=rng, n_boot=n_boot).p_value()
            else:
                p[j] = stats.tost(stats.bootstrap(x + margin, rng=rng, n_boot=n_boot), margin)[0]
        decided = np.nan_to_num(bh_qvalues(p), nan=1.0) < ALPHA
        fdp[i] = decided.sum() / max(decided.sum(), 1)                 # every decision here is false
    return float(fdp.mean())


@pytest.mark.parametrize("ratio", RATIOS)
def test_a_primary_row_decides_in_at_most_5_percent_of_null_studies(ratio):
    n = 2000
    rate = primary_rate(ratio, n)
    assert rate <= tolerance(n), f"{ratio}: {rate:.3f} of null studies decided (tolerance {tolerance(n):.3f})"


@pytest.mark.parametrize("ratio", RATIOS)
def test_secondary_rows_on_bh_keep_the_false_discovery_rate(ratio):
    n = 200
    fdr = family_fdr(ratio, n)
    assert fdr <= tolerance(n), f"{ratio}: false-discovery rate {fdr:.3f} (tolerance {tolerance(n):.3f})"


def test_the_simulation_can_fail():
    """The same interval on the normal quantile instead of Student's t (the seeds' few degrees of
    freedom ignored) fires far too often when seeds dominate: the tolerance above would catch it."""
    rng = np.random.default_rng(1)
    n = 600
    hits = 0
    for x in null_contrasts(rng, n, (1.0, 0.1, 0.1)):
        est = stats.bootstrap(x, rng=rng, n_boot=200)
        hits += abs(est.effect) > 1.96 * est.se
    assert hits / n > tolerance(n)


def test_the_claims_tables_decide_null_studies_as_rarely():
    """The same null studies through the verdict code itself: a pooled primary row
    (:func:`claims.directional` on the mean of two NR arms against the baseline) and a family of
    secondary rows (:func:`claims.family`) -- per study, the primary decides at most ~5 % of the time
    and the family's false-discovery proportion stays at most ~5 %."""
    import pandas as pd

    from nriqa.analysis import claims

    n, ratio = 150, (1.0, 0.1, 0.1)        # the seed-dominated setting: the closest to nominal above
    rng = np.random.default_rng(7)
    s = claims.Settings(n_boot=200, seed=0)
    primary_hits, fdp = 0, []
    for study in null_contrasts(rng, n * 12, ratio).reshape(n, 12, *SHAPE):
        tables = [pd.DataFrame([{"run": f"r{k}", "seed": i, "clip": f"c{j}", "value": float(x[i, j])}
                                for i in range(SHAPE[0]) for j in range(SHAPE[1])]) for k, x in enumerate(study)]
        both = pd.concat(tables[:2], ignore_index=True)
        pooled = claims.directional("pooled", stats.contrast(both, ["r0", "r1"], rng=s.rng(), n_boot=s.n_boot,
                                                            value="value"), percent=False)
        rows = [claims.as_primary(pooled, "A1")] + [
            claims.directional(f"row {k}", stats.contrast(t, [f"r{k}"], rng=s.rng(), n_boot=s.n_boot, value="value"),
                               percent=False) for k, t in enumerate(tables[2:], start=2)]
        table = claims.family(rows)
        primary_hits += table[0].verdict != claims.INCONCLUSIVE
        decided = sum(v.verdict != claims.INCONCLUSIVE for v in table[1:])
        fdp.append(1.0 if decided else 0.0)
    assert primary_hits / n <= tolerance(n), f"pooled primary decided {primary_hits} of {n} null studies"
    assert float(np.mean(fdp)) <= tolerance(n), f"secondary false-discovery rate {np.mean(fdp):.3f}"
