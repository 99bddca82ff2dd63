"""nriqa.study.baseline (notebook 01): the bicubic reference and the baselines' sentence."""
from __future__ import annotations

import pandas as pd
import torch

from nriqa.study import baseline


def test_baseline_bicubic_and_sentence():
    lr = torch.rand(2, 3, 3, 8, 10)
    out = baseline.Bicubic(4)(lr)
    assert out.shape == (2, 3, 3, 32, 40) and out.min() >= 0 and out.max() <= 1
    summary = pd.DataFrame({"psnr": [25.0, 26.5], "ssim": [0.8, 0.85]}, index=["bicubic", "vrt"])
    assert baseline.describe_baselines(summary, ["vrt"]) == (
        "vrt: PSNR 26.50 dB (+1.50 dB vs bicubic), SSIM 0.8500 (+0.0500)")
