"""Standardised changes: hand-computed values, robustness to a near-zero baseline, sign convention."""
import numpy as np
import pandas as pd
import pytest

from nriqa.analysis import stats
from nriqa.analysis.standardise import panel_effect, seed_spread, standardised_changes
from nriqa.errors import UserError


def _row(run, seed, clip, measure, score, frame=0):
    return dict(run=run, seed=seed, model="m", dataset="d", clip=clip, frame=frame, measure=measure, score=score)


def _tiny() -> pd.DataFrame:
    """Baseline and arm ``a``, 2 seeds x 2 clips; psnr (higher better), niqe (lower better)."""
    rows = [_row("baseline", 0, "c0", "psnr", 9.0), _row("baseline", 0, "c0", "psnr", 11.0, frame=1),  # mean 10
            _row("baseline", 1, "c0", "psnr", 12.0), _row("baseline", 0, "c1", "psnr", 20.0),
            _row("baseline", 1, "c1", "psnr", 21.0)]
    rows += [_row("baseline", s, c, "niqe", v) for s in (0, 1) for c, v in (("c0", 5.0), ("c1", 7.0))]
    for s, (p0, p1, n0, n1) in enumerate([(13.0, 20.0, 4.9, 7.1), (11.0, 22.0, 5.0, 6.8)]):
        rows += [_row("a", s, "c0", "psnr", p0), _row("a", s, "c1", "psnr", p1),
                 _row("a", s, "c0", "niqe", n0), _row("a", s, "c1", "niqe", n1)]
    df = pd.DataFrame(rows)
    return df.assign(higher_better=df["measure"].eq("psnr"))


def test_seed_spread_and_standardised_changes_by_hand():
    df = _tiny()
    spread = seed_spread(df, "baseline")
    # psnr: within-clip variances 2.0 (c0: 10, 12) and 0.5 (c1: 20, 21) -> sqrt(1.25)
    assert spread["psnr"] == pytest.approx(np.sqrt(1.25))
    # niqe: every seed alike -> the floor, 0.05 x the across-clip SD of (5, 7) = 0.05 sqrt(2)
    assert spread["niqe"] == pytest.approx(0.05 * np.sqrt(2))
    assert seed_spread(df, "baseline", floor=0.0)["niqe"] != seed_spread(df, "baseline", floor=0.0)["niqe"]  # NaN
    z = standardised_changes(df, spread).set_index(["seed", "clip", "measure"])["z"]
    s_p, s_n = np.sqrt(1.25), 0.05 * np.sqrt(2)
    assert z[0, "c0", "psnr"] == pytest.approx((13 - 11) / s_p)      # baseline c0 averaged over seeds: 11
    assert z[1, "c1", "psnr"] == pytest.approx((22 - 20.5) / s_p)
    assert z[0, "c0", "niqe"] == pytest.approx(0.1 / s_n)             # niqe fell: lower is better -> positive
    assert z[1, "c1", "niqe"] == pytest.approx(0.2 / s_n) and z[0, "c1", "niqe"] == pytest.approx(-0.1 / s_n)
    panel = panel_effect(standardised_changes(df, spread)).set_index(["seed", "clip"])["value"]
    assert panel[0, "c0"] == pytest.approx(np.median([2 / s_p, 0.1 / s_n]))
    assert list(panel_effect(standardised_changes(df, spread), how="mean").columns) == \
        ["run", "seed", "model", "dataset", "clip", "value"]


def test_sign_follows_the_direction_of_each_measure():
    df = _tiny().drop(columns="higher_better")
    spread = seed_spread(df, "baseline")
    up = standardised_changes(df, spread, higher_better={"psnr": True, "niqe": False})
    down = standardised_changes(df, spread, higher_better={"psnr": False, "niqe": True})
    assert np.allclose(up["z"], -down["z"])
    a = up.set_index(["seed", "clip", "measure"])["z"]
    assert a[0, "c0", "niqe"] > 0 and a[0, "c1", "niqe"] < 0         # 4.9 < 5 better, 7.1 > 7 worse


def _panel(rng, tiny_change: float) -> pd.DataFrame:
    """Baseline and arm ``a``, 3 seeds x 4 clips, five higher-better measures; ``tiny``'s baseline
    is near 0 (its relative gain runs to thousands of %), the arm adds ``tiny_change`` to it. The
    arm's seeds scatter (sd 1 % of the level, 0.005 for ``tiny``) around baseline + change."""
    levels = {"m1": 30.0, "m2": 0.8, "m3": 5.0, "m4": 60.0, "tiny": 0.001}
    change = {"m1": 0.3, "m2": 0.008, "m3": 0.05, "m4": -0.6, "tiny": tiny_change}
    rows = []
    for m, lvl in levels.items():
        sd = 0.005 if m == "tiny" else 0.01 * lvl
        for c in range(4):
            base = lvl * (1 + 0.2 * c)
            noise = sd * rng.normal(size=3)
            rows += [_row("baseline", s, f"c{c}", m, base) for s in range(3)]
            rows += [_row("a", s, f"c{c}", m, base + change[m] + noise[s]) for s in range(3)]
    return pd.DataFrame(rows).assign(higher_better=True)


def test_a_near_zero_baseline_cannot_dominate_the_standardised_panel():
    small, big = _panel(np.random.default_rng(0), 0.02), _panel(np.random.default_rng(0), 2.0)   # 100x
    tiny = stats.paired_gains(small, measures=["tiny"]).gain.mean()
    assert tiny > 10                                                   # over +1000 % on that measure alone
    rel = {k: stats.paired_gains(t).gain.mean() for k, t in (("small", small), ("big", big))}
    assert rel["big"] > 50 * rel["small"] > 0                         # the relative-gain panel mean explodes
    eff = {}
    for k, t in (("small", small), ("big", big)):
        spread = seed_spread(t, "a")                                     # the arm's seeds: the same in both
        eff[k] = panel_effect(standardised_changes(t, spread))["value"].mean()
        eff[k + "_mean"] = panel_effect(standardised_changes(t, spread), how="mean")["value"].mean()
    assert eff["small"] > 0 and abs(eff["big"] - eff["small"]) <= 0.1 * abs(eff["small"])   # one rank at most
    assert eff["big_mean"] > 10 * eff["small_mean"] > 0               # a mean over measures would not hold


def test_errors_name_the_problem():
    df = _tiny()
    with pytest.raises(UserError, match="one seed"):
        seed_spread(df[df.seed == 0], "baseline")
    with pytest.raises(UserError, match="not in the scores"):
        seed_spread(df, "zzz")
    with pytest.raises(UserError, match="no seed spread"):
        standardised_changes(df, pd.Series({"psnr": 1.0}))
    with pytest.raises(UserError, match="how"):
        panel_effect(standardised_changes(df, seed_spread(df, "baseline")), how="max")
