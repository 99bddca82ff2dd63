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

S = claims.Settings(n_boot=300, seed=0, equivalence_margin=0.01)


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


def _values(changes: pd.DataFrame, *, zero: tuple[str, ...] = ()) -> pd.DataFrame:
    """artifact values beside ``changes``: 1 + change (0 for the runs in ``zero``: a detector at its floor)."""
    v = changes.rename(columns={"change": "value"}).assign(value=lambda d: 1 + d["value"])
    return v.assign(value=np.where(v["run"].isin(zero), 0.0, v["value"]))


def test_artifact_rows_have_three_outcomes_against_each_detectors_margin():
    t = pd.concat([_gains({"clean": 0.0, "dirty": 0.4}, value="change", spread=0.002).assign(measure="chroma_noise"),
                   _gains({"clean": 0.0, "dirty": 3e-4}, value="change", spread=1e-6).assign(measure="eyes")])
    margins = {"chroma_noise": 0.05, "eyes": 1e-4}
    v = claims.artifacts_added(t, _values(t), ["clean", "dirty"], margins, S)
    assert [x.verdict for x in v] == [EQUIVALENT, EQUIVALENT, AGREES, AGREES]
    assert all("visibility margin" in x.rule for x in v) and "0.0001" in v[1].rule
    # the same eyes change read against chroma noise's margin would be "artifact-free": the margin decides
    wrong = claims.artifacts_added(t, _values(t), ["dirty"], {"chroma_noise": 0.05, "eyes": 0.05}, S)
    assert wrong[1].verdict == EQUIVALENT
    for x in v:   # never both: an "adds" row has its estimate above the margin, an "artifact-free" one below
        assert not (x.verdict == AGREES and x.effect < margins[x.note.split(" ")[0]])


def test_a_detector_stuck_at_its_floor_never_reads_artifact_free():
    t = _gains({"quiet": 0.0}, value="change", spread=0.0).assign(measure="eyes")     # every cell 0, se 0
    v = claims.artifacts_added(t, _values(t, zero=("quiet",)), ["quiet"], {"eyes": 1e-4}, S)
    assert v[0].verdict == INCONCLUSIVE and claims.FLOOR_NOTE in v[0].note and math.isnan(v[0].p)
    same = claims.artifact_added("c", Estimate(0.0, 0.0, 4.0, 3, 3), 0.05, at_floor=False)
    assert same.verdict == INCONCLUSIVE                                  # se 0: no evidence either way
    noisy_floor = _gains({"q": 0.001}, value="change", spread=0.001).assign(measure="eyes")
    floor = claims.artifacts_added(noisy_floor, _values(noisy_floor, zero=("q",)), ["q"], {"eyes": 1.0}, S)
    assert floor[0].verdict == INCONCLUSIVE                              # its values all 0: the floor decides
    assert claims.family(floor)[0].verdict == INCONCLUSIVE              # and q cannot decide it either


def test_naive_nr_tuning_rows_name_each_part_of_the_claim():
    nr, own, fr = (_gains({"nr": e}, value="value") for e in (0.05, 0.2, -0.03))
    v = claims.naive_nr_tuning("nr", held_out_nr=nr, own=own, fr=fr, s=S)
    assert [x.verdict for x in v] == [AGREES] * 3 and all(x.unit == "SD" for x in v)
    assert [x.verdict for x in claims.naive_nr_tuning("nr", held_out_nr=_gains({"nr": -0.05}, value="value"),
                                                      own=None, fr=None, s=S)] == [DISAGREES]


def test_lpips_claims():
    lp = _gains({"nr": -0.1, "ok": 0.0}, spread=0.001, value="value")
    verdicts = claims.lpips_judges_nr_badly(lp, ["nr", "ok"], "st-lpips-alex", S)
    assert [v.verdict for v in verdicts] == [AGREES, INCONCLUSIVE]
    g = _gains({"nr": 0.0, "nr + lpips": 0.02}, value="value")
    arts = _gains({"nr": 0.4, "nr + lpips": 0.1}, value="change").assign(measure="chroma_noise")
    verdicts = claims.lpips_mitigates("nr + lpips", "nr", panel=g, artifacts=arts, s=S)
    assert [v.verdict for v in verdicts] == [AGREES, AGREES]


def test_paper_a_primary_rows_pool_the_nr_arms_one_row_per_claim():
    held = _gains({"a": 0.5, "b": 0.3, "a + lp": 0.0}, value="value", spread=0.05)
    lp = _gains({"a": -0.4, "b": -0.2}, value="value", spread=0.05)
    arts = pd.concat([_gains({"a": 0.2, "b": 0.1, "a + lp": 0.0}, value="change", spread=0.01).assign(measure=m)
                      for m in ("chroma_noise", "blur")])
    rows = claims.paper_a_primary(held_out=held, lpips=lp, lpips_name="lp", changes=arts, values=_values(arts),
                                  margins={"chroma_noise": 0.05, "blur": 0.05}, terms=["a", "b"],
                                  pairs=[("a + lp", "a")], s=S)
    assert [r.id for r in rows] == ["A1", "A2", "A3", "A4"] and all(r.primary for r in rows)
    assert [r.verdict for r in rows] == [AGREES, AGREES, AGREES, AGREES]
    assert rows[0].effect == pytest.approx(0.4, abs=0.05)                  # mean of the two NR arms
    assert rows[3].effect == pytest.approx(3.0, abs=0.4) and rows[3].unit == "margins"   # 0.15 / 0.05


def test_family_decides_secondary_rows_on_bh_q_and_keeps_the_primary_first():
    est = lambda e, se: Estimate(e, se, 8.0, 3, 3)  # noqa: E731
    primary = claims.as_primary(claims.directional("p", est(0.01, 0.004)), "A1")   # p ~ 0.04: decided alone
    weak = [claims.directional(f"s{i}", est(0.01, 0.004)) for i in range(9)]       # the same p, nine times
    strong = claims.directional("strong", est(0.05, 0.004))
    out = claims.family([*weak, primary, strong])
    assert out[0] is primary and out[0].verdict == AGREES and math.isnan(out[0].q)
    assert [v.verdict for v in out[1:10]] == [AGREES] * 9                        # BH: 10 rows at p ~ 0.04 pass
    lone = claims.family([claims.directional(f"s{i}", est(0.01 if i == 0 else 0.0, 0.004)) for i in range(10)])
    assert lone[0].verdict == INCONCLUSIVE and 0.03 < lone[0].p < 0.05 and lone[0].q > 0.05
    assert all("Benjamini-Hochberg" in v.rule for v in lone)
    assert "about 0.5 decisions by chance" in claims.chance_line(lone)


def test_primary_spec_reads_the_profile_and_refuses_unknown_contrasts():
    s = claims.settings({"verdicts": {"primary": {"B2": {"contrast": "convolutional_vs_transformer"}}}})
    assert claims.primary_spec(s)["B2"] == "convolutional_vs_transformer"
    assert claims.primary_spec(s)["A1"] == "held_out_nr_judges"
    with pytest.raises(ConfigError, match="B2"):
        claims.primary_spec(claims.settings({"verdicts": {"primary": {"B2": "coin_flip"}}}))
    with pytest.raises(ConfigError, match="unknown claim ids"):
        claims.settings({"verdicts": {"primary": {"C9": "x"}}})
    kinds = {"va": "vanilla", "pa": "patchgan", "un": "unet", "vi": "vit"}
    rows = claims.discriminator_ranking(_gains({"va": -0.01, "pa": 0.02, "un": 0.01, "vi": -0.03}), kinds, s)
    assert [r.primary for r in rows] == [False, True] and rows[1].id == "B2"
    assert not any(r.primary for r in claims.discriminator_ranking(
        _gains({"va": -0.01, "pa": 0.02, "un": 0.01, "vi": -0.03}), kinds, s, primary=False))
    with pytest.raises(ValueError, match="more than one primary row"):
        claims.family(rows + rows)


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
    # 12 measures cannot reach equivalence at +-0.3: the branch is dropped and the rule says so
    flat = claims.assessment_is_not_optimization(Correlation(0.0, -0.1, 0.1, 12), Correlation(0.0, -0.05, 0.05, 12),
                                                 0.3)
    assert flat.verdict == INCONCLUSIVE and "no equivalence branch" in flat.rule
    assert "minimum detectable |rho| at n = 12" in flat.rule


def test_adversarial_fidelity_needs_a_resolved_difference():
    gains = {"gmsd": _gains({"gmsd": 0.03, "ref": 0.0}), "lpips": _gains({"lpips": -0.03, "ref": 0.0}),
             "ssim": _gains({"ssim": 0.0, "ref": 0.0}, spread=0.0005),
             "vif": _gains({"vif": 0.0, "ref": 0.0}, spread=0.05)}
    v = claims.adversarial_fidelity(gains, {"gmsd": 0.9}, "ref", S)
    assert [x.verdict for x in v] == [DISAGREES, AGREES, EQUIVALENT, INCONCLUSIVE]
    assert "SRCC 0.90" in v[0].claim


def _transfer(change: float, *, seeds=(0, 1, 2), kinds=("vanilla", "patchgan", "unet", "vit"), spread=0.01,
              seed=0, noise=0.1) -> pd.DataFrame:
    """discriminator, seed, init, srcc: a random-init SRCC per kind and seed (kind effects plus seed
    noise of SD ``noise``: the bar) and the discriminator-init one ``change`` above it, plus
    seed-level noise of ``spread`` on the change."""
    rng = np.random.default_rng(seed)
    kind_fx = dict(zip(kinds, rng.uniform(0.2, 0.6, len(kinds))))
    rows = []
    for s in seeds:
        seed_change = change + rng.normal(0, spread)
        for k in kinds:
            base = kind_fx[k] + rng.normal(0, noise)
            rows += [{"discriminator": k, "seed": s, "init": "random", "srcc": base},
                     {"discriminator": k, "seed": s, "init": "discriminator",
                      "srcc": base + seed_change + rng.normal(0, spread / 2)}]
    return pd.DataFrame(rows)


def test_transfer_little_resamples_seeds_with_kinds_fixed():
    s = claims.Settings(n_boot=500)
    t = _transfer(0.0)
    bar, _ = claims.transfer_noise_bar(t)
    assert 0.03 < bar < 0.2                                            # the random arm's seed noise (SD 0.1)
    null = claims.transfer_little(t, s)                                # no transfer: far below the bar
    assert null[0].verdict == AGREES and null[0].n == "3 seeds x 4 kinds" and null[0].hi < bar
    assert abs(null[0].effect) < 0.03 and null[0].claim.startswith("discriminators transfer little")
    assert f"{bar:+.3f}" in null[0].rule and "pooled SD over seeds of the random-init arm" in null[0].rule
    assert null[1].claim.startswith("discriminator initialisation changes held-out")
    assert [v.n for v in null[2:]] == ["3 seeds x 1 kind"] * 4 and "the vit discriminator" in null[5].claim
    clear = claims.transfer_little(_transfer(0.3), s)                  # a large, consistent transfer
    clear_bar = claims.transfer_noise_bar(_transfer(0.3))[0]
    assert clear[0].verdict == DISAGREES and clear[0].lo > clear_bar
    assert clear[0].effect == pytest.approx(0.3, abs=0.03)
    assert all(v.verdict == DISAGREES for v in clear[2:]) and clear[1].verdict == AGREES
    near = _transfer(0.1, spread=0.05, noise=0.1)
    at_bar, at = claims.transfer_little(near, s)[0], claims.transfer_noise_bar(near)[0]
    assert at_bar.verdict == INCONCLUSIVE and at_bar.lo < at < at_bar.hi   # the bar inside the interval
    one = claims.transfer_little(_transfer(0.0, seeds=(0,)), s)        # one seed: no interval, no bar
    assert one[0].verdict == INCONCLUSIVE and math.isnan(one[0].lo) and one[0].n == "1 seed x 4 kinds"
    assert "no bar" in one[0].rule and one[1].verdict == INCONCLUSIVE


def test_transfer_bar_is_the_pooled_seed_sd_of_the_random_arm():
    rnd = {"a": [0.1, 0.3, 0.2], "b": [0.5, 0.9], "c": [0.4]}          # c: one seed, adds nothing
    rows = [{"discriminator": k, "seed": i, "init": init, "srcc": v + (0.5 if init == "discriminator" else 0)}
            for k, vals in rnd.items() for i, v in enumerate(vals) for init in ("random", "discriminator")]
    rows.append({"discriminator": "a", "seed": 3, "init": "discriminator", "srcc": 0.99})  # no random pair: unused
    bar, source = claims.transfer_noise_bar(pd.DataFrame(rows))
    # by hand: var(a) = 0.01 on 2 df, var(b) = 0.08 on 1 df -> sqrt((2 * 0.01 + 1 * 0.08) / 3)
    assert bar == pytest.approx(math.sqrt(0.1 / 3), abs=1e-12)
    assert "3 kinds" in source and "3 degrees of freedom" in source
    alone = claims.transfer_noise_bar(pd.DataFrame(rows[:2]))
    assert math.isnan(alone[0]) and alone[1].startswith("no bar")


def test_transfer_direction_row_is_decided_against_zero():
    s = claims.Settings(n_boot=500)
    up = claims.transfer_little(_transfer(0.2), s)[1]
    down = claims.transfer_little(_transfer(-0.2), s)[1]
    flat = claims.transfer_little(_transfer(0.0, spread=0.05), s)[1]
    assert (up.verdict, down.verdict, flat.verdict) == (AGREES, DISAGREES, INCONCLUSIVE)
    assert up.lo > 0 and down.hi < 0 and flat.lo < 0 < flat.hi
    assert up.rule == "agrees if the 95% interval lies above 0, disagrees if below 0" and up.n == "3 seeds x 4 kinds"
    assert up.effect == pytest.approx(claims.transfer_little(_transfer(0.2), s)[0].effect)  # the same paired effect
    assert claims.transfer_direction(claims.transfer_changes(_transfer(0.2)).iloc[:0], s).verdict == INCONCLUSIVE


def test_transfer_changes_pair_kind_and_seed_and_drop_incomplete_seeds():
    t = _transfer(0.0)
    ch = claims.transfer_changes(t)
    assert ch.shape == (3, 4) and list(ch.index) == [0, 1, 2]
    assert list(ch.columns) == ["vanilla", "patchgan", "unet", "vit"]
    r = t.set_index(["discriminator", "seed", "init"])["srcc"]
    assert ch.loc[1, "unet"] == pytest.approx(r["unet", 1, "discriminator"] - r["unet", 1, "random"])
    gap = t.drop(t.index[(t["seed"] == 2) & (t["discriminator"] == "vit") & (t["init"] == "random")])
    rows = claims.transfer_little(gap, claims.Settings(n_boot=200))
    assert rows[0].n == "2 seeds x 4 kinds" and rows[1].n == "2 seeds x 4 kinds"
    assert rows[5].n == "2 seeds x 1 kind" and rows[2].n == "3 seeds x 1 kind"
    assert len(claims.transfer_little(t, claims.Settings(n_boot=200), per_kind=False)) == 2


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
    assert s.n_boot == 500 and s.equivalence_margin == 0.02 and s.rho_margin == claims.Settings().rho_margin
    assert claims.settings({}) == claims.Settings()
    with pytest.raises(ConfigError, match="unknown"):
        claims.settings({"verdicts": {"n_bot": 5}})
    with pytest.raises(ConfigError):
        claims.settings({"verdicts": {"equivalence_margin": 0}})


def test_any_artifact_added_is_a_union_for_adds_and_an_intersection_for_free():
    margins = {"chroma_noise": 0.05, "blur": 0.5}
    quiet = pd.concat([_gains({"a": 0.0}, value="change", spread=0.002).assign(measure="chroma_noise"),
                       _gains({"a": 0.0}, value="change", spread=0.02).assign(measure="blur")])
    free = claims.any_artifact_added("c", quiet, _values(quiet), ["a"], margins, S)
    assert free.verdict == EQUIVALENT and free.unit == "margins" and "Bonferroni over 2 detectors" in free.rule
    # one detector adds (blur +2 margins) while the other improves: the improvement does not hide it
    mixed = pd.concat([_gains({"a": -0.2}, value="change", spread=0.002).assign(measure="chroma_noise"),
                       _gains({"a": 1.0}, value="change", spread=0.02).assign(measure="blur")])
    adds = claims.any_artifact_added("c", mixed, _values(mixed), ["a"], margins, S)
    assert adds.verdict == AGREES and adds.effect == pytest.approx(2.0, abs=0.1) and "largest: blur" in adds.note
    noisy = pd.concat([_gains({"a": 0.0}, value="change", spread=0.2).assign(measure=m) for m in margins])
    assert claims.any_artifact_added("c", noisy, _values(noisy), ["a"], margins, S).verdict == INCONCLUSIVE
    floor = claims.any_artifact_added("c", quiet, _values(quiet, zero=("a",)), ["a"], margins, S)
    assert floor.verdict == INCONCLUSIVE and claims.FLOOR_NOTE in floor.note
    load = claims.artifact_score(mixed, margins)                  # only added artifacts count
    assert load["change"].mean() == pytest.approx(1.0, abs=0.05)  # (0 + 2) / 2 detectors
