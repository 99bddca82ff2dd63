"""Statistics of the verdicts on constructed tables with known answers, null cases included."""
import numpy as np
import pandas as pd
import pytest

from nriqa.analysis import stats
from nriqa.errors import UserError


def _scores(effects: dict[str, float], *, seeds=(0, 1, 2), clips=3, frames=2, base=0.5, noise=0.0, rng=None):
    """Tidy scores of a baseline (seed 0) and arms whose PSNR-like score is base * (1 + effect)."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for c in range(clips):
        for f in range(frames):
            rows.append(dict(run="baseline", seed=0, model="m", dataset="d", clip=f"c{c}", frame=f,
                             measure="psnr", score=base))
            for run, e in effects.items():
                for s in seeds:
                    rows.append(dict(run=run, seed=s, model="m", dataset="d", clip=f"c{c}", frame=f, measure="psnr",
                                     score=base * (1 + e) + (noise * rng.normal() if noise else 0.0)))
    return pd.DataFrame(rows)


def test_paired_gains_follow_the_relative_gain_formula_and_sign():
    df = _scores({"up": 0.1, "down": -0.2})
    g = stats.paired_gains(df, higher_better={"psnr": True})
    assert set(g.columns) >= {"run", "seed", "clip", "gain"} and "frame" not in g.columns
    assert len(g) == 2 * 3 * 3
    assert np.allclose(g[g.run == "up"].gain, 0.1) and np.allclose(g[g.run == "down"].gain, -0.2)
    lower = stats.paired_gains(df, higher_better={"psnr": False})          # a lower-better measure flips the sign
    assert np.allclose(lower[lower.run == "up"].gain, -0.1)
    per_frame = stats.paired_gains(df, unit="frame", higher_better={"psnr": True})
    assert len(per_frame) == 2 * 3 * 3 * 2
    with pytest.raises(UserError, match="baseline"):
        stats.paired_gains(df[df.run != "baseline"], higher_better={"psnr": True})
    with pytest.raises(UserError, match="not in the scores"):
        stats.paired_gains(df, measures=["ssim"])


def test_paired_change_subtracts_the_baseline_on_the_same_clip():
    t = pd.DataFrame({"run": ["baseline", "baseline", "a", "a", "a", "a"], "seed": [0, 0, 0, 0, 1, 1],
                      "clip": ["x", "y", "x", "y", "x", "y"], "value": [1.0, 2.0, 1.5, 2.5, 1.25, 2.0]})
    ch = stats.paired_change(t)
    assert ch.sort_values(["seed", "clip"])["change"].tolist() == [0.5, 0.5, 0.25, 0.0]


def _null_rate(shape, comps, n=300, n_boot=200):
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(n):
        s, c = shape
        x = (rng.normal(0, comps[0], (s, 1)) + rng.normal(0, comps[1], (1, c)) + rng.normal(0, comps[2], (s, c)))
        lo, hi = stats.bootstrap(x, rng=rng, n_boot=n_boot).interval()
        hits += (lo > 0) or (hi < 0)
    return hits / n


@pytest.mark.parametrize("shape,comps", [((3, 3), (1.0, 0.0, 0.1)),     # seed spread dominates
                                         ((3, 3), (0.0, 1.0, 0.1)),     # clip spread dominates
                                         ((2, 4), (1.0, 0.3, 0.3)),
                                         ((5, 3), (0.1, 0.1, 1.0))])    # interaction noise
def test_no_true_effect_rarely_excludes_zero(shape, comps):
    """Under no true effect the 95% interval excludes zero at most ~7% of the time (the old rule,
    effect > 2 x one reseeded difference, did so 13-28% of the time)."""
    assert _null_rate(shape, comps) <= 0.07


def test_a_big_true_effect_is_detected_and_one_seed_gives_no_interval():
    rng = np.random.default_rng(2)
    x = 1.0 + rng.normal(0, 0.1, (3, 1)) + rng.normal(0, 0.1, (1, 3)) + rng.normal(0, 0.1, (3, 3))
    est = stats.bootstrap(x, rng=rng, n_boot=500)
    lo, hi = est.interval()
    assert 0 < lo < 1.0 < hi and est.n == "3 seeds x 3 clips"
    one = stats.bootstrap(x[:1], rng=rng, n_boot=500)
    assert np.isnan(one.interval()[0]) and one.n == "1 seed x 3 clips"


def test_frames_are_resampled_within_clips():
    rng = np.random.default_rng(3)
    x = 0.5 + rng.normal(0, 0.05, (3, 3, 4))
    est = stats.bootstrap(x, rng=rng, n_boot=300)
    assert est.n == "3 seeds x 3 clips x 4 frames per clip" and est.interval()[0] > 0


def test_seed_bootstrap_resamples_seeds_and_keeps_the_units_fixed():
    """Units (discriminator kinds) that differ a lot but average the same on every seed leave no
    uncertainty: only the seeds are a sample. With seed spread, the interval is the t interval of
    the per-seed means (df = seeds - 1); one seed gives none."""
    rng = np.random.default_rng(5)
    kinds = np.array([-0.4, 0.1, 0.2, 0.5])                      # mean 0.1 on every seed
    fixed = stats.seed_bootstrap(np.tile(kinds, (3, 1)), rng=rng, n_boot=300)
    assert fixed.effect == pytest.approx(0.1) and fixed.interval() == pytest.approx((0.1, 0.1))
    per_seed = np.array([0.0, 0.1, 0.3])
    est = stats.seed_bootstrap(per_seed[:, None] + kinds - kinds.mean(), rng=rng, n_boot=4000)
    assert est.effect == pytest.approx(per_seed.mean()) and est.df == 2 and (est.n_seeds, est.n_clips) == (3, 4)
    assert est.se == pytest.approx(per_seed.std(ddof=1) / np.sqrt(3), rel=0.06)
    one = stats.seed_bootstrap(np.array([[0.2, 0.4]]), rng=rng, n_boot=300)
    assert one.effect == pytest.approx(0.3) and np.isnan(one.interval()[0])
    with pytest.raises(UserError, match="finite"):
        stats.seed_bootstrap(np.array([[np.nan, np.nan], [0.1, 0.2]]), rng=rng, n_boot=300)


def test_seed_bootstrap_null_rate_is_low():
    """No true effect, three seeds, four fixed kinds with their own offsets: the 95% interval
    excludes zero at most ~7% of the time."""
    rng = np.random.default_rng(6)
    hits = 0
    for _ in range(400):
        x = rng.normal(0, 1.0, (3, 1)) + np.array([0.5, -0.5, 0.2, -0.2]) + rng.normal(0, 0.3, (3, 4))
        lo, hi = stats.seed_bootstrap(x, rng=rng, n_boot=200).interval()
        hits += (lo > 0) or (hi < 0)
    assert hits / 400 <= 0.07


def test_contrast_pairs_arms_on_seed_and_clip():
    """Two arms that share a large per-clip and per-seed offset differ by a constant: the paired
    difference is resolved although each arm alone varies a lot."""
    rng = np.random.default_rng(4)
    rows = []
    for s in range(3):
        for c in range(4):
            shared = rng.normal(0, 1.0)
            rows += [dict(run="a", seed=s, clip=f"c{c}", gain=shared + 0.01),
                     dict(run="b", seed=s, clip=f"c{c}", gain=shared)]
    t = pd.DataFrame(rows)
    d = stats.contrast(t, ["a"], ["b"], rng=rng, n_boot=300)
    assert d.effect == pytest.approx(0.01) and d.interval()[0] > 0
    alone = stats.contrast(t, ["a"], rng=rng, n_boot=300).interval()
    assert alone[0] < 0 < alone[1]
    with pytest.raises(UserError, match="not in the table"):
        stats.contrast(t, ["zzz"], rng=rng, n_boot=300)


def test_tost_passes_for_a_null_effect_and_fails_at_the_margin():
    rng = np.random.default_rng(5)
    small = stats.bootstrap(rng.normal(0, 0.01, (3, 1)) + rng.normal(0, 0.01, (3, 4)), rng=rng, n_boot=400)
    p, passed = stats.tost(small, 0.05)
    assert passed and p < 0.05
    hits = 0
    for _ in range(150):      # true effect on the margin: passes at most ~alpha of the time
        x = 0.05 + rng.normal(0, 0.01, (3, 1)) + rng.normal(0, 0.01, (1, 4)) + rng.normal(0, 0.01, (3, 4))
        hits += stats.tost(stats.bootstrap(x, rng=rng, n_boot=200), 0.05)[1]
    assert hits / 150 <= 0.07
    one_sided = stats.tost(stats.bootstrap(-1 + rng.normal(0, 0.01, (3, 3)), rng=rng, n_boot=200), 0.05,
                           lower=-np.inf)
    assert one_sided[1]        # a large decrease is "no increase beyond the margin"
    with pytest.raises(UserError):
        stats.tost(small, 0.0)
    constant = stats.bootstrap(np.zeros((2, 2)), rng=rng, n_boot=200)   # an artifact never detected
    p0, passed0 = stats.tost(constant, 0.05)        # no spread: nothing shown either way
    assert constant.se == 0 and np.isnan(p0) and not passed0
    p1, passed1 = stats.tost(stats.bootstrap(np.ones((2, 2)), rng=rng, n_boot=200), 0.05)
    assert np.isnan(p1) and not passed1


def test_p_value_agrees_with_the_interval():
    """Two-sided p < 1 - level exactly when the level interval excludes the null; the one-sided
    p-values split it; no interval or no spread gives NaN."""
    rng = np.random.default_rng(8)
    for _ in range(40):
        est = stats.bootstrap(rng.normal(rng.normal(0, 0.5), 1.0, (3, 3)), rng=rng, n_boot=200)
        for null, level in ((0.0, 0.95), (0.3, 0.95), (-0.2, 0.9)):
            lo, hi = est.interval(level)
            assert (est.p_value(null) < 1 - level) == (lo > null or hi < null)
        up, down = est.p_value(alternative="greater"), est.p_value(alternative="less")
        assert up + down == pytest.approx(1.0) and est.p_value() == pytest.approx(2 * min(up, down))
        assert (up < 0.5) == (est.effect > 0)
    hand = stats.Estimate(effect=0.3, se=0.1, df=4.0, n_seeds=3, n_clips=3)
    assert hand.p_value() == pytest.approx(0.03994, abs=1e-4)            # 2 * P(T_4 > 3)
    assert hand.p_value(0.3) == pytest.approx(1.0) and hand.p_value(0.6, "less") == pytest.approx(0.03994 / 2, abs=1e-4)
    assert np.isnan(stats.bootstrap(np.zeros((3, 3)), rng=rng, n_boot=200).p_value())
    rounding = np.full((3, 3, 4), 0.1)
    rounding[0, 1, 2] = np.nan                 # one repeated value: se of rounding size, not evidence
    assert np.isnan(stats.bootstrap(rounding, rng=rng, n_boot=200).p_value())
    assert not stats.tost(stats.bootstrap(rounding, rng=rng, n_boot=200), 0.5)[1]
    assert np.isnan(stats.bootstrap(np.ones((1, 3)), rng=rng, n_boot=200).p_value())
    with pytest.raises(UserError, match="alternative"):
        hand.p_value(alternative="both")


def test_spearman_interval_is_wide_for_few_points_and_null_rate_is_low():
    rng = np.random.default_rng(6)
    tiny = stats.spearman_interval([1, 2, 3, 4], [1, 2, 3, 4], rng=rng, n_boot=300)
    assert tiny.rho == 1.0 and np.isnan(tiny.lo)                 # 4 points: no interval
    hits = 0
    for _ in range(200):
        c = stats.spearman_interval(rng.normal(size=7), rng.normal(size=7), rng=rng, n_boot=200)
        hits += (c.lo > 0) or (c.hi < 0)
    assert hits / 200 <= 0.07
    x = np.arange(30.0)
    strong = stats.spearman_interval(x, x + rng.normal(0, 2, 30), rng=rng, n_boot=300)
    assert strong.lo > 0.5 and strong.n == 30


def test_bootstrap_is_reproducible_with_a_seeded_generator():
    x = np.random.default_rng(7).normal(size=(3, 3))
    a = stats.bootstrap(x, rng=np.random.default_rng(0), n_boot=200)
    b = stats.bootstrap(x, rng=np.random.default_rng(0), n_boot=200)
    assert a == b
    with pytest.raises(UserError, match="n_boot"):
        stats.bootstrap(x, rng=np.random.default_rng(0), n_boot=10)
