"""The claim verdicts on constructed tables with known answers: agrees / disagrees only when the
95% interval excludes zero, equivalence by TOST, inconclusive otherwise (null cases included)."""
import math

import numpy as np
import pandas as pd
import pytest

from nriqa.analysis import claims
from nriqa.analysis.claims import AGREES, DISAGREES, EQUIVALENT, INCONCLUSIVE
from nriqa.analysis.stats import Correlation, Estimate
from nriqa.errors import ConfigError

S = claims.Settings(n_boot=300, seed=0, equivalence_margin=0.01, artifact_margin=0.05)


def _gains(effects: dict[str, float], *, seeds=3, clips=3, spread=0.002, seed=0, value="gain") -> pd.DataFrame:
    """run, seed, clip, <value>: each arm's true effect plus seed, clip and cell noise."""
    rng = np.random.default_rng(seed)
    clip_fx = rng.normal(0, spread, clips)
    rows = []
    for run, e in effects.items():
        seed_fx = rng.normal(0, spread, seeds)
        for s in range(seeds):
            for c in range(clips):
                rows.append({"run": run, "seed": s, "clip": f"c{c}",
                             value: e + seed_fx[s] + clip_fx[c] + rng.normal(0, spread)})
    return pd.DataFrame(rows)


def test_directional_reads_the_interval_not_the_sign():
    est = lambda e, se: Estimate(e, se, 4.0, 3, 3)  # noqa: E731
    assert claims.directional("c", est(0.02, 0.002)).verdict == AGREES
    assert claims.directional("c", est(-0.02, 0.002)).verdict == DISAGREES
    assert claims.directional("c", est(0.002, 0.002)).verdict == INCONCLUSIVE      # interval spans 0
    assert claims.directional("c", est(-0.02, 0.002), expect_positive=False).verdict == AGREES
    no_interval = claims.directional("c", Estimate(0.5, float("nan"), float("nan"), 1, 3))
    assert no_interval.verdict == INCONCLUSIVE and no_interval.n == "1 seed x 3 clips"


def test_null_tables_rarely_agree_or_disagree():
    """Many arms with no true difference: the discriminator-ranking verdict is agrees/disagrees
    at most ~7% of the time."""
    kinds = {"v": "vanilla", "p": "patchgan"}
    decided = 0
    n = 120
    for i in range(n):
        g = _gains({"v": 0.0, "p": 0.0}, seed=100 + i, spread=0.01)
        v = claims.discriminator_ranking(g, kinds, claims.Settings(n_boot=200, seed=i))
        decided += v[0].verdict != INCONCLUSIVE
    assert decided / n <= 0.07


def test_discriminator_ranking_groups_patch_level_and_convolutional_kinds():
    kinds = {"va": "vanilla", "pa": "patchgan", "un": "unet", "vi": "vit"}
    good = claims.discriminator_ranking(_gains({"va": -0.01, "pa": 0.02, "un": 0.01, "vi": -0.03}), kinds, S)
    assert [v.verdict for v in good] == [AGREES, AGREES]
    assert good[0].effect == pytest.approx(0.025, abs=0.004) and good[0].n == "3 seeds x 3 clips"
    bad = claims.discriminator_ranking(_gains({"va": 0.02, "pa": -0.01, "un": -0.01, "vi": 0.05}), kinds, S)
    assert [v.verdict for v in bad] == [DISAGREES, DISAGREES]
    assert claims.discriminator_ranking(_gains({"pa": 0.1}), {"pa": "patchgan"}, S) == []   # nothing to compare


def test_artifact_suppression_is_paired_on_seed_and_clip():
    t = pd.concat([_gains({"without GAN": 0.30, "with GAN": 0.10}, value="value").assign(measure="chroma_noise"),
                   _gains({"without GAN": 0.50, "with GAN": 0.50}, value="value", spread=0.05)
                   .assign(measure="edge_artifacts")])
    v = claims.artifact_suppression(t, without="without GAN", with_gan="with GAN",
                                    measures=["chroma_noise", "edge_artifacts"], term="dbcnn", s=S)
    assert [x.verdict for x in v] == [AGREES, INCONCLUSIVE] and not v[0].percent


def test_equivalence_claims_use_tost_against_the_margin():
    small = _gains({"t": 0.0}, spread=0.002)
    v = claims.no_effect("c", claims.contrast(small, ["t"], rng=S.rng(), n_boot=300), 0.05, percent=False)
    assert v.verdict == EQUIVALENT and "TOST" in v.rule
    big = _gains({"t": 0.3}, spread=0.002)
    assert claims.no_effect("c", claims.contrast(big, ["t"], rng=S.rng(), n_boot=300), 0.05).verdict == DISAGREES
    noisy = _gains({"t": 0.0}, spread=0.2)
    assert claims.no_effect("c", claims.contrast(noisy, ["t"], rng=S.rng(), n_boot=300), 0.05).verdict == INCONCLUSIVE


def test_artifact_free_terms_pass_a_one_sided_equivalence():
    t = pd.concat([_gains({"clean": -0.2, "dirty": 0.4}, value="change").assign(measure=m)
                   for m in ("chroma_noise", "blur")])
    v = claims.artifact_free(t, ["clean", "dirty"], S)
    assert [x.verdict for x in v] == [EQUIVALENT, EQUIVALENT, DISAGREES, DISAGREES]
    assert claims.artifact_free_terms(v, ["clean", "dirty"]) == ["clean"]


def test_naive_nr_tuning_rows_name_each_part_of_the_claim():
    nr, own, fr = _gains({"nr": 0.05}), _gains({"nr": 0.2}), _gains({"nr": -0.03})
    arts = _gains({"nr": 0.4}, value="change").assign(measure="chroma_noise")
    v = claims.naive_nr_tuning("nr", held_out_nr=nr, own=own, fr=fr, artifacts=arts, s=S)
    assert [x.verdict for x in v] == [AGREES] * 4
    assert "chroma noise" in v[3].claim
    assert [x.verdict for x in claims.naive_nr_tuning("nr", held_out_nr=_gains({"nr": -0.05}), own=None,
                                                      fr=None, artifacts=None, s=S)] == [DISAGREES]


def test_lpips_claims():
    lp = _gains({"nr": -0.1, "ok": 0.0}, spread=0.001)
    verdicts = claims.lpips_judges_nr_badly(lp, ["nr", "ok"], "st-lpips-alex", S)
    assert [v.verdict for v in verdicts] == [AGREES, INCONCLUSIVE]
    g = _gains({"nr": 0.0, "nr + lpips": 0.02})
    arts = _gains({"nr": 0.4, "nr + lpips": 0.1}, value="change").assign(measure="chroma_noise")
    verdicts = claims.lpips_mitigates("nr + lpips", "nr", gains=g, artifacts=arts, s=S)
    assert [v.verdict for v in verdicts] == [AGREES, AGREES]


def test_asymmetry_is_never_agrees_by_default():
    t = pd.DataFrame({"measure": list("abcd"), "srcc": [0.9, 0.5, 0.3, 0.1], "gain": [0.001, 0.01, 0.02, 0.03]})
    tiny = claims.asymmetry(t, S)
    assert tiny.verdict == INCONCLUSIVE and tiny.n == "4 measures"            # 4 points: no interval
    assert claims.asymmetry(t.head(2), S).verdict == INCONCLUSIVE
    rng = np.random.default_rng(3)
    x = np.linspace(0, 1, 30)
    pos = pd.DataFrame({"measure": [f"m{i}" for i in range(30)], "srcc": x, "gain": x + rng.normal(0, 0.1, 30)})
    assert claims.asymmetry(pos, S).verdict == DISAGREES
    assert claims.asymmetry(pos.assign(gain=-pos["gain"]), S).verdict == AGREES
    wide = claims.assessment_is_not_optimization(Correlation(-0.3, -0.8, 0.5, 7), Correlation(-0.3, -0.7, 0.4, 7), 0.3)
    assert wide.verdict == INCONCLUSIVE


def test_adversarial_fidelity_needs_a_resolved_difference():
    gains = {"gmsd": _gains({"gmsd": 0.03, "ref": 0.0}), "lpips": _gains({"lpips": -0.03, "ref": 0.0}),
             "ssim": _gains({"ssim": 0.0, "ref": 0.0}, spread=0.0005),
             "vif": _gains({"vif": 0.0, "ref": 0.0}, spread=0.05)}
    v = claims.adversarial_fidelity(gains, {"gmsd": 0.9}, "ref", S)
    assert [x.verdict for x in v] == [DISAGREES, AGREES, EQUIVALENT, INCONCLUSIVE]
    assert "SRCC 0.90" in v[0].claim


def _transfer(change: float, *, seeds=(0, 1, 2), kinds=("vanilla", "patchgan", "unet", "vit"), spread=0.01,
              seed=0) -> pd.DataFrame:
    """discriminator, seed, init, srcc: a random-init SRCC per kind and seed (kind and seed effects)
    and the discriminator-init one ``change`` above it, plus seed-level noise of ``spread``."""
    rng = np.random.default_rng(seed)
    kind_fx = dict(zip(kinds, rng.uniform(0.2, 0.6, len(kinds))))
    rows = []
    for s in seeds:
        seed_change = change + rng.normal(0, spread)
        for k in kinds:
            base = kind_fx[k] + rng.normal(0, 0.05)
            rows += [{"discriminator": k, "seed": s, "init": "random", "srcc": base},
                     {"discriminator": k, "seed": s, "init": "discriminator",
                      "srcc": base + seed_change + rng.normal(0, spread / 2)}]
    return pd.DataFrame(rows)


def test_transfer_little_resamples_seeds_with_kinds_fixed():
    s = claims.Settings(n_boot=500, transfer_bar=0.1)
    null = claims.transfer_little(_transfer(0.0), s)                   # no transfer: far below the bar
    assert null[0].verdict == AGREES and null[0].n == "3 seeds x 4 kinds" and null[0].hi < 0.1
    assert abs(null[0].effect) < 0.03 and null[0].claim.startswith("discriminators transfer little")
    assert [v.n for v in null[1:]] == ["3 seeds x 1 kind"] * 4 and "the vit discriminator" in null[4].claim
    clear = claims.transfer_little(_transfer(0.3), s)                  # a large, consistent transfer
    assert clear[0].verdict == DISAGREES and clear[0].lo > 0.1 and clear[0].effect == pytest.approx(0.3, abs=0.03)
    assert all(v.verdict == DISAGREES for v in clear[1:])
    at_bar = claims.transfer_little(_transfer(0.1, spread=0.05), s)[0]  # the bar inside the interval
    assert at_bar.verdict == INCONCLUSIVE and at_bar.lo < 0.1 < at_bar.hi
    one = claims.transfer_little(_transfer(0.0, seeds=(0,)), s)[0]     # one seed: no interval
    assert one.verdict == INCONCLUSIVE and math.isnan(one.lo) and one.n == "1 seed x 4 kinds"


def test_transfer_changes_pair_kind_and_seed_and_drop_incomplete_seeds():
    t = _transfer(0.0)
    ch = claims.transfer_changes(t)
    assert ch.shape == (3, 4) and list(ch.index) == [0, 1, 2]
    assert list(ch.columns) == ["vanilla", "patchgan", "unet", "vit"]
    r = t.set_index(["discriminator", "seed", "init"])["srcc"]
    assert ch.loc[1, "unet"] == pytest.approx(r["unet", 1, "discriminator"] - r["unet", 1, "random"])
    gap = t.drop(t.index[(t["seed"] == 2) & (t["discriminator"] == "vit") & (t["init"] == "random")])
    rows = claims.transfer_little(gap, claims.Settings(n_boot=200))
    assert rows[0].n == "2 seeds x 4 kinds" and rows[4].n == "2 seeds x 1 kind" and rows[1].n == "3 seeds x 1 kind"
    assert len(claims.transfer_little(t, claims.Settings(n_boot=200), per_kind=False)) == 1


def test_pct_keeps_two_significant_digits_of_small_gains():
    assert claims.signed_pct(0.0123) == "+1.23%" and claims.signed_pct(-0.5) == "-50.00%"
    assert claims.signed_pct(0.0) == "+0.00%"
    assert claims.signed_pct(1.2e-5) == "+0.0012%" and claims.signed_pct(-3e-4) == "-0.030%"


def test_report_shows_effect_interval_n_and_rule():
    v = claims.Verdict("a | b", 0.012, 0.002, 0.022, "3 seeds x 3 clips", "rule x", AGREES)
    lines = claims.report([v]).splitlines()
    assert lines[0] == "| claim (papers) | effect | 95% interval | n | rule | verdict |"
    assert lines[2] == "| a / b | +1.20% | [+0.20%, +2.20%] | 3 seeds x 3 clips | rule x | **agrees** |"
    none = claims.Verdict("c", 0.5, math.nan, math.nan, "1 seed x 2 clips", "r", INCONCLUSIVE, percent=False)
    assert "| +0.5 | none | 1 seed x 2 clips |" in claims.report([none])
    assert "No claim" in claims.report([])
    assert list(claims.table([v]).columns)[:7] == ["claim", "effect", "lo", "hi", "n", "rule", "verdict"]
    with pytest.raises(ValueError):
        claims.Verdict("c", 0, 0, 0, "", "", "not resolved")


def test_settings_come_from_the_profile():
    s = claims.settings({"verdicts": {"n_boot": 500, "equivalence_margin": 0.02}})
    assert s.n_boot == 500 and s.equivalence_margin == 0.02 and s.artifact_margin == claims.Settings().artifact_margin
    assert claims.settings({}) == claims.Settings()
    with pytest.raises(ConfigError, match="unknown"):
        claims.settings({"verdicts": {"n_bot": 5}})
    with pytest.raises(ConfigError):
        claims.settings({"verdicts": {"equivalence_margin": 0}})
