"""nriqa.study.text: how the study's sentences write gains, and say ties instead of naming a winner."""
from __future__ import annotations

import pandas as pd

from nriqa.study import assess_vs_optimize as asymmetry
from nriqa.study import finetuning, weighting


def test_sentences_say_ties_instead_of_naming_a_winner():
    table = pd.DataFrame({"psnr": [0.0, 0.0], "mean": [0.0, 0.0]}, index=["a", "b"])
    assert finetuning.describe_gains(table) == "all 2 runs have the same mean panel gain (0 %): no run stands out"
    comp = pd.DataFrame({"combo": ["a", "a"], "weighting": ["hand", "online"], "mean_gain": [0.01, 0.01]})
    assert weighting.describe_weighting(comp).endswith("-> no weighting stands out (tied)")
    table = pd.DataFrame({"measure": ["psnr", "niqe"], "srcc": [0.9, 0.3], "gain": [0.0, 0.0]})
    assert asymmetry.describe_asymmetry(table).startswith(
        "Best assessor: psnr (SRCC 0.900); all objectives level (held-out effect +0.00 SD).")


def test_gains_are_written_in_percent_without_rounding_small_ones_to_zero():
    from nriqa.study.text import pct

    assert (pct(0.0163), pct(-0.00056), pct(0.000012, sign=False), pct(0.0)) == (
        "+1.63 %", "-0.056 %", "0.0012 %", "0 %")
