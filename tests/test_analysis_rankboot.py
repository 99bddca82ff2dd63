"""The asymmetry verdict's interval over measures, seeds and clips (nriqa.analysis.rankboot):
constructed tables with known answers, and a simulated false-positive rate under no association."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nriqa.analysis import claims
from nriqa.analysis.claims import AGREES, DISAGREES, INCONCLUSIVE, Settings
from nriqa.analysis.rankboot import cube_means, gain_cube, hierarchical_spearman
from nriqa.analysis.stats import spearman_interval
from nriqa.errors import UserError
from nriqa.study import assess_vs_optimize as study

S = Settings(n_boot=400)


def _table(cube: np.ndarray, names: list[str]) -> pd.DataFrame:
    m, k, c = cube.shape
    return pd.DataFrame([{"run": names[i], "seed": 10 + s, "model": "vsr", "dataset": "d", "clip": f"c{j}",
                          "gain": cube[i, s, j]} for i in range(m) for s in range(k) for j in range(c)])


def test_gain_cube_pads_missing_seeds_and_means_are_seed_then_clip():
    t = pd.DataFrame({"run": ["a"] * 4 + ["b"] * 2, "seed": [0, 0, 1, 1, 5, 5], "clip": ["x", "y"] * 3,
                      "gain": [1.0, 3.0, 5.0, 7.0, 2.0, 4.0]})
    cube = gain_cube(t, ["a", "b"])
    assert cube.shape == (2, 2, 2) and np.isnan(cube[1, 1]).all()
    assert cube_means(cube).tolist() == [4.0, 3.0]
    assert study.optimization_values({}, t) == {"a": 4.0, "b": 3.0}
    with pytest.raises(UserError, match="have no gains"):
        gain_cube(t, ["a", "zzz"])


def _null_tables(reps: int, m: int = 12, k: int = 5, c: int = 8, seed: int = 0):
    """No association between accuracy ``x`` and the measures' true gains, but each seed index
    (shared by every arm: the same data order) favours the high- or the low-accuracy measures at
    random, so a few seeds make the gains look correlated with ``x``."""
    rng = np.random.default_rng(seed)
    for _ in range(reps):
        x = rng.uniform(0.3, 1.0, m)
        xs = (x - x.mean()) / x.std()
        cube = (rng.normal(0, 0.01, m)[:, None, None] + rng.normal(0, 0.05, (m, k, c))
                + xs[:, None, None] * rng.normal(0, 0.05, k)[None, :, None])
        yield rng, x, cube


def test_null_rate_measures_only_is_too_high_and_over_seeds_is_not():
    old = new = 0
    reps = 150
    for rng, x, cube in _null_tables(reps):
        o = spearman_interval(x, cube_means(cube), rng=rng, n_boot=300)
        n = hierarchical_spearman(x, cube, rng=rng, n_boot=300)
        old += (o.lo > 0) or (o.hi < 0)
        new += (n.lo > 0) or (n.hi < 0)
    assert old / reps > 0.2           # the seeds' shared spread is averaged away, the interval too narrow
    assert new / reps <= 0.08         # nominal 5 %, with room for 150 tables


def test_null_rate_with_independent_seed_noise_stays_low():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(100):
        x = rng.uniform(0.3, 1.0, 8)
        r = hierarchical_spearman(x, rng.normal(0, 0.05, (8, 3, 3)), rng=rng, n_boot=300)
        hits += (r.lo > 0) or (r.hi < 0)
    assert hits / 100 <= 0.08


def test_strong_correlation_over_seeds_is_decided_both_ways():
    rng = np.random.default_rng(2)
    names = [f"m{i}" for i in range(10)]
    x = np.linspace(0.3, 0.95, 10)
    cube = 0.1 * x[:, None, None] + rng.normal(0, 0.003, (10, 3, 3))   # seed spread well below the spacing
    srcc = dict(zip(names, x))
    pos = claims.asymmetry_over_seeds(srcc, _table(cube, names), S)
    assert pos.verdict == DISAGREES and pos.effect > 0.9 and pos.lo > 0
    assert pos.n == "10 measures x 3 seeds x 3 clips" and "seeds and clips resampled" in pos.rule
    neg = claims.asymmetry_over_seeds(srcc, _table(-cube, names), S)
    assert neg.verdict == AGREES and neg.hi < 0 and neg.effect == pytest.approx(-pos.effect)


def test_few_measures_are_never_agrees():
    names = list("abcd")
    cube = -np.arange(4.0)[:, None, None] + np.zeros((4, 3, 3))
    srcc = dict(zip(names, [0.1, 0.2, 0.3, 0.4]))
    four = claims.asymmetry_over_seeds(srcc, _table(cube, names), S)     # rho = -1, but 4 points: no interval
    assert four.verdict == INCONCLUSIVE and four.effect == pytest.approx(-1.0) and np.isnan(four.lo)
    two = claims.asymmetry_over_seeds({"a": 0.1, "b": 0.2}, _table(cube, names), S)
    assert two.verdict == INCONCLUSIVE and two.n == "2 measures"
