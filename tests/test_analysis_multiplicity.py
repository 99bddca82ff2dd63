"""Benjamini-Hochberg q-values and the reach of a rank correlation over few points."""
import numpy as np
import pytest

from nriqa.analysis import stats
from nriqa.analysis.multiplicity import bh_qvalues, min_detectable_rho, rho_equivalence_reachable
from nriqa.errors import UserError


def test_bh_qvalues_by_hand_nan_left_out():
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4, the NaN does not count) -> 0.02, 0.02, 0.04, 0.04
    q = bh_qvalues([0.01, 0.04, 0.03, 0.005, np.nan])
    assert q[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02]) and np.isnan(q[4])
    assert bh_qvalues([0.5, 0.9]) == pytest.approx([0.9, 0.9])        # step-up: min over the larger ranks
    assert bh_qvalues([]).shape == (0,) and np.isnan(bh_qvalues([np.nan])).all()
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        bh_qvalues([0.1, 1.5])


def test_bh_qvalues_are_monotone_capped_and_match_the_step_up_rule():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = np.concatenate([rng.uniform(size=20), rng.uniform(0, 0.01, size=5)])
        q = bh_qvalues(p)
        order = np.argsort(p)
        assert (np.diff(q[order]) >= -1e-15).all() and (q >= p).all() and (q <= 1).all()
        ranked = np.sort(p)                                    # BH step-up at 0.05, directly
        below = np.nonzero(ranked <= 0.05 * np.arange(1, p.size + 1) / p.size)[0]
        k = below.max() + 1 if below.size else 0
        assert (q <= 0.05).sum() == k


def test_min_detectable_rho_at_the_floor_of_the_spearman_interval():
    # n = 10: t_7(0.975) * sqrt(1.06 / 7) = 0.9202 on Fisher's z; tanh -> 0.7260
    assert min_detectable_rho(10) == pytest.approx(0.72598, abs=1e-4)
    assert min_detectable_rho(5) == pytest.approx(0.99620, abs=1e-4)
    assert np.isnan(min_detectable_rho(4)) and np.isnan(min_detectable_rho(3))   # t_1: not even rho = 1
    assert min_detectable_rho(100) < min_detectable_rho(30) < min_detectable_rho(10)
    rng = np.random.default_rng(1)
    for _ in range(30):                       # below the threshold the interval always holds 0
        x, y = rng.normal(size=10), rng.normal(size=10)
        c = stats.spearman_interval(x, y, rng=rng, n_boot=200)
        if abs(c.rho) <= min_detectable_rho(10):
            assert c.lo <= 0 <= c.hi


def test_rho_equivalence_reachable():
    # rho = 0, n = 10, 90 %: half-width tanh(t_7(0.95) * sqrt(1.06 / 7)) = 0.627
    assert not rho_equivalence_reachable(10, 0.5) and rho_equivalence_reachable(10, 0.7)
    # n = 100: 0.172
    assert rho_equivalence_reachable(100, 0.2) and not rho_equivalence_reachable(100, 0.15)
    assert not rho_equivalence_reachable(3, 0.9)
    rng = np.random.default_rng(2)
    x = np.arange(100.0)
    c = stats.spearman_interval(x, rng.permutation(x), rng=rng, n_boot=300, level=0.90)
    assert np.arctanh(c.hi) - np.arctanh(c.lo) >= 2 * 0.17360 - 1e-9    # never narrower than the floor
    with pytest.raises(UserError, match="margin"):
        rho_equivalence_reachable(10, 0.0)
