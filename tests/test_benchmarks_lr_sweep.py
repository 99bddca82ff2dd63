"""benchmarks/lr_sweep.py: the rule that picks the fine-tuning rate and the table it prints (on a
synthetic sweep: the real one trains 24 fine-tunes, BENCHMARKS.md quotes its output)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "lr_sweep.py"


def _sweep_module():
    spec = importlib.util.spec_from_file_location("lr_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(arm, lr, psnr_db, nonfinite=0, seed=0):
    return {"arm": arm, "lr": lr, "seed": seed, "own": 0.01, "psnr_db": psnr_db, "ssim": 0.0, "niqe": 0.0,
            "artifacts": 0.1, "worst_detector": "blur", "nonfinite": nonfinite}


def test_the_rate_is_the_largest_at_which_the_fine_tune_alone_does_no_harm():
    m = _sweep_module()
    df = pd.DataFrame([_row("fidelity-only", 1e-4, 0.01), _row("fidelity-only", 3e-4, -0.02),
                       _row("fidelity-only", 1e-3, -0.30), _row("niqe", 1e-4, -0.5), _row("niqe", 3e-4, -1.0),
                       _row("niqe", 1e-3, -2.0)])
    assert m.chosen_rate(df) == 3e-4           # 1e-3 costs the fidelity-only arm 0.3 dB
    df.loc[(df["arm"] == "niqe") & (df["lr"] == 3e-4), "nonfinite"] = 2
    assert m.chosen_rate(df) == 1e-4           # a skipped step anywhere rules a rate out
    df.loc[df["arm"] == "fidelity-only", "psnr_db"] = -1.0
    assert m.chosen_rate(df) is None
    # a second seed that loses more than the tolerance rules the rate out too
    two = pd.DataFrame([_row("fidelity-only", 3e-4, 0.0), _row("fidelity-only", 3e-4, -0.06, seed=1)])
    assert m.chosen_rate(two) is None


def test_the_table_has_one_row_per_arm_and_rate():
    m = _sweep_module()
    df = pd.DataFrame([_row("niqe", 1e-4, -0.5), _row("niqe", 1e-4, -0.3, seed=1), _row("niqe", 1e-3, -2.0)])
    lines = m.markdown(df).splitlines()
    assert len(lines) == 2 + 2 and lines[2].startswith("| niqe | 0.0001 | +1.0% | -0.400 |")
    assert lines[2].rstrip().endswith("| 0 | 2 |") and "(blur)" in lines[3]
