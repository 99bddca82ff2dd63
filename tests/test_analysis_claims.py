"""The claim verdicts: agree / disagree / not resolved against seed noise, on constructed tables."""
import json

import pandas as pd
import pytest

from nriqa.analysis import claims
from nriqa.analysis.claims import AGREES, DISAGREES, UNRESOLVED
from nriqa.study.runs import middle_gan_weight
from nriqa.study.weighting import final_weights


def test_compare_reads_an_effect_only_beyond_twice_the_noise():
    assert claims.compare(0.010, 0.004) == AGREES
    assert claims.compare(-0.010, 0.004) == DISAGREES
    assert claims.compare(0.007, 0.004) == UNRESOLVED          # within 2 x noise
    assert claims.compare(-0.010, 0.004, expect_positive=False) == AGREES
    assert claims.compare(float("nan"), 0.001) == UNRESOLVED
    assert claims.compare(0.01, float("nan")) == AGREES         # unknown noise: the sign is read


def _grid(gains: dict[str, float]) -> pd.DataFrame:
    rows = [{"discriminator": d, "gan_weight": w, "fr_gain_vs_fidelity": g + (w - 0.01) * 0.01}
            for d, g in gains.items() for w in (0.005, 0.01, 0.015)]
    return pd.DataFrame(rows)


def test_discriminator_ranking_groups_patch_level_and_convolutional_kinds():
    good = claims.discriminator_ranking(_grid({"vanilla": -0.01, "patchgan": 0.02, "unet": 0.01, "vit": -0.03}), 0.002)
    assert [v.verdict for v in good] == [AGREES, AGREES]
    assert "patch-level +1.50%" in good[0].evidence and "vanilla -1.00%" in good[0].evidence
    bad = claims.discriminator_ranking(_grid({"vanilla": 0.02, "patchgan": -0.01, "unet": -0.01, "vit": 0.05}), 0.002)
    assert [v.verdict for v in bad] == [DISAGREES, DISAGREES]
    noisy = claims.discriminator_ranking(_grid({"vanilla": 0.0, "patchgan": 0.001, "unet": 0.001, "vit": 0.0}), 0.002)
    assert [v.verdict for v in noisy] == [UNRESOLVED, UNRESOLVED]
    assert claims.discriminator_ranking(_grid({"patchgan": 0.1}), 0.0) == []   # nothing to compare


def test_artifact_suppression_compares_with_the_reseeded_run():
    without, reseeded = {"chroma_noise": 0.0030, "edge_artifacts": 0.50}, {"chroma_noise": 0.0028, "edge_artifacts": 0.48}
    with_gan = {"chroma_noise": 0.0010, "edge_artifacts": 0.49}
    v = claims.artifact_suppression(without, with_gan, reseeded, ["chroma_noise", "edge_artifacts"], "dbcnn")
    assert [x.verdict for x in v] == [AGREES, UNRESOLVED]
    worse = claims.artifact_suppression(without, {"chroma_noise": 0.006}, reseeded, ["chroma_noise"], "dbcnn")
    assert worse[0].verdict == DISAGREES and "+100.00%" in worse[0].evidence


def test_pct_keeps_two_significant_digits_of_small_gains():
    assert claims.pct(0.0123) == "+1.23%" and claims.pct(-0.5) == "-50.00%" and claims.pct(0.0) == "+0.00%"
    assert claims.pct(1.2e-5) == "+0.0012%" and claims.pct(-3e-4) == "-0.030%"


def test_transfer_little_uses_the_stated_bar():
    def table(change):
        return pd.DataFrame([{"discriminator": d, "init": i, "srcc": 0.3 + (change if i == "discriminator" else 0)}
                             for d in ("patchgan", "vit") for i in ("random", "discriminator")])
    assert claims.transfer_little(table(0.02)).verdict == AGREES
    assert claims.transfer_little(table(0.25)).verdict == DISAGREES
    assert "+0.250" in claims.transfer_little(table(0.25)).evidence


def test_assessment_claim_fails_only_on_a_significant_positive_correlation():
    t = pd.DataFrame({"measure": ["a", "b", "c"], "srcc": [0.9, 0.5, 0.1], "gain": [0.001, 0.01, 0.02]})
    v = claims.assessment_is_not_optimization(t, -1.0, 0.0)
    assert v.verdict == AGREES and "best assessor a" in v.evidence and "best objective c" in v.evidence
    assert claims.assessment_is_not_optimization(t, 0.9, 0.01).verdict == DISAGREES
    assert claims.assessment_is_not_optimization(t, 0.9, 0.2).verdict == AGREES


def test_adversarial_fidelity_disagrees_only_on_a_resolved_improvement():
    rows = pd.DataFrame({"measure": ["gmsd", "lpips", "ssim"], "srcc": [0.9, 0.8, 0.7],
                         "gain_vs_charbonnier_gan": [0.02, -0.02, 0.001]})
    assert [v.verdict for v in claims.adversarial_fidelity(rows, 0.002)] == [
        DISAGREES, AGREES, f"{AGREES} (no resolved improvement)"]


def test_report_is_a_markdown_table_and_says_when_empty():
    text = claims.report([claims.Verdict("a | b", "x", AGREES)])
    lines = text.splitlines()
    assert lines[0].startswith("| claim") and lines[2] == "| a / b | x | **agrees** |"
    assert "No claim" in claims.report([])


def test_final_weights_reads_the_last_logged_weights(tmp_path):
    rows = [{"step": 10, "weight/charbonnier": 1.0, "weight/niqe": 1.0},
            {"step": 20, "weight/charbonnier": 1.0, "weight/niqe": 0.031},
            {"step": 20, "d_loss": 0.5}]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = {"charbonnier": 1.0, "niqe": 1.0, "weights": "gradnorm"}
    assert final_weights(tmp_path, spec) == {"charbonnier": 1.0, "niqe": 0.031}
    assert final_weights(tmp_path / "missing", spec) == {"charbonnier": 1.0, "niqe": 1.0}


@pytest.mark.parametrize("weights,middle", [([0.001, 0.005, 0.01, 0.05], 0.01), ([0.2], 0.2), ([3, 1, 2], 2)])
def test_middle_gan_weight(weights, middle):
    assert middle_gan_weight({"adversarial": {"gan_weights": weights}}) == middle
